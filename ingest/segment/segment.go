package segment

import (
	"maps"
	"strings"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

// OrderCompleted is the Segment e-commerce event that records a purchase.
const OrderCompleted = "Order Completed"

// DefaultCurrency is the currency of an order that names none, as the
// Segment spec defines it.
const DefaultCurrency = "USD"

var kinds = map[string]canon.Kind{
	"identify": canon.KindIdentify,
	"track":    canon.KindTrack,
	"page":     canon.KindPage,
	"screen":   canon.KindScreen,
	"alias":    canon.KindAlias,
	"group":    canon.KindGroup,
}

// New returns the decoder of channel ch (canon.Web or canon.Mobile), which
// normalizes identifiers with n and reads messages within lim.
func New(ch canon.Channel, n *normalize.Normalizer, lim msg.Limits) func([]byte) (canon.Event, error) {
	return msg.NewDecoder(msg.Envelope{
		Channel:    ch,
		IDField:    "messageId",
		EventField: "type",
		TimeField:  "timestamp",
		Kinds:      kinds,
		Fill:       fill,
	}, n, lim)
}

// fill reads a Segment call's fields of o into ev. The envelope put the
// call type in ev.Name; Segment's own event or page name replaces it.
func fill(o *msg.Object, ev *canon.Event, ids *msg.IDs) {
	typ := ev.Name
	ev.Name = ""
	ids.Read(o, "anonymousId", canon.AnonymousID, canon.Observed)
	user, hasUser := ids.Read(o, "userId", canon.UserID, canon.Asserted)

	ctx := o.Obj("context")
	ids.Read(ctx.Obj("device"), "id", canon.DeviceID, canon.Observed)
	ctxTraits := ctx.Obj("traits")
	readContact(ids, ctxTraits)
	// A copy: Clean below rewrites the traits, and context.traits is
	// kept in Props as sent.
	ev.Traits = maps.Clone(ctxTraits.Map())

	traits := o.Obj("traits")
	props := o.Obj("properties")
	switch typ {
	case "track":
		ev.Name = o.ReqStr("event")
		if strings.EqualFold(strings.TrimSpace(ev.Name), OrderCompleted) {
			ev.Kind = canon.KindOrder
			amount := "revenue"
			if !props.Has(amount) {
				amount = "total"
			}
			ev.Amount = props.Money(amount, "currency", DefaultCurrency)
		}
	case "page", "screen":
		ev.Name = o.Str("name")
	case "alias":
		prev, hasPrev := ids.Read(o, "previousId", canon.AnonymousID, canon.Observed)
		if !o.Has("previousId") {
			o.Fail(msg.ReasonMissingField, "previousId", "is required")
		}
		if !o.Has("userId") {
			o.Fail(msg.ReasonMissingField, "userId", "is required")
		}
		if hasPrev && hasUser {
			ev.Link = &canon.Pair{A: prev, B: user}
		}
	case "group":
		ev.GroupID = o.ReqID("groupId")
		ev.GroupTraits = traits.Map()
	}
	if typ != "group" {
		readContact(ids, traits)
		ev.Traits = overlay(ev.Traits, traits.Map())
	}
	ids.Clean(ev.Traits, "email", canon.Email)
	ids.Clean(ev.Traits, "phone", canon.Phone)
	ev.Props = props.Map()
	if ctx.Present() {
		ev.Props = msg.KeepField(ev.Props, "context", ctx.Map())
	}
}

// readContact reads the email and phone of a traits object (asserted).
func readContact(ids *msg.IDs, traits *msg.Object) {
	ids.Read(traits, "email", canon.Email, canon.Asserted)
	ids.Read(traits, "phone", canon.Phone, canon.Asserted)
}

// overlay returns base with the fields of top set over it.
func overlay(base, top map[string]any) map[string]any {
	if base == nil {
		return top
	}
	for k, v := range top {
		base[k] = v
	}
	return base
}
