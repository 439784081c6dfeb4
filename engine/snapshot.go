package engine

import (
	"context"
	"fmt"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// EachProfile calls fn for every profile, in one consistent snapshot.
func (e *Engine) EachProfile(ctx context.Context, fn func(p *canon.Profile) error) error {
	return e.st.View(func(r *store.Reader) error {
		return r.EachProfile(func(st *profile.State) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(&st.Profile)
		})
	})
}

// EachMapping calls fn for every identifier with the id of the profile that
// holds it, in one consistent snapshot. It keeps a map of component to
// profile id, about 50 bytes per profile, for the duration of the call.
func (e *Engine) EachMapping(ctx context.Context, fn func(m canon.Mapping) error) error {
	return e.st.View(func(r *store.Reader) error {
		ids := map[uint64]string{}
		err := r.EachProfile(func(st *profile.State) error {
			ids[st.Comp] = st.ID
			return ctx.Err()
		})
		if err != nil {
			return err
		}
		return r.EachIdentifier(func(id canon.Identifier, entry uint64) error {
			pid, ok := ids[graph.Comp(entry)]
			if !ok {
				return fmt.Errorf("engine: identifier of type %s maps to a missing profile", id.Type)
			}
			return fn(canon.Mapping{Identifier: id, ProfileID: pid})
		})
	})
}
