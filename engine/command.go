package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// apiChannel is the evidence channel of links and unlinks made through
// the API.
const apiChannel canon.Channel = "api"

// do runs a command in the writer. Every command is one transaction.
func (e *Engine) do(c *canon.Command) (canon.Result, error) {
	var res canon.Result
	err := e.st.Update(e.cfg.Now(), func(tx *store.Txn) error {
		at := c.Time
		if at.IsZero() {
			at = tx.Now()
		}
		ev := &canon.Evidence{Channel: apiChannel, MessageID: "api:" + c.Actor, Time: at, Trust: canon.Verified}
		var touched []uint64
		var err error
		switch c.Kind {
		case canon.CmdConsent:
			touched, err = e.consent(tx, c, at)
		case canon.CmdErase:
			res.Receipt, touched, err = e.erase(tx, c.ProfileID)
		case canon.CmdLink:
			if c.Pair == nil {
				return fmt.Errorf("%w: link needs a pair", canon.ErrInvalid)
			}
			touched, err = e.graph.Link(tx, c.Pair.A, c.Pair.B, ev)
		case canon.CmdUnlink:
			if c.Pair == nil {
				return fmt.Errorf("%w: unlink needs a pair", canon.ErrInvalid)
			}
			var found bool
			touched, found, err = e.graph.Unlink(tx, c.Pair.A, c.Pair.B, ev)
			if err == nil && !found {
				err = fmt.Errorf("%w: no link between these identifiers", canon.ErrNotFound)
			}
		case canon.CmdRelease:
			if c.Identifier == nil {
				return fmt.Errorf("%w: release needs an identifier", canon.ErrInvalid)
			}
			var found bool
			touched, found, err = e.graph.Release(tx, *c.Identifier)
			if err == nil && !found {
				err = fmt.Errorf("%w: identifier is not quarantined", canon.ErrNotFound)
			}
		default:
			return fmt.Errorf("%w: unknown command %q", canon.ErrInvalid, c.Kind)
		}
		if err != nil {
			return err
		}
		restricted := map[string]bool{}
		defer restrictIdentity(tx, restricted)
		for _, comp := range touched {
			st, err := tx.Profile(comp)
			if err != nil {
				return err
			}
			if st != nil {
				if e.finalize(tx, st) {
					for _, id := range append([]string{st.ID}, st.MergedFrom...) {
						restricted[id] = true
					}
				}
				// An erasure rewrites other people's profiles (without
				// references to the erased one): never hand those back.
				if res.Profile == nil && c.Kind != canon.CmdErase {
					p := st.Profile
					res.Profile = &p
				}
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, canon.ErrNotFound) || errors.Is(err, canon.ErrInvalid) || errors.Is(err, canon.ErrConflict) {
			return canon.Result{}, err
		}
		return canon.Result{}, fmt.Errorf("engine: %s: %w", c.Kind, err)
	}
	return res, nil
}

// consent sets purposes on a profile with the API as the source. It is
// filed as an event, so a later split keeps it on the right side.
func (e *Engine) consent(tx *store.Txn, c *canon.Command, at time.Time) ([]uint64, error) {
	for p := range c.Consent {
		if !slices.Contains(canon.Purposes, p) {
			return nil, fmt.Errorf("%w: unknown consent purpose", canon.ErrInvalid)
		}
	}
	st, err := e.profileByID(tx, c.ProfileID)
	if err != nil {
		return nil, err
	}
	ev := &canon.Event{Kind: canon.KindConsentUpdated, Name: profile.SourceAPI, Time: at, Consent: c.Consent}
	st.AddEvent(ev)
	// Filed under the profile's first identifier that is not quarantined:
	// a quarantined value gives its events away, and this one names no
	// identifier to go to.
	key, err := e.graph.FirstHeld(tx, st.Comp)
	if err != nil {
		return nil, err
	}
	if key == "" {
		first := st.Identifiers[0]
		key = canon.Identifier{Type: first.Type, Value: first.Value}.Key()
	}
	if err := tx.PutEvent(key, ev); err != nil {
		return nil, err
	}
	return []uint64{st.Comp}, nil
}

// erase erases a person; it returns the receipt and the other profiles
// rewritten without references to them.
func (e *Engine) erase(tx *store.Txn, pid string) (*canon.Receipt, []uint64, error) {
	st, err := e.profileByID(tx, pid)
	if err != nil {
		return nil, nil, err
	}
	er, err := e.graph.Erase(tx, st.Comp, "erasure requested through the API")
	if err != nil {
		return nil, nil, err
	}
	e.m.erasures.Inc()
	return &canon.Receipt{
		ProfileIDs: er.ProfileIDs, Identifiers: er.Identifiers, Links: er.Links, Events: er.Events,
		Sinks: append([]string{"state", "cache"}, e.cfg.Sinks...), At: tx.Now(),
	}, er.Touched, nil
}

func (e *Engine) profileByID(tx *store.Txn, pid string) (*profile.State, error) {
	comp, err := tx.Alias(pid)
	if err != nil {
		return nil, err
	}
	if comp == 0 {
		return nil, canon.ErrNotFound
	}
	st, err := tx.Profile(comp)
	if err != nil {
		return nil, err
	}
	if st == nil || len(st.Identifiers) == 0 {
		return nil, canon.ErrNotFound
	}
	return st, nil
}
