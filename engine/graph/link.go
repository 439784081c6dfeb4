package graph

import (
	"fmt"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// propose stores a pending link instead of merging, for identifiers whose
// policy is candidate: the CIAM or an admin confirms it with Link.
func (g *Graph) propose(tx *store.Txn, anchor canon.Identifier, o canon.Observation, a, b *profile.State, ev *canon.Evidence) error {
	c := &store.Candidate{A: anchor, B: o.Identifier, Reason: fmt.Sprintf("%s policy is candidate for %s links", o.Type, o.Trust), Confidence: 0.5, Evidence: *ev}
	if err := tx.PutCandidate(c); err != nil {
		return err
	}
	via := o.Identifier
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogCandidate, ProfileID: a.ID, Others: []string{b.ID}, Identifier: &via, Reason: c.Reason, Evidence: ev,
	}})
	return nil
}

// Link links two identifiers on an explicit instruction (an admin, or a
// confirmation of a candidate): their profiles merge when the limits allow.
// A link that would break a limit fails with canon.ErrConflict; two unknown
// identifiers fail with canon.ErrNotFound. It returns the components whose
// profiles changed.
func (g *Graph) Link(tx *store.Txn, a, b canon.Identifier, ev *canon.Evidence) ([]uint64, error) {
	ka, kb := a.Key(), b.Key()
	ca, qa, err := entry(tx, ka)
	if err != nil {
		return nil, err
	}
	cb, qb, err := entry(tx, kb)
	if err != nil {
		return nil, err
	}
	if qa || qb {
		return nil, fmt.Errorf("%w: a quarantined identifier cannot link; release it first", canon.ErrConflict)
	}
	// An erased identifier is known only by its hash; linking it would
	// bring the person back, and their late events with it.
	for _, x := range []struct {
		id   canon.Identifier
		comp uint64
	}{{a, ca}, {b, cb}} {
		if x.comp != 0 {
			continue
		}
		erased, err := tx.Erased(g.Hash(x.id))
		if err != nil {
			return nil, err
		}
		if erased {
			return nil, fmt.Errorf("%w: the identifier was erased", canon.ErrConflict)
		}
	}
	if ca == 0 && cb == 0 {
		return nil, fmt.Errorf("%w: neither identifier is known", canon.ErrNotFound)
	}
	if ca == 0 {
		a, b, ka, kb, ca, cb = b, a, kb, ka, cb, ca
	}
	sa, err := g.load(tx, ca)
	if err != nil {
		return nil, err
	}
	var out *profile.State
	switch {
	case cb == 0:
		if sa.Count(b.Type) >= g.limit[b.Type] {
			return nil, fmt.Errorf("%w: the profile already holds %d %s values", canon.ErrConflict, g.limit[b.Type], b.Type)
		}
		g.join(tx, sa, canon.Observation{Identifier: b, Trust: ev.Trust}, ev.Time)
		out = sa
	case ca == cb:
		out = sa
	default:
		sb, err := g.load(tx, cb)
		if err != nil {
			return nil, err
		}
		if over := g.over(sa, sb); len(over) > 0 {
			return nil, fmt.Errorf("%w: merging would exceed the %s limit", canon.ErrConflict, over[0])
		}
		if out, err = g.merge(tx, sa, sb, canon.Observation{Identifier: b, Trust: ev.Trust}, ev); err != nil {
			return nil, err
		}
	}
	if err := tx.PutEdge(ka, kb, *ev); err != nil {
		return nil, err
	}
	if err := tx.DeleteCandidate(ka, kb); err != nil {
		return nil, err
	}
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogLink, ProfileID: out.ID, Identifier: &b, Reason: "explicit link", Evidence: ev,
	}})
	return []uint64{out.Comp}, nil
}
