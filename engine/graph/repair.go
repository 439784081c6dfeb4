package graph

import (
	"slices"
	"strings"

	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// repair undoes what a junk value glued together once it is quarantined:
// it removes the value's links and rebuilds its profile from the links
// that remain, so people merged only through the junk value split apart,
// each refolded from their own events. Other identifiers that came in the
// same message as the junk value keep their link to each other: they are
// relinked, highest priority first, with that message's evidence. The
// events filed under the value go to other identifiers of theirs.
func (g *Graph) repair(tx *store.Txn, id canon.Identifier) ([]uint64, error) {
	key := id.Key()
	comp, _, err := entry(tx, key)
	if err != nil || comp == 0 {
		return nil, err
	}
	st, err := g.load(tx, comp)
	if err != nil {
		return nil, err
	}
	r := tx.Scan()                    // one iterator for every identifier's links
	links, err := r.Links(keysOf(st)) // the value is one of them
	r.Close()
	if err != nil {
		return nil, err
	}
	type group struct {
		ev    canon.Evidence
		other []canon.Identifier
	}
	var groups []*group
	glued := false // the value had links
	for _, l := range links {
		otherKey := l.B
		switch key {
		case l.A:
		case l.B:
			otherKey = l.A
		default:
			continue
		}
		glued = true
		if err := tx.DeleteEdge(l.A, l.B); err != nil {
			return nil, err
		}
		other, ok := canon.ParseKey(otherKey)
		if !ok || l.Evidence.Channel == "api" {
			continue // an explicit link is one pair, not a message to relink
		}
		i := slices.IndexFunc(groups, func(gr *group) bool {
			return gr.ev.Channel == l.Evidence.Channel && gr.ev.MessageID == l.Evidence.MessageID
		})
		if i < 0 {
			groups = append(groups, &group{ev: l.Evidence})
			i = len(groups) - 1
		}
		groups[i].other = append(groups[i].other, other)
	}
	for _, gr := range groups {
		if len(gr.other) < 2 {
			continue
		}
		slices.SortFunc(gr.other, func(a, b canon.Identifier) int {
			if d := g.prio[a.Type] - g.prio[b.Type]; d != 0 {
				return d
			}
			return strings.Compare(a.Value, b.Value)
		})
		for _, o := range gr.other[1:] {
			if err := tx.PutEdge(gr.other[0].Key(), o.Key(), gr.ev); err != nil {
				return nil, err
			}
		}
	}
	// The value is nobody's: what was filed under it goes to the next of
	// each event's identifiers that is held and not quarantined, in its
	// profile or another. Events of this profile are refolded below with
	// their part; another profile folds its new events in now.
	// An event without identifiers (a consent change through the API) is
	// the profile's: it goes to the profile's first other identifier that
	// is not quarantined, which the split keeps with the profile's id when
	// it can.
	owner, err := g.firstHeld(tx, comp, id)
	if err != nil {
		return nil, err
	}
	moved, next, err := tx.RefileEvents(key, 0, maxRefile, g.refileDest(tx, id, owner))
	if err != nil {
		return nil, err
	}
	// Events past the bound move in transactions of their own (RefileRest).
	if err := tx.SetRefile(key, next, owner); err != nil {
		return nil, err
	}
	others, err := g.foldMoved(tx, moved, comp) // profiles other than this one that took events
	if err != nil {
		return nil, err
	}
	// Events parked under the value counted for its profile since a
	// release; quarantined again, they count for no one: refold.
	parked, err := hasEvents(tx, ParkedKey(key))
	if err != nil {
		return nil, err
	}
	// Events left to move count for no one until they do (foldEvents).
	pending := next > 0
	if !glued && len(others) == 0 && !parked && !pending {
		return nil, nil // nothing glued, nothing moved out
	}
	parts, err := g.rebuild(tx, comp, &id, nil, len(others) > 0 || parked || pending)
	if err != nil {
		return nil, err
	}
	if err := g.emitRefiled(tx, moved); err != nil {
		return nil, err
	}
	return append(parts, others...), nil
}

// foldMoved folds each moved event into the profile of the identifier it
// is filed under now, unless that is comp's (refolded whole by the
// caller; 0: none is), and returns the components that took events.
func (g *Graph) foldMoved(tx *store.Txn, moved []store.Refiled, comp uint64) ([]uint64, error) {
	var out []uint64
	for _, m := range moved {
		c, _, err := entry(tx, m.To)
		if err != nil {
			return nil, err
		}
		if c == 0 || c == comp {
			continue
		}
		st, err := g.load(tx, c)
		if err != nil {
			return nil, err
		}
		st.AddEvent(m.Event)
		tx.PutProfile(st)
		if m.Event.GroupID != "" {
			if err := syncAccounts(tx, st, nil); err != nil {
				return nil, err
			}
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// emitRefiled records each moved event again with its new anchor and the
// profile that holds the anchor now, so that sinks replace the record they
// hold under the quarantined value: analysts see the event on its person,
// and erasing that person finds it.
func (g *Graph) emitRefiled(tx *store.Txn, moved []store.Refiled) error {
	for _, m := range moved {
		anchor, ok := canon.ParseKey(m.To)
		if !ok {
			continue // not an identifier's key: nothing a sink could anchor on
		}
		c, _, err := entry(tx, m.To)
		if err != nil {
			return err
		}
		if c == 0 {
			continue
		}
		st, err := g.load(tx, c)
		if err != nil {
			return err
		}
		tx.EmitRefiled(m, &canon.EventRecord{Event: *m.Event, ProfileID: st.ID, Anchor: anchor, Refiled: true})
	}
	return nil
}

// firstHeld returns the key of a profile's first identifier, other than
// skip, that is not quarantined, or "".
func (g *Graph) firstHeld(tx *store.Txn, comp uint64, skip canon.Identifier) (string, error) {
	st, err := g.load(tx, comp)
	if err != nil {
		return "", err
	}
	for _, pi := range g.Sort(observations(st.Identifiers)) {
		if pi.Identifier == skip {
			continue
		}
		if _, q, err := entry(tx, pi.Key()); err != nil || !q {
			return pi.Key(), err
		}
	}
	return "", nil
}

// observations views a profile's identifiers as observations, to sort them.
func observations(ids []canon.ProfileIdentifier) []canon.Observation {
	out := make([]canon.Observation, len(ids))
	for i, pi := range ids {
		out[i] = canon.Observation{Identifier: pi.Identifier(), Trust: pi.Trust}
	}
	return out
}

// FirstHeld is firstHeld for the engine: where an event of a whole profile
// (a consent change through the API) is filed.
func (g *Graph) FirstHeld(tx *store.Txn, comp uint64) (string, error) {
	return g.firstHeld(tx, comp, canon.Identifier{})
}

// maxRefile bounds the events one transaction moves off a quarantined
// value, so that it stays within Badger's size limit; those beyond it
// move in the next ones (RefileRest).
const maxRefile = 1000

// refileDest picks where each event filed under the quarantined value junk
// goes: an event without identifiers (a consent change through the API)
// to owner, the first other identifier not quarantined of the profile the
// value was in, and others by refileTo.
func (g *Graph) refileDest(tx *store.Txn, junk canon.Identifier, owner string) func(e *canon.Event) (string, error) {
	return func(e *canon.Event) (string, error) {
		if len(e.Identifiers) == 0 {
			return owner, nil
		}
		return g.refileTo(tx, e, junk)
	}
}

// RefileRest moves the next events still filed under a quarantined value
// past what its quarantine moved (maxRefile per transaction), for the
// writer to call while store.Refiling reports any. Each goes to the
// profile of its new identifier, which folds it in (until then it counted
// for no one, see foldEvents), and is recorded again for the sinks; once
// none is left to move, the value's profile is refolded with those that
// stayed. A value released meanwhile keeps the rest: they are its own
// again. It takes the first value after past (see store.Txn.NextRefile)
// and returns the components whose profiles changed and the value's key.
func (g *Graph) RefileRest(tx *store.Txn, past string) (touched []uint64, key string, err error) {
	key, after, owner, err := tx.NextRefile(past)
	if err != nil || key == "" {
		return nil, key, err
	}
	touched, err = g.refileRest(tx, key, after, owner)
	return touched, key, err
}

// refileRest is RefileRest for the value key, its events past after.
func (g *Graph) refileRest(tx *store.Txn, key string, after uint64, owner string) ([]uint64, error) {
	id, ok := canon.ParseKey(key)
	comp, q, err := entry(tx, key)
	if err != nil {
		return nil, err
	}
	if !ok || !q {
		// Released meanwhile: its profile refolded with them then.
		return nil, tx.SetRefile(key, 0, "")
	}
	if owner != "" {
		// Where the value's profile filed such events then, if it still
		// holds it.
		if c, q, err := entry(tx, owner); err != nil {
			return nil, err
		} else if c == 0 || q {
			owner = ""
		}
	}
	moved, next, err := tx.RefileEvents(key, after, maxRefile, g.refileDest(tx, id, owner))
	if err != nil {
		return nil, err
	}
	touched, err := g.foldMoved(tx, moved, 0)
	if err != nil {
		return nil, err
	}
	if err := g.emitRefiled(tx, moved); err != nil {
		return nil, err
	}
	if err := tx.SetRefile(key, next, owner); err != nil {
		return nil, err
	}
	switch {
	case next != 0:
	case comp != 0:
		// Done: the events no one took count for the value's profile
		// again (foldEvents).
		parts, err := g.rebuild(tx, comp, nil, nil, true)
		if err != nil {
			return nil, err
		}
		touched = append(touched, parts...)
	default:
		// Its profile was erased meanwhile (Erase left the events that
		// were to move): those no one took go as they would have then.
		if _, err := tx.EraseEvents(key); err != nil {
			return nil, err
		}
	}
	return touched, nil
}

// refileTo picks where an event filed under a quarantined value goes: the
// key of its highest-priority other identifier that is held and not
// quarantined, or "" when it has none. A candidate sighting does not take
// the event, as it does not pick an event's profile (see anchor).
func (g *Graph) refileTo(tx *store.Txn, e *canon.Event, junk canon.Identifier) (string, error) {
	for _, o := range g.Sort(e.Identifiers) {
		if o.Identifier == junk || g.policyOf(o) == Candidate {
			continue
		}
		c, q, err := entry(tx, o.Key())
		if err != nil {
			return "", err
		}
		if c != 0 && !q {
			return o.Key(), nil
		}
	}
	return "", nil
}
