package engine

import (
	"fmt"
	"slices"

	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// do runs a command in the writer.
func (e *Engine) do(c *canon.Command) (canon.Result, error) {
	switch c.Kind {
	case canon.CmdConsent:
		return e.consent(c)
	}
	return canon.Result{}, fmt.Errorf("%w: unknown command %q", canon.ErrInvalid, c.Kind)
}

// consent sets purposes on a profile, with the API as the source.
func (e *Engine) consent(c *canon.Command) (canon.Result, error) {
	for p := range c.Consent {
		if !slices.Contains(canon.Purposes, p) {
			return canon.Result{}, fmt.Errorf("%w: unknown consent purpose", canon.ErrInvalid)
		}
	}
	var out canon.Profile
	err := e.st.Update(e.cfg.Now(), func(tx *store.Txn) error {
		comp, err := tx.Alias(c.ProfileID)
		if err != nil {
			return err
		}
		st, err := tx.Profile(comp)
		if err != nil {
			return err
		}
		if comp == 0 || st == nil {
			return canon.ErrNotFound
		}
		at := c.Time
		if at.IsZero() {
			at = tx.Now()
		}
		for p, v := range c.Consent {
			st.SetConsent(p, canon.ConsentState{Value: v, Time: at, Source: "api"})
		}
		e.finalize(tx, st)
		out = st.Profile
		return nil
	})
	if err != nil {
		return canon.Result{}, fmt.Errorf("engine: consent: %w", err)
	}
	return canon.Result{Profile: &out}, nil
}
