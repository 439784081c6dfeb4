package segment

import (
	"strings"
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/msg/msgtest"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var (
	web    = New(canon.Web, normalize.Default(), msg.Limits{})
	mobile = New(canon.Mobile, normalize.Default(), msg.Limits{})
)

const head = `"messageId":"m1","timestamp":"2025-01-02T03:04:05Z"`

func TestDecode(t *testing.T) {
	msgtest.Run(t, web, []msgtest.Case{
		{Name: "identify", In: `{"type":"identify",` + head + `,"userId":"u1","traits":{"email":"A@B.io","age":3}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindIdentify || len(ev.Identifiers) != 2 || ev.Traits["age"] == nil {
					t.Errorf("got %+v", ev)
				}
				if ev.Identifiers[1].Value != "a@b.io" || ev.Identifiers[1].Trust != canon.Asserted {
					t.Errorf("email = %+v", ev.Identifiers[1])
				}
			}},
		{Name: "order revenue wins over total", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"revenue":"10.5","total":99,"currency":"gbp"}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindOrder || *ev.Amount != (canon.Money{Currency: "GBP", Micros: 10_500_000}) {
					t.Errorf("got %v %+v", ev.Kind, ev.Amount)
				}
			}},
		{Name: "order default currency", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"total":1}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Amount.Currency != DefaultCurrency {
					t.Errorf("currency = %s", ev.Amount.Currency)
				}
			}},
		{Name: "alias links", In: `{"type":"alias",` + head + `,"previousId":"a1","userId":"u1"}`,
			Check: func(t *testing.T, ev canon.Event) {
				want := canon.Pair{A: canon.Identifier{Type: canon.AnonymousID, Value: "a1"}, B: canon.Identifier{Type: canon.UserID, Value: "u1"}}
				if ev.Link == nil || *ev.Link != want {
					t.Errorf("link = %+v", ev.Link)
				}
			}},
		{Name: "alias with blocked previous keeps going", In: `{"type":"alias",` + head + `,"previousId":"null","userId":"u1"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Link != nil || ev.Dropped["blocked"] != 1 {
					t.Errorf("link = %+v dropped = %v", ev.Link, ev.Dropped)
				}
			}},
		{Name: "group traits are not the person's", In: `{"type":"group",` + head + `,"userId":"u1","groupId":"g1","traits":{"email":"billing@acme.io"}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.GroupID != "g1" || len(ev.Identifiers) != 1 || ev.GroupTraits["email"] == nil || ev.Traits != nil {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "same email twice keeps one", In: `{"type":"identify",` + head + `,"traits":{"email":"a@b.io"},"context":{"traits":{"email":"A@B.IO"}}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if len(ev.Identifiers) != 1 {
					t.Errorf("identifiers = %+v", ev.Identifiers)
				}
			}},
		{Name: "unknown fields kept", In: `{"type":"page",` + head + `,"anonymousId":"a","sentAt":"x","properties":{"sentAt":1}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Props["sentAt"] == nil || ev.Props["_sentAt"] != "x" {
					t.Errorf("props = %v", ev.Props)
				}
			}},
		{Name: "null is absent", In: `{"type":"page",` + head + `,"anonymousId":"a","userId":null,"name":null}`},

		{Name: "empty", In: ``, Reason: msg.ReasonInvalidJSON},
		{Name: "array", In: `[1]`, Reason: msg.ReasonNotObject},
		{Name: "bad utf8", In: "{\"type\":\"\xff\"}", Reason: msg.ReasonInvalidUTF8},
		{Name: "trailing data", In: `{"type":"page"} x`, Reason: msg.ReasonInvalidJSON},
		{Name: "too deep", In: `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, Reason: msg.ReasonTooDeep},
		{Name: "oversize", In: `{"a":"` + strings.Repeat("x", msg.DefaultMaxBytes) + `"}`, Reason: msg.ReasonOversize},
		{Name: "missing type", In: `{` + head + `,"anonymousId":"a"}`, Reason: msg.ReasonMissingField, Field: "type"},
		{Name: "unknown type", In: `{"type":"batch",` + head + `,"anonymousId":"a"}`, Reason: msg.ReasonUnknownEvent, Field: "type"},
		{Name: "type not string", In: `{"type":1,` + head + `}`, Reason: msg.ReasonWrongType, Field: "type"},
		{Name: "missing messageId", In: `{"type":"page","timestamp":"2025-01-02T03:04:05Z","anonymousId":"a"}`, Reason: msg.ReasonMissingField, Field: "messageId"},
		{Name: "float messageId", In: `{"type":"page","messageId":1.5,"timestamp":"2025-01-02T03:04:05Z","anonymousId":"a"}`, Reason: msg.ReasonWrongType, Field: "messageId"},
		{Name: "missing timestamp", In: `{"type":"page","messageId":"m","anonymousId":"a"}`, Reason: msg.ReasonMissingField, Field: "timestamp"},
		{Name: "bad timestamp", In: `{"type":"page","messageId":"m","timestamp":"2025-01-02 03:04:05","anonymousId":"a"}`, Reason: msg.ReasonBadTimestamp, Field: "timestamp"},
		{Name: "timestamp before 1970", In: `{"type":"page","messageId":"m","timestamp":"1969-12-31T23:59:59Z","anonymousId":"a"}`, Reason: msg.ReasonBadTimestamp, Field: "timestamp"},
		{Name: "timestamp after 2100", In: `{"type":"page","messageId":"m","timestamp":"2101-01-01T00:00:00Z","anonymousId":"a"}`, Reason: msg.ReasonBadTimestamp, Field: "timestamp"},
		{Name: "timestamp number", In: `{"type":"page","messageId":"m","timestamp":1700000000,"anonymousId":"a"}`, Reason: msg.ReasonWrongType, Field: "timestamp"},
		{Name: "no identifier", In: `{"type":"page",` + head + `}`, Reason: msg.ReasonNoIdentifier},
		{Name: "only blocked identifiers", In: `{"type":"page",` + head + `,"anonymousId":"anonymous","userId":"0"}`, Reason: msg.ReasonNoIdentifier},
		{Name: "email wrong type", In: `{"type":"identify",` + head + `,"traits":{"email":["a@b.io"]}}`, Reason: msg.ReasonWrongType, Field: "traits.email"},
		{Name: "device id wrong type", In: `{"type":"page",` + head + `,"context":{"device":{"id":true}}}`, Reason: msg.ReasonWrongType, Field: "context.device.id"},
		{Name: "context not object", In: `{"type":"page",` + head + `,"anonymousId":"a","context":"x"}`, Reason: msg.ReasonWrongType, Field: "context"},
		{Name: "track without event", In: `{"type":"track",` + head + `,"anonymousId":"a"}`, Reason: msg.ReasonMissingField, Field: "event"},
		{Name: "order without amount", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{}}`, Reason: msg.ReasonMissingField, Field: "properties.total"},
		{Name: "order negative", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"revenue":-1}}`, Reason: msg.ReasonOutOfRange, Field: "properties.revenue"},
		{Name: "order huge", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"revenue":1e29}}`, Reason: msg.ReasonOutOfRange, Field: "properties.revenue"},
		{Name: "order amount text", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"revenue":"ten"}}`, Reason: msg.ReasonInvalidValue, Field: "properties.revenue"},
		{Name: "order amount bool", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"revenue":true}}`, Reason: msg.ReasonWrongType, Field: "properties.revenue"},
		{Name: "order bad currency", In: `{"type":"track",` + head + `,"anonymousId":"a","event":"Order Completed","properties":{"revenue":1,"currency":"euro"}}`, Reason: msg.ReasonInvalidValue, Field: "properties.currency"},
		{Name: "alias without previousId", In: `{"type":"alias",` + head + `,"userId":"u1"}`, Reason: msg.ReasonMissingField, Field: "previousId"},
		{Name: "alias without userId", In: `{"type":"alias",` + head + `,"previousId":"a1"}`, Reason: msg.ReasonMissingField, Field: "userId"},
		{Name: "group without groupId", In: `{"type":"group",` + head + `,"userId":"u1"}`, Reason: msg.ReasonMissingField, Field: "groupId"},
	})
}

func TestRejectHasNoValue(t *testing.T) {
	_, err := web([]byte(`{"type":"s3cr3t-type",` + head + `}`))
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Decode error = %v, must not quote the value", err)
	}
}

func TestGolden(t *testing.T) {
	msgtest.Golden(t, func(file string) msgtest.Decode {
		if strings.HasPrefix(file, "mobile_") {
			return mobile
		}
		return web
	})
}

func FuzzDecode(f *testing.F) {
	msgtest.Seed(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		msgtest.Check(t, canon.Web, web, raw)
		msgtest.Check(t, canon.Mobile, mobile, raw)
	})
}

func TestLongMessageID(t *testing.T) {
	long := strings.Repeat("m", canon.MaxIDLen+1)
	msgtest.Run(t, web, []msgtest.Case{{
		Name:   "message id over 512 bytes",
		In:     `{"type":"page","messageId":"` + long + `","timestamp":"2025-01-02T03:04:05Z","anonymousId":"a"}`,
		Reason: msg.ReasonInvalidValue, Field: "messageId",
	}})
}
