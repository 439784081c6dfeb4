package msg

import (
	"errors"
	"slices"
	"sync"

	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

// IDs gathers an event's identifiers: it normalizes each value, keeps the
// usable ones once (with the highest trust any field gave them) and counts
// the refused ones by rule, for canon.Event.Dropped.
type IDs struct {
	n       *normalize.Normalizer
	obs     []canon.Observation
	dropped map[string]int
	memo    []memo // results of normalize, so Clean does not parse a phone twice
}

type memo struct {
	t   canon.IDType
	raw string
	id  canon.Identifier
	err error
}

// normalize is n.Normalize, remembered for the life of the IDs.
func (b *IDs) normalize(t canon.IDType, raw string) (canon.Identifier, error) {
	for _, m := range b.memo {
		if m.t == t && m.raw == raw {
			return m.id, m.err
		}
	}
	id, err := b.n.Normalize(t, raw)
	b.memo = append(b.memo, memo{t: t, raw: raw, id: id, err: err})
	return id, err
}

// NewIDs returns an empty set that normalizes with n.
func NewIDs(n *normalize.Normalizer) *IDs { return &IDs{n: n} }

// idsPool keeps the IDs of finished decoder calls, so that their obs and
// memo slices are grown once, not on every message. Their size is bounded
// by the identifier fields a decoder reads.
var idsPool = sync.Pool{New: func() any { return new(IDs) }}

// getIDs is NewIDs from idsPool; the caller returns b with putIDs once it
// has called Finish.
func getIDs(n *normalize.Normalizer) *IDs {
	b := idsPool.Get().(*IDs)
	b.n = n
	return b
}

// putIDs drops b's references into the message and the event (Dropped is
// the event's now) and pools b.
func putIDs(b *IDs) {
	clear(b.obs)
	clear(b.memo)
	b.n, b.obs, b.memo, b.dropped = nil, b.obs[:0], b.memo[:0], nil
	idsPool.Put(b)
}

// Take reads the identifier of type t at key of o and normalizes it without
// adding it. ok is false when the field is absent, or refused (then the
// refusal is counted in Dropped).
func (b *IDs) Take(o *Object, key string, t canon.IDType) (canon.Identifier, bool) {
	raw, present := o.ID(key)
	if !present {
		return canon.Identifier{}, false
	}
	return b.Norm(t, raw)
}

// Norm normalizes raw as type t, counting a refusal in Dropped.
func (b *IDs) Norm(t canon.IDType, raw string) (canon.Identifier, bool) {
	id, err := b.normalize(t, raw)
	if err != nil {
		rule := string(normalize.RuleInvalid)
		var ne *normalize.Error
		if errors.As(err, &ne) {
			rule = string(ne.Rule)
		}
		if b.dropped == nil {
			b.dropped = make(map[string]int)
		}
		b.dropped[rule]++
		return canon.Identifier{}, false
	}
	return id, true
}

// Read is Take followed by Add.
func (b *IDs) Read(o *Object, key string, t canon.IDType, trust canon.Trust) (canon.Identifier, bool) {
	id, ok := b.Take(o, key, t)
	if ok {
		b.Add(id, trust)
	}
	return id, ok
}

// Add adds a normalized identifier; a repeated one keeps the higher trust.
func (b *IDs) Add(id canon.Identifier, trust canon.Trust) {
	for i := range b.obs {
		if b.obs[i].Identifier == id {
			b.obs[i].Trust = max(b.obs[i].Trust, trust)
			return
		}
	}
	b.obs = append(b.obs, canon.Observation{Identifier: id, Trust: trust})
}

// Drop counts n identifiers left out under rule (for identifiers a decoder
// ignores on purpose, such as device ids on an erasure request).
func (b *IDs) Drop(rule string, n int) {
	if n == 0 {
		return
	}
	if b.dropped == nil {
		b.dropped = make(map[string]int)
	}
	b.dropped[rule] += n
}

// Len is the number of usable identifiers gathered so far.
func (b *IDs) Len() int { return len(b.obs) }

// Finish completes ev from the top-level Object o and the identifiers b:
// it returns the first reader problem, refuses an event without a usable
// identifier (no_identifier), keeps the fields no reader took in ev.Props,
// and checks ev.Validate. Every error is a *Reject.
func Finish(o *Object, ev *canon.Event, b *IDs) error {
	if err := o.Err(); err != nil {
		return err
	}
	ev.Dropped = b.dropped
	if len(b.obs) == 0 {
		return Rejectf(o.Channel(), ReasonNoIdentifier, "", "no usable identifier in the message")
	}
	// The event gets its own copy: b may be pooled and reused.
	ev.Identifiers = slices.Clone(b.obs)
	ev.Props = o.keepRest(ev.Props)
	if err := ev.Validate(); err != nil {
		return AsReject(o.Channel(), err)
	}
	return nil
}

// Keep adds the fields of rest to props and returns props. A field whose
// name props already holds is kept under the name prefixed with "_", so
// nothing is dropped and nothing is overwritten.
func Keep(props, rest map[string]any) map[string]any {
	if len(rest) == 0 {
		return props
	}
	if props == nil {
		return rest
	}
	for k, v := range rest {
		props = KeepField(props, k, v)
	}
	return props
}

// KeepField is Keep for the one field k, without building a map for it.
func KeepField(props map[string]any, k string, v any) map[string]any {
	if props == nil {
		return map[string]any{k: v}
	}
	for {
		if _, taken := props[k]; !taken {
			break
		}
		k = "_" + k
	}
	props[k] = v
	return props
}

// Clean rewrites the field key of a traits map, an identifier the decoder
// has read already, to its normalized form, or deletes it when refused (the
// refusal was counted when it was read). Profile traits thus never carry a
// value the identity graph refused, nor two spellings of one email.
func (b *IDs) Clean(traits map[string]any, key string, t canon.IDType) {
	raw, ok := traits[key].(string)
	if !ok {
		return // absent, null (kept as sent), or a number id
	}
	id, err := b.normalize(t, raw)
	switch {
	case err != nil:
		delete(traits, key)
	case id.Value != raw:
		// Only a changed value is stored: storing it boxes it anew.
		traits[key] = id.Value
	}
}
