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

// Dashboard is the KPI summary the dashboard shows, computed from the
// engine's own state (source "engine"): what it can know without
// ClickHouse. Series over time and revenue by channel need ClickHouse.
type Dashboard struct {
	GeneratedAt      time.Time        `json:"generated_at"`
	Source           string           `json:"source"`
	Totals           DashboardTotals  `json:"totals"`
	EventsPerChannel []ChannelBucket  `json:"events_per_channel"`
	IdentityLevels   []LevelCount     `json:"identity_levels"`
	LifecycleFunnel  []FunnelStep     `json:"lifecycle_funnel"`
	RevenueByChannel []ChannelRevenue `json:"revenue_by_channel"`
	IdentityLog      []LogCount       `json:"identity_log"`
	ConsentRates     []ConsentRate    `json:"consent_rates"`
	DLQ              []DLQCount       `json:"dlq"`
}

// DashboardTotals are headline counts.
type DashboardTotals struct {
	Events      int64 `json:"events"`
	Profiles    int64 `json:"profiles"`
	Merges      int64 `json:"merges"`
	Conflicts   int64 `json:"conflicts"`
	Quarantined int64 `json:"quarantined"`
	DLQ         int64 `json:"dlq"`
}

// ChannelBucket counts one channel's events in one time bucket.
type ChannelBucket struct {
	Bucket  time.Time     `json:"bucket"`
	Channel canon.Channel `json:"channel"`
	Events  int64         `json:"events"`
}

// LevelCount counts profiles at one identity level.
type LevelCount struct {
	Level    canon.Level `json:"level"`
	Profiles int64       `json:"profiles"`
}

// FunnelStep counts profiles that reached a lifecycle stage, with the
// median time from the previous stage.
type FunnelStep struct {
	Stage             string  `json:"stage"`
	Profiles          int64   `json:"profiles"`
	MedianHoursToStep float64 `json:"median_hours_to_step"`
}

// ChannelRevenue is revenue of one channel in one currency.
type ChannelRevenue struct {
	Channel  canon.Channel `json:"channel"`
	Currency string        `json:"currency"`
	Amount   string        `json:"amount"`
}

// LogCount counts identity-log records of one type.
type LogCount struct {
	Type  canon.LogType `json:"type"`
	Count int64         `json:"count"`
}

// ConsentRate counts grants and withdrawals of one purpose.
type ConsentRate struct {
	Purpose   string `json:"purpose"`
	Granted   int64  `json:"granted"`
	Withdrawn int64  `json:"withdrawn"`
}

// DLQCount counts rejected messages; the API fills it from its metrics.
type DLQCount struct {
	Channel canon.Channel `json:"channel"`
	Reason  string        `json:"reason"`
	Count   int64         `json:"count"`
}

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

func (e *Engine) dashboard(ctx context.Context) (*Dashboard, error) {
	d := &Dashboard{
		GeneratedAt: e.cfg.Now().UTC(), Source: "engine",
		EventsPerChannel: []ChannelBucket{}, RevenueByChannel: []ChannelRevenue{}, DLQ: []DLQCount{},
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
		d.IdentityLevels = append(d.IdentityLevels, LevelCount{Level: l, Profiles: levels[l]})
	}
	for i, stage := range canon.Stages {
		d.LifecycleFunnel = append(d.LifecycleFunnel, FunnelStep{Stage: stage, Profiles: reached[i], MedianHoursToStep: median(waits[i])})
	}
	for _, p := range canon.Purposes {
		d.ConsentRates = append(d.ConsentRates, ConsentRate{Purpose: p, Granted: granted[p], Withdrawn: withdrawn[p]})
	}
	d.Totals.Merges, d.Totals.Conflicts = int64(e.merges.Load()), int64(e.conflicts.Load())
	d.IdentityLog = []LogCount{{Type: canon.LogMerge, Count: d.Totals.Merges}, {Type: canon.LogConflict, Count: d.Totals.Conflicts}, {Type: canon.LogQuarantine, Count: d.Totals.Quarantined}}
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
