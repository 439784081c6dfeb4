package pos

import (
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/msg/msgtest"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var dec = New(normalize.Default(), msg.Limits{})

const head = `"transaction_id":"t1","timestamp":"2025-01-02T03:04:05Z","card_fingerprint":"fp1"`

func TestDecode(t *testing.T) {
	msgtest.Run(t, dec, []msgtest.Case{
		{Name: "purchase", In: `{"type":"purchase",` + head + `,"total":"12.345","currency":"eur","loyalty_id":"L1"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindOrder || *ev.Amount != (canon.Money{Currency: "EUR", Micros: 12_345_000}) {
					t.Errorf("got %v %+v", ev.Kind, ev.Amount)
				}
				if len(ev.Identifiers) != 2 || ev.Identifiers[0].Trust != canon.Asserted || ev.Identifiers[1].Trust != canon.Observed {
					t.Errorf("identifiers = %+v", ev.Identifiers)
				}
			}},
		{Name: "return", In: `{"type":"return",` + head + `,"total":0,"currency":"USD"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindReturn || ev.Amount.Micros != 0 {
					t.Errorf("got %v %+v", ev.Kind, ev.Amount)
				}
			}},
		{Name: "exact decimal", In: `{"type":"purchase",` + head + `,"total":0.1,"currency":"USD"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Amount.Micros != 100_000 {
					t.Errorf("micros = %d", ev.Amount.Micros)
				}
			}},
		{Name: "empty items", In: `{"type":"purchase",` + head + `,"total":1,"currency":"USD","items":[]}`},

		{Name: "missing type", In: `{` + head + `,"total":1,"currency":"USD"}`, Reason: msg.ReasonMissingField, Field: "type"},
		{Name: "unknown type", In: `{"type":"void",` + head + `,"total":1,"currency":"USD"}`, Reason: msg.ReasonUnknownEvent, Field: "type"},
		{Name: "missing transaction_id", In: `{"type":"purchase","timestamp":"2025-01-02T03:04:05Z","card_fingerprint":"f","total":1,"currency":"USD"}`, Reason: msg.ReasonMissingField, Field: "transaction_id"},
		{Name: "missing total", In: `{"type":"purchase",` + head + `,"currency":"USD"}`, Reason: msg.ReasonMissingField, Field: "total"},
		{Name: "negative total", In: `{"type":"return",` + head + `,"total":-5,"currency":"USD"}`, Reason: msg.ReasonOutOfRange, Field: "total"},
		{Name: "negative string total", In: `{"type":"return",` + head + `,"total":"-5.00","currency":"USD"}`, Reason: msg.ReasonOutOfRange, Field: "total"},
		{Name: "total too large", In: `{"type":"purchase",` + head + `,"total":1000000000001,"currency":"USD"}`, Reason: msg.ReasonOutOfRange, Field: "total"},
		{Name: "total not numeric", In: `{"type":"purchase",` + head + `,"total":"12,50","currency":"USD"}`, Reason: msg.ReasonInvalidValue, Field: "total"},
		{Name: "missing currency", In: `{"type":"purchase",` + head + `,"total":1}`, Reason: msg.ReasonMissingField, Field: "currency"},
		{Name: "bad currency", In: `{"type":"purchase",` + head + `,"total":1,"currency":"US1"}`, Reason: msg.ReasonInvalidValue, Field: "currency"},
		{Name: "currency number", In: `{"type":"purchase",` + head + `,"total":1,"currency":840}`, Reason: msg.ReasonWrongType, Field: "currency"},
		{Name: "no identifier", In: `{"type":"purchase","transaction_id":"t","timestamp":"2025-01-02T03:04:05Z","total":1,"currency":"USD","email":"n/a"}`, Reason: msg.ReasonNoIdentifier},
		{Name: "items not array", In: `{"type":"purchase",` + head + `,"total":1,"currency":"USD","items":{}}`, Reason: msg.ReasonWrongType, Field: "items"},
		{Name: "item not object", In: `{"type":"purchase",` + head + `,"total":1,"currency":"USD","items":["sku"]}`, Reason: msg.ReasonWrongType, Field: "items"},
		{Name: "item qty fraction", In: `{"type":"purchase",` + head + `,"total":1,"currency":"USD","items":[{"qty":1.5}]}`, Reason: msg.ReasonWrongType, Field: "items.qty"},
		{Name: "item negative price", In: `{"type":"purchase",` + head + `,"total":1,"currency":"USD","items":[{"unit_price":-1}]}`, Reason: msg.ReasonOutOfRange, Field: "items.unit_price"},
		{Name: "store id bool", In: `{"type":"purchase",` + head + `,"total":1,"currency":"USD","store_id":true}`, Reason: msg.ReasonWrongType, Field: "store_id"},
	})
}

func TestGolden(t *testing.T) {
	msgtest.Golden(t, func(string) msgtest.Decode { return dec })
}

func FuzzDecode(f *testing.F) {
	msgtest.Fuzz(f, canon.POS, dec)
}
