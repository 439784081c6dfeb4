package support

import (
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var kinds = map[string]canon.Kind{
	"ticket_opened":  canon.KindTicketOpened,
	"ticket_closed":  canon.KindTicketClosed,
	"refund_issued":  canon.KindRefund,
	"csat_submitted": canon.KindCSAT,
}

var mediums = map[string]bool{"email": true, "chat": true, "voice": true}

// New returns the support decoder, which normalizes identifiers with n and
// reads messages within lim.
func New(n *normalize.Normalizer, lim msg.Limits) func([]byte) (canon.Event, error) {
	return msg.NewDecoder(msg.Envelope{
		Channel:    canon.Support,
		IDField:    "event_id",
		EventField: "event",
		TimeField:  "timestamp",
		Kinds:      kinds,
		Fill:       fill,
	}, n, lim)
}

// fill reads the ticket fields of o into ev.
func fill(o *msg.Object, ev *canon.Event, ids *msg.IDs) {
	ev.Props = map[string]any{"ticket_id": o.ReqID("ticket_id")}
	ids.Read(o, "crm_contact_id", canon.CRMID, canon.Asserted)
	ids.Read(o, "email", canon.Email, canon.Asserted)
	ids.Read(o, "phone", canon.Phone, canon.Asserted)

	switch ev.Kind {
	case canon.KindRefund:
		ev.Amount = o.Money("refund_amount", "currency", "")
	case canon.KindCSAT:
		score, ok := o.Int("csat")
		switch {
		case !ok && o.Err() == nil:
			o.Fail(msg.ReasonMissingField, "csat", "is required")
		case ok && (score < 1 || score > 5):
			o.Fail(msg.ReasonOutOfRange, "csat", "must be 1..5")
		}
		ev.CSAT = int(score)
	}
	if o.Has("medium") {
		medium, _ := msg.Enum(o, "medium", mediums, msg.ReasonInvalidValue)
		ev.Props["medium"] = medium
	}
}
