package support

import (
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/msg/msgtest"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var dec = New(normalize.Default(), msg.Limits{})

const head = `"event_id":"e1","timestamp":"2025-01-02T03:04:05Z","ticket_id":"T1","crm_contact_id":"C1"`

func TestDecode(t *testing.T) {
	msgtest.Run(t, dec, []msgtest.Case{
		{Name: "opened", In: `{"event":"ticket_opened",` + head + `,"medium":"email"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindTicketOpened || ev.Props["ticket_id"] != "T1" || ev.Props["medium"] != "email" {
					t.Errorf("got %+v", ev)
				}
				if ev.Identifiers[0] != (canon.Observation{Identifier: canon.Identifier{Type: canon.CRMID, Value: "C1"}, Trust: canon.Asserted}) {
					t.Errorf("identifiers = %+v", ev.Identifiers)
				}
			}},
		{Name: "refund", In: `{"event":"refund_issued",` + head + `,"refund_amount":5,"currency":"gbp"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindRefund || *ev.Amount != (canon.Money{Currency: "GBP", Micros: 5_000_000}) {
					t.Errorf("got %v %+v", ev.Kind, ev.Amount)
				}
			}},
		{Name: "csat", In: `{"event":"csat_submitted",` + head + `,"csat":5}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindCSAT || ev.CSAT != 5 {
					t.Errorf("got %v %d", ev.Kind, ev.CSAT)
				}
			}},
		{Name: "numeric ticket id", In: `{"event":"ticket_closed","event_id":"e1","timestamp":"2025-01-02T03:04:05Z","ticket_id":77,"email":"a@b.io"}`},

		{Name: "missing event", In: `{` + head + `}`, Reason: msg.ReasonMissingField, Field: "event"},
		{Name: "unknown event", In: `{"event":"ticket_merged",` + head + `}`, Reason: msg.ReasonUnknownEvent, Field: "event"},
		{Name: "missing event_id", In: `{"event":"ticket_opened","timestamp":"2025-01-02T03:04:05Z","ticket_id":"T","email":"a@b.io"}`, Reason: msg.ReasonMissingField, Field: "event_id"},
		{Name: "missing ticket_id", In: `{"event":"ticket_opened","event_id":"e","timestamp":"2025-01-02T03:04:05Z","email":"a@b.io"}`, Reason: msg.ReasonMissingField, Field: "ticket_id"},
		{Name: "refund without amount", In: `{"event":"refund_issued",` + head + `,"currency":"USD"}`, Reason: msg.ReasonMissingField, Field: "refund_amount"},
		{Name: "refund without currency", In: `{"event":"refund_issued",` + head + `,"refund_amount":1}`, Reason: msg.ReasonMissingField, Field: "currency"},
		{Name: "refund negative", In: `{"event":"refund_issued",` + head + `,"refund_amount":-1,"currency":"USD"}`, Reason: msg.ReasonOutOfRange, Field: "refund_amount"},
		{Name: "csat missing", In: `{"event":"csat_submitted",` + head + `}`, Reason: msg.ReasonMissingField, Field: "csat"},
		{Name: "csat zero", In: `{"event":"csat_submitted",` + head + `,"csat":0}`, Reason: msg.ReasonOutOfRange, Field: "csat"},
		{Name: "csat six", In: `{"event":"csat_submitted",` + head + `,"csat":6}`, Reason: msg.ReasonOutOfRange, Field: "csat"},
		{Name: "csat fraction", In: `{"event":"csat_submitted",` + head + `,"csat":4.5}`, Reason: msg.ReasonWrongType, Field: "csat"},
		{Name: "csat string", In: `{"event":"csat_submitted",` + head + `,"csat":"5"}`, Reason: msg.ReasonWrongType, Field: "csat"},
		{Name: "unknown medium", In: `{"event":"ticket_opened",` + head + `,"medium":"fax"}`, Reason: msg.ReasonInvalidValue, Field: "medium"},
		{Name: "no identifier", In: `{"event":"ticket_opened","event_id":"e","timestamp":"2025-01-02T03:04:05Z","ticket_id":"T","email":"unknown@shop.io","phone":"12"}`, Reason: msg.ReasonNoIdentifier},
	})
}

func TestGolden(t *testing.T) {
	msgtest.Golden(t, func(string) msgtest.Decode { return dec })
}

func FuzzDecode(f *testing.F) {
	msgtest.Fuzz(f, canon.Support, dec)
}
