package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// dashboardTTL bounds how often the engine rescans its profiles for the
// dashboard; ClickHouse is the dashboard's real source when configured.
const dashboardTTL = 15 * time.Second

type dashCache struct {
	mu   sync.Mutex
	at   time.Time
	data json.RawMessage
}

// Dashboard implements the API's dashboard capability from the engine's
// state, rescanning at most every dashboardTTL.
func (a API) Dashboard(ctx context.Context) (json.RawMessage, error) {
	c := &a.Engine.dash
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data != nil && time.Since(c.at) < dashboardTTL {
		return c.data, nil
	}
	d, err := a.Engine.dashboard(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("engine: encode dashboard: %w", err)
	}
	c.at, c.data = time.Now(), b
	return b, nil
}

func (e *Engine) dashboard(ctx context.Context) (*canon.Dashboard, error) {
	d := &canon.Dashboard{
		GeneratedAt: e.cfg.Now().UTC(), Source: "engine",
		EventsPerChannel: []canon.ChannelBucket{}, RevenueByChannel: []canon.ChannelRevenue{}, DLQ: []canon.DLQCount{},
	}
	levels := map[canon.Level]int64{}
	reached := make([]int64, len(canon.Stages))
	waits := make([][]float64, len(canon.Stages))
	granted, withdrawn := map[string]int64{}, map[string]int64{}
	err := e.st.View(func(r *store.Reader) error {
		err := r.EachProfile(func(st *profile.State) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			d.Totals.Profiles++
			for _, n := range st.Computed.EventsByChannel {
				d.Totals.Events += n
			}
			levels[st.Level]++
			for i, stage := range canon.Stages {
				t, ok := st.Computed.Lifecycle[stage]
				if !ok {
					continue
				}
				reached[i]++
				if i > 0 {
					if prev, ok := st.Computed.Lifecycle[canon.Stages[i-1]]; ok {
						waits[i] = append(waits[i], t.Sub(prev).Hours())
					}
				}
			}
			for p, c := range st.Consent {
				if c.Value {
					granted[p]++
				} else {
					withdrawn[p]++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		qs, err := r.Quarantined(1 << 20)
		d.Totals.Quarantined = int64(len(qs))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: dashboard: %w", err)
	}
	for _, l := range []canon.Level{canon.Anonymous, canon.Pseudonymous, canon.Registered, canon.VerifiedUser} {
		d.IdentityLevels = append(d.IdentityLevels, canon.LevelCount{Level: l, Profiles: levels[l]})
	}
	for i, stage := range canon.Stages {
		d.LifecycleFunnel = append(d.LifecycleFunnel, canon.FunnelStep{Stage: stage, Profiles: reached[i], MedianHoursToStep: median(waits[i])})
	}
	for _, p := range canon.Purposes {
		d.ConsentRates = append(d.ConsentRates, canon.ConsentRate{Purpose: p, Granted: granted[p], Withdrawn: withdrawn[p]})
	}
	d.Totals.Merges, d.Totals.Conflicts = int64(e.merges.Load()), int64(e.conflicts.Load())
	d.IdentityLog = []canon.LogCount{{Type: canon.LogMerge, Count: d.Totals.Merges}, {Type: canon.LogConflict, Count: d.Totals.Conflicts}, {Type: canon.LogQuarantine, Count: d.Totals.Quarantined}}
	return d, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	sort.Float64s(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return m
}
