package pos

import (
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var kinds = map[string]canon.Kind{
	"purchase": canon.KindOrder,
	"return":   canon.KindReturn,
}

// New returns the pos decoder, which normalizes identifiers with n and
// reads messages within lim.
func New(n *normalize.Normalizer, lim msg.Limits) func([]byte) (canon.Event, error) {
	return msg.NewDecoder(msg.Envelope{
		Channel:    canon.POS,
		IDField:    "transaction_id",
		EventField: "type",
		TimeField:  "timestamp",
		Kinds:      kinds,
		Fill:       fill,
	}, n, lim)
}

// fill reads the transaction fields of o into ev.
func fill(o *msg.Object, ev *canon.Event, ids *msg.IDs) {
	ev.Amount = o.Money("total", "currency", "")
	ids.Read(o, "loyalty_id", canon.LoyaltyID, canon.Asserted)
	ids.Read(o, "email", canon.Email, canon.Asserted)
	ids.Read(o, "phone", canon.Phone, canon.Asserted)
	ids.Read(o, "card_fingerprint", canon.CardFP, canon.Observed)

	ev.Props = map[string]any{}
	if store, ok := o.ID("store_id"); ok {
		ev.Props["store_id"] = store
	}
	if items := o.Arr("items"); items != nil {
		checkItems(o, items)
		ev.Props["items"] = items
	}
}

// checkItems checks the shape of each line item; the items are kept as sent.
func checkItems(o *msg.Object, items []any) {
	for i := range items {
		item := o.Elem("items", items, i)
		item.Str("sku")
		item.Int("qty")
		item.Decimal("unit_price")
	}
}
