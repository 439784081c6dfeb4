package engine

import (
	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// InvariantsEnabled reports whether CheckInvariants checks anything: it
// does when the tests are built with -tags invariants.
const InvariantsEnabled = graph.InvariantsEnabled

// CheckInvariants checks the store-level invariants of the identity graph
// (a no-op without -tags invariants). Call it while the writer is idle.
func (e *Engine) CheckInvariants() error { return e.graph.CheckInvariants(e.st) }

// IsErased reports whether id is remembered as erased (by its keyed hash).
func (e *Engine) IsErased(id canon.Identifier) (bool, error) {
	m, err := e.Erased([]canon.Identifier{id})
	return m[id], err
}

// Erased reports which of ids are remembered as erased, in one snapshot.
func (e *Engine) Erased(ids []canon.Identifier) (map[canon.Identifier]bool, error) {
	out := make(map[canon.Identifier]bool, len(ids))
	err := e.st.View(func(r *store.Reader) error {
		for _, id := range ids {
			erased, err := r.Erased(e.graph.Hash(id))
			if err != nil {
				return err
			}
			out[id] = erased
		}
		return nil
	})
	return out, err
}

// StoredLog counts the change records still stored in the state's change
// log (acknowledged ones are trimmed).
func (e *Engine) StoredLog() (int, error) {
	n := 0
	err := e.st.View(func(r *store.Reader) error {
		cs, err := r.Changes(0, 1<<20)
		n = len(cs)
		return err
	})
	return n, err
}
