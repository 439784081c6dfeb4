package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// GraphView is a profile's identity graph: identifiers, the links between
// them with their evidence, recent conflicts and pending candidates.
type GraphView struct {
	ProfileID   string            `json:"profile_id"`
	Level       canon.Level       `json:"identity_level"`
	MergedFrom  []string          `json:"merged_from,omitempty"`
	Identifiers []GraphIdentifier `json:"identifiers"`
	Links       []GraphLink       `json:"links"`
	Conflicts   []canon.LogRecord `json:"conflicts"`
	Candidates  []store.Candidate `json:"candidates"`
}

// GraphIdentifier is one identifier of the graph.
type GraphIdentifier struct {
	canon.ProfileIdentifier
	Quarantined bool `json:"quarantined,omitempty"`
}

// GraphLink is one stored link with its evidence.
type GraphLink struct {
	A        canon.Identifier `json:"a"`
	B        canon.Identifier `json:"b"`
	Evidence canon.Evidence   `json:"evidence"`
}

// maxExportEvents bounds the events one export returns.
const maxExportEvents = 100_000

// Graph returns a profile's identity graph.
func (e *Engine) Graph(ctx context.Context, pid string) (*GraphView, error) {
	var out *GraphView
	err := e.st.View(func(r *store.Reader) error {
		var err error
		out, err = e.graphView(r, pid)
		return err
	})
	return out, err
}

func (e *Engine) graphView(r *store.Reader, pid string) (*GraphView, error) {
	comp, err := r.Alias(pid)
	if err != nil {
		return nil, fmt.Errorf("engine: graph: %w", err)
	}
	if comp == 0 {
		return nil, canon.ErrNotFound
	}
	st, err := r.Profile(comp)
	if err != nil {
		return nil, fmt.Errorf("engine: graph: %w", err)
	}
	if st == nil {
		return nil, canon.ErrNotFound
	}
	g := &GraphView{ProfileID: st.ID, Level: st.Level, MergedFrom: st.MergedFrom, Links: []GraphLink{}, Conflicts: st.Conflicts, Candidates: []store.Candidate{}}
	if g.Conflicts == nil {
		g.Conflicts = []canon.LogRecord{}
	}
	byKey := map[string]canon.Identifier{}
	keys := make([]string, 0, len(st.Identifiers))
	for _, pi := range st.Identifiers {
		id := pi.Identifier()
		byKey[id.Key()] = id
		keys = append(keys, id.Key())
	}
	links, err := r.Links(keys)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		a, aok := byKey[l.A]
		b, bok := byKey[l.B]
		if aok && bok {
			g.Links = append(g.Links, GraphLink{A: a, B: b, Evidence: l.Evidence})
		}
	}
	for _, pi := range st.Identifiers {
		id := pi.Identifier()
		raw, err := r.ID(id.Key())
		if err != nil {
			return nil, err
		}
		g.Identifiers = append(g.Identifiers, GraphIdentifier{ProfileIdentifier: pi, Quarantined: graph.Comp(raw) != raw})
		cands, err := r.Candidates(id.Key())
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			if !slices.ContainsFunc(g.Candidates, func(x store.Candidate) bool { return x.A == c.A && x.B == c.B }) {
				g.Candidates = append(g.Candidates, c)
			}
		}
	}
	return g, nil
}

// Export is everything held about a person (right of access).
type Export struct {
	Profile        canon.Profile   `json:"profile"`
	Graph          *GraphView      `json:"graph"`
	ConsentHistory []ConsentChange `json:"consent_history"`
	Events         []canon.Event   `json:"events"`
	EventsTotal    int             `json:"events_total"`
	ExportedAt     time.Time       `json:"exported_at"`
}

// ConsentChange is one consent change of the history.
type ConsentChange struct {
	Purpose string    `json:"purpose"`
	Value   bool      `json:"value"`
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
}

// ExportProfile gathers everything held about the person of a profile id:
// the profile, identifiers and links with their evidence, the consent
// history, and every event, oldest first.
func (e *Engine) ExportProfile(ctx context.Context, pid string) (*Export, error) {
	out := &Export{ExportedAt: e.cfg.Now().UTC(), ConsentHistory: []ConsentChange{}, Events: []canon.Event{}}
	err := e.st.View(func(r *store.Reader) error {
		g, err := e.graphView(r, pid)
		if err != nil {
			return err
		}
		out.Graph = g
		comp, _ := r.Alias(pid)
		st, err := r.Profile(comp)
		if err != nil || st == nil {
			return canon.ErrNotFound
		}
		out.Profile = st.Profile
		for _, gi := range g.Identifiers {
			keys := []string{canon.Identifier{Type: gi.Type, Value: gi.Value}.Key()}
			if !gi.Quarantined {
				// Events parked under it while it was quarantined count
				// for the person since its release.
				keys = append(keys, graph.ParkedKey(keys[0]))
			}
			collect := func(ev *canon.Event) error {
				out.EventsTotal++
				if len(out.Events) < maxExportEvents {
					out.Events = append(out.Events, *ev)
				}
				for p, v := range ev.Consent {
					src := string(ev.Channel)
					if src == "" {
						src = "api"
					}
					out.ConsentHistory = append(out.ConsentHistory, ConsentChange{Purpose: p, Value: v, Time: ev.Time, Source: src})
				}
				return nil
			}
			var err error
			for _, k := range keys {
				if err = r.Events(k, collect); err != nil {
					break
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out.Events, func(a, b canon.Event) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(out.ConsentHistory, func(a, b ConsentChange) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// Quarantined lists quarantined identifier values, at most limit.
func (e *Engine) Quarantined(ctx context.Context, limit int) ([]canon.LogRecord, error) {
	var qs []store.Quarantine
	err := e.st.View(func(r *store.Reader) error {
		var err error
		qs, err = r.Quarantined(limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: quarantined: %w", err)
	}
	out := make([]canon.LogRecord, 0, len(qs))
	for _, q := range qs {
		id := q.Identifier
		out = append(out, canon.LogRecord{Type: canon.LogQuarantine, Others: q.Profiles, Identifier: &id,
			Reason: q.Reason + " (since " + q.Since.UTC().Format(time.RFC3339) + ")"})
	}
	return out, nil
}

// API adapts the engine to the lookup API's optional capabilities, which
// take their results as JSON.
type API struct{ *Engine }

// Graph implements httpapi.Grapher.
func (a API) Graph(ctx context.Context, pid string) (json.RawMessage, error) {
	return marshal(a.Engine.Graph(ctx, pid))
}

// Export implements httpapi.Exporter.
func (a API) Export(ctx context.Context, pid string) (json.RawMessage, error) {
	return marshal(a.Engine.ExportProfile(ctx, pid))
}

// Account implements httpapi.Accounts.
func (a API) Account(ctx context.Context, id string) (json.RawMessage, error) {
	return marshal(a.Engine.Account(ctx, id))
}

func marshal[T any](v T, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("engine: encode: %w", err)
	}
	return b, nil
}
