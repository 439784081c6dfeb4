package iot

import (
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/msg/msgtest"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var dec = New(normalize.Default(), msg.Limits{})

const head = `"message_id":"i1","timestamp":"2025-01-02T03:04:05Z","device_serial":"D-1"`

func TestDecode(t *testing.T) {
	device := canon.Identifier{Type: canon.DeviceID, Value: "D-1"}
	msgtest.Run(t, dec, []msgtest.Case{
		{Name: "paired", In: `{"event":"device_paired",` + head + `,"owner_user_id":"u1"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindDevicePaired || len(ev.Identifiers) != 2 || ev.Identifiers[1].Trust != canon.Observed {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "unpaired by email", In: `{"event":"device_unpaired",` + head + `,"owner_email":"a@b.io"}`,
			Check: func(t *testing.T, ev canon.Event) {
				want := canon.Pair{A: device, B: canon.Identifier{Type: canon.Email, Value: "a@b.io"}}
				if ev.Unlink == nil || *ev.Unlink != want {
					t.Errorf("unlink = %+v", ev.Unlink)
				}
				for _, o := range ev.Identifiers {
					if o.Identifier == device {
						t.Errorf("device still in identifiers: the resolver would link it again")
					}
				}
			}},
		{Name: "unpaired prefers user id", In: `{"event":"device_unpaired",` + head + `,"owner_email":"a@b.io","owner_user_id":"u1"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Unlink == nil || ev.Unlink.B.Type != canon.UserID {
					t.Errorf("unlink = %+v", ev.Unlink)
				}
			}},
		{Name: "unpaired blocked owner keeps device", In: `{"event":"device_unpaired",` + head + `,"owner_user_id":"null"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Unlink != nil || len(ev.Identifiers) != 1 || ev.Dropped["blocked"] != 1 {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "telemetry metrics kept", In: `{"event":"telemetry",` + head + `,"metrics":{"t":1.5}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Props["metrics"] == nil {
					t.Errorf("props = %v", ev.Props)
				}
			}},
		{Name: "numeric serial", In: `{"event":"alert","message_id":"i1","timestamp":"2025-01-02T03:04:05Z","device_serial":12345}`},

		{Name: "missing event", In: `{` + head + `}`, Reason: msg.ReasonMissingField, Field: "event"},
		{Name: "unknown event", In: `{"event":"reboot",` + head + `}`, Reason: msg.ReasonUnknownEvent, Field: "event"},
		{Name: "missing message_id", In: `{"event":"alert","timestamp":"2025-01-02T03:04:05Z","device_serial":"D"}`, Reason: msg.ReasonMissingField, Field: "message_id"},
		{Name: "blank message_id", In: `{"event":"alert","message_id":"  ","timestamp":"2025-01-02T03:04:05Z","device_serial":"D"}`, Reason: msg.ReasonMissingField, Field: "message_id"},
		{Name: "missing timestamp", In: `{"event":"alert","message_id":"i","device_serial":"D"}`, Reason: msg.ReasonMissingField, Field: "timestamp"},
		{Name: "missing serial", In: `{"event":"alert","message_id":"i","timestamp":"2025-01-02T03:04:05Z"}`, Reason: msg.ReasonMissingField, Field: "device_serial"},
		{Name: "zero serial only", In: `{"event":"alert","message_id":"i","timestamp":"2025-01-02T03:04:05Z","device_serial":"0000-0000"}`, Reason: msg.ReasonNoIdentifier},
		{Name: "paired without owner", In: `{"event":"device_paired",` + head + `}`, Reason: msg.ReasonMissingField, Field: "owner_user_id"},
		{Name: "unpaired without owner", In: `{"event":"device_unpaired",` + head + `}`, Reason: msg.ReasonMissingField, Field: "owner_user_id"},
		{Name: "owner email wrong type", In: `{"event":"device_paired",` + head + `,"owner_email":{}}`, Reason: msg.ReasonWrongType, Field: "owner_email"},
		{Name: "metrics not object", In: `{"event":"telemetry",` + head + `,"metrics":[1]}`, Reason: msg.ReasonWrongType, Field: "metrics"},
		{Name: "metric not number", In: `{"event":"telemetry",` + head + `,"metrics":{"t":"hot"}}`, Reason: msg.ReasonWrongType, Field: "metrics"},
		{Name: "firmware not string", In: `{"event":"telemetry",` + head + `,"firmware":3}`, Reason: msg.ReasonWrongType, Field: "firmware"},
	})
}

func TestGolden(t *testing.T) {
	msgtest.Golden(t, func(string) msgtest.Decode { return dec })
}

func FuzzDecode(f *testing.F) {
	msgtest.Fuzz(f, canon.IoT, dec)
}
