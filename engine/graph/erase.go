package graph

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"slices"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// Hash is the keyed hash kept of an erased identifier: enough to recognize
// it again, nothing to recover it from.
func (g *Graph) Hash(id canon.Identifier) string {
	// Every new identifier is hashed (was it erased?): the keyed state is
	// kept in a pool rather than derived from the secret each time.
	m, _ := g.hmacs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, g.secret)
	}
	m.Reset()
	_, _ = io.WriteString(m, string(id.Type)) // writes to a hash never fail
	_, _ = m.Write([]byte{0})
	_, _ = io.WriteString(m, id.Value)
	var sum [sha256.Size]byte
	s := hex.EncodeToString(m.Sum(sum[:0]))
	g.hmacs.Put(m)
	return s
}

// Erasure is what one erasure removed.
type Erasure struct {
	ProfileIDs  []string
	Identifiers int
	Links       int
	Events      int
	// Touched lists other profiles that named the erased ones (in their
	// recent conflicts) and were rewritten without them.
	Touched []uint64
}

// Erase removes a person: every identifier, link, pending link, filed
// event and the profile, keeping only keyed hashes of the identifiers so
// that later events carrying them are recognized and dropped.
func (g *Graph) Erase(tx *store.Txn, comp uint64, reason string) (*Erasure, error) {
	st, err := g.load(tx, comp)
	if err != nil {
		return nil, err
	}
	out := &Erasure{ProfileIDs: append([]string{st.ID}, st.MergedFrom...)}
	r := tx.Scan() // one iterator for every identifier's links
	links, err := r.Links(keysOf(st))
	r.Close()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if err := tx.DeleteEdge(l.A, l.B); err != nil {
			return nil, err
		}
	}
	out.Links = len(links)
	var hashes []string
	for _, pi := range st.Identifiers {
		id := pi.Identifier()
		key := id.Key()
		_, q, err := entry(tx, key)
		if err != nil {
			return nil, err
		}
		pending := false
		if q {
			if pending, err = tx.RefilePending(key); err != nil {
				return nil, err
			}
		}
		if !pending {
			// Events still to move off a quarantined value are other
			// people's, on their way to them (RefileRest).
			n, err := tx.EraseEvents(key)
			if err != nil {
				return nil, err
			}
			out.Events += n
		}
		if err := tx.DeleteCandidates(key); err != nil {
			return nil, err
		}
		h := g.Hash(id)
		if q {
			// A quarantined value is junk shared by many, not the
			// person's: remembered as erased, it would drop everyone's
			// later events that carry it and erase their profiles
			// (DESIGN section 7); forgotten, it would link strangers
			// again. It leaves the profile and stays quarantined, with
			// no profile, until an admin releases it.
			tx.SetID(key, quarantineBit)
		} else {
			if err := tx.DeleteQuarantine(key); err != nil {
				return nil, err
			}
			if err := tx.MarkErased(h); err != nil {
				return nil, err
			}
			// Events parked under it while it was quarantined count
			// for the person since its release: they go with it.
			n, err := tx.EraseEvents(ParkedKey(key))
			if err != nil {
				return nil, err
			}
			out.Events += n
			tx.SetID(key, 0)
			// The identifier maps to no profile any more: sinks delete
			// its rows, and the rows of events filed under it, whatever
			// profile id they carry (those of a time the person was
			// merged with someone else carry the other's).
			tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: id}})
		}
		hashes = append(hashes, h)
		out.Identifiers++
	}
	for _, pid := range out.ProfileIDs {
		tx.SetAlias(pid, 0)
	}
	if err := g.forget(tx, st, out); err != nil {
		return nil, err
	}
	tx.DeleteProfile(comp)
	slices.Sort(hashes)
	tx.Emit(canon.Change{Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: out.ProfileIDs, Hashes: hashes, At: tx.Now()}})
	tx.Emit(canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: st.ID, Reason: "erased"}})
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{Type: canon.LogErase, ProfileID: st.ID, Others: st.MergedFrom, Reason: reason}})
	return out, nil
}

// Spare says which registered profiles (with a user_id or crm_id of their
// own) an erasure by identifiers leaves alone.
type Spare int

const (
	// SpareNone erases whoever holds the identifiers.
	SpareNone Spare = iota
	// SpareRegistered spares every registered profile.
	SpareRegistered
	// SpareUnnamed spares the registered profiles none of whose user_id
	// and crm_id values are among the identifiers: a request that names
	// its user erases that user, and an identifier the user shares with
	// another registered customer (a family email the other one holds)
	// leaves the other customer alone.
	SpareUnnamed
)

// EraseIdentifiers erases whoever holds the given identifiers, and marks
// the unknown ones as erased so that they never create a profile later;
// spare says which registered profiles it leaves alone.
func (g *Graph) EraseIdentifiers(tx *store.Txn, ids []canon.Identifier, spare Spare, reason string) ([]*Erasure, error) {
	var out []*Erasure
	for _, id := range ids {
		comp, q, err := entry(tx, id.Key())
		if err != nil {
			return nil, err
		}
		if q {
			continue // junk shared by many: it is nobody's to erase
		}
		if comp == 0 {
			if err := tx.MarkErased(g.Hash(id)); err != nil {
				return nil, err
			}
			continue
		}
		st, err := g.load(tx, comp)
		if err != nil {
			return nil, err
		}
		if spared(st, ids, spare) {
			continue
		}
		e, err := g.Erase(tx, comp, reason)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// spared reports whether spare leaves the profile st alone when ids are
// erased.
func spared(st *profile.State, ids []canon.Identifier, spare Spare) bool {
	registered := func(t canon.IDType) bool { return t == canon.UserID || t == canon.CRMID }
	switch spare {
	case SpareRegistered:
		return st.Count(canon.UserID) > 0 || st.Count(canon.CRMID) > 0
	case SpareUnnamed:
		own := false
		for _, pi := range st.Identifiers {
			if !registered(pi.Type) {
				continue
			}
			own = true
			if slices.Contains(ids, pi.Identifier()) {
				return false
			}
		}
		return own
	}
	return false
}

// suppress handles an event that carries an erased identifier: the event
// is dropped, and its other identifiers, being the erased person's too,
// are erased, except where they belong to another registered customer.
func (g *Graph) suppress(tx *store.Txn, ev *canon.Event) (*Resolution, error) {
	ids := make([]canon.Identifier, 0, len(ev.Identifiers))
	for _, o := range ev.Identifiers {
		ids = append(ids, o.Identifier)
	}
	erased, err := g.EraseIdentifiers(tx, ids, SpareRegistered, "event of an erased person arrived late")
	if err != nil {
		return nil, err
	}
	res := &Resolution{Suppressed: true}
	for _, e := range erased {
		res.Erased = append(res.Erased, e.ProfileIDs...)
		res.Touched = append(res.Touched, e.Touched...)
	}
	return res, nil
}

// forget removes the erased profile ids from the records of other people
// and values that name them: the other side of each recent conflict, the
// conflict counts of the values involved, and the member lists of the
// person's B2B accounts.
func (g *Graph) forget(tx *store.Txn, st *profile.State, out *Erasure) error {
	gone := func(ids []string) bool {
		return slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(out.ProfileIDs, id) })
	}
	for _, c := range st.Conflicts {
		for _, other := range c.Others {
			oc, err := tx.Alias(other)
			if err != nil {
				return err
			}
			o, err := tx.Profile(oc)
			if err != nil {
				return err
			}
			if oc == 0 || oc == st.Comp || o == nil {
				continue
			}
			n := len(o.Conflicts)
			o.Conflicts = slices.DeleteFunc(o.Conflicts, func(r canon.LogRecord) bool { return gone(r.Others) })
			if len(o.Conflicts) != n {
				tx.PutProfile(o)
				if !slices.Contains(out.Touched, oc) {
					out.Touched = append(out.Touched, oc)
				}
			}
		}
		if c.Identifier == nil {
			continue
		}
		q, err := tx.Quarantine(c.Identifier.Key())
		if err != nil {
			return err
		}
		if q != nil && gone(q.Profiles) {
			q.Profiles = slices.DeleteFunc(q.Profiles, func(id string) bool { return slices.Contains(out.ProfileIDs, id) })
			if err := tx.PutQuarantine(c.Identifier.Key(), q); err != nil {
				return err
			}
		}
	}
	for _, gid := range st.Groups {
		a, err := tx.Account(gid)
		if err != nil || a == nil {
			return err
		}
		a.Members = slices.DeleteFunc(a.Members, func(id string) bool { return slices.Contains(out.ProfileIDs, id) })
		if err := tx.SaveAccount(a); err != nil {
			return err
		}
	}
	return nil
}
