package msg

import (
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

// Envelope describes what every message of a channel has: the fields
// holding its id, its event name and its time, and the event names it
// knows. Fill reads the rest of the message into the event.
type Envelope struct {
	Channel    canon.Channel
	IDField    string                // dedup key → Event.MessageID (required)
	EventField string                // event name → Event.Name, mapped by Kinds (required)
	TimeField  string                // RFC 3339 → Event.Time (required)
	Kinds      map[string]canon.Kind // an event name not listed is unknown_event
	// Fill reads the channel's own fields of o into ev and its identifiers
	// into ids. It reports problems through o (Object.Fail and the readers).
	Fill func(o *Object, ev *canon.Event, ids *IDs)
}

// NewDecoder returns the decoder of env: Parse within lim, read the
// envelope, Fill, then Finish. The decoder is pure and safe for concurrent
// use; every error it returns is a *Reject.
func NewDecoder(env Envelope, n *normalize.Normalizer, lim Limits) func([]byte) (canon.Event, error) {
	return func(raw []byte) (canon.Event, error) {
		o, err := parse(env.Channel, raw, lim, true)
		if err != nil {
			return canon.Event{}, err
		}
		name, kind := Enum(o, env.EventField, env.Kinds, ReasonUnknownEvent)
		ev := canon.Event{
			Channel:   env.Channel,
			MessageID: o.ReqID(env.IDField),
			Kind:      kind,
			Name:      name,
			Time:      o.Time(env.TimeField),
		}
		ids := getIDs(n)
		defer putIDs(ids)
		if o.Err() == nil {
			env.Fill(o, &ev, ids)
		}
		if err := Finish(o, &ev, ids); err != nil {
			return canon.Event{}, err
		}
		return ev, nil
	}
}
