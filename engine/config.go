package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spinecdp/spine/schemas/canon"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/store"
)

// GCPercent is the garbage collector's target the spine binary sets when
// GOGC is not set. The engine's live heap is bounded by its caches,
// memtables and change window, and allocation is per event: at Go's 100
// the collector took about a seventh of the CPU while saturated; at 200
// the heap may grow to three times the live one, and events/s rose about
// a tenth (bench/RESULTS.md).
const GCPercent = 200

// Config configures the engine.
type Config struct {
	Store store.Options
	Graph graph.Config
	// Sinks names every sink that tails the change log. Records are kept
	// until all of them acknowledged them.
	Sinks []string
	// ForgetSinks names sinks of earlier runs that are gone for good: their
	// stored cursors are deleted, so the change log keeps nothing more for
	// them (neither records within MaxBacklog nor erasures).
	ForgetSinks []string
	// MaxBacklog is the most change records the slowest sink may lag
	// behind; past it the engine stops applying batches (back-pressure).
	MaxBacklog uint64
	// MaxTxnEvents bounds the events applied in one transaction.
	MaxTxnEvents int
	// ErasureSecret keys the hashes kept of erased identifiers. Empty: a
	// random secret is created in the state on first start.
	ErasureSecret []byte
	// AnalyticsPolicy decides whose rows analytics sinks may write:
	// "opt-out" (default: everyone but those who withdrew analytics
	// consent), "opt-in" (only those who granted it) or "ignore".
	AnalyticsPolicy string
	// Background, when set, runs first in each goroutine of the engine's
	// own work: the writer (Run), the value-log collector and the helper
	// that encodes half of a large commit's profiles. cmd/spine lowers the
	// thread's CPU priority there (--ingest-nice), so that the kernel
	// prefers API lookups over ingest (cmd/spine/priority_linux.go). It may
	// lock the goroutine to its thread for good: each of these goroutines
	// ends with its work. The goroutine that publishes a commit does not
	// run it: it holds locks lookups wait on. API commands (link, consent,
	// erase) go through the writer, so they run at its priority.
	Background func()
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// DefaultConfig returns the defaults for a state directory.
func DefaultConfig(dir string) Config {
	return Config{
		Store:           store.DefaultOptions(dir),
		Graph:           graph.DefaultConfig(),
		MaxBacklog:      500_000,
		MaxTxnEvents:    1000,
		AnalyticsPolicy: PolicyOptOut,
		Now:             time.Now,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Store.Dir == "" && !c.Store.InMemory {
		errs = append(errs, errors.New("engine: state directory is required"))
	}
	if err := c.Graph.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBacklog < 1000 {
		errs = append(errs, fmt.Errorf("engine: max backlog %d is below 1000", c.MaxBacklog))
	}
	if c.MaxTxnEvents < 1 {
		errs = append(errs, errors.New("engine: max events per transaction must be at least 1"))
	}
	if n := len(c.Store.EncryptionKey); n != 0 && n != 16 && n != 24 && n != 32 {
		errs = append(errs, fmt.Errorf("engine: encryption key must be 16, 24 or 32 bytes, not %d", n))
	}
	switch c.AnalyticsPolicy {
	case PolicyOptOut, PolicyOptIn, PolicyIgnore:
	default:
		errs = append(errs, fmt.Errorf("engine: analytics policy %q: want opt-out, opt-in or ignore", c.AnalyticsPolicy))
	}
	seen := map[string]bool{}
	for _, s := range c.Sinks {
		if s == "" || seen[s] {
			errs = append(errs, fmt.Errorf("engine: sink name %q empty or repeated", s))
		}
		seen[s] = true
	}
	for _, s := range c.ForgetSinks {
		if seen[s] {
			errs = append(errs, fmt.Errorf("engine: sink %q is both configured and to be forgotten", s))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) defaults(log *slog.Logger) {
	if c.AnalyticsPolicy == "" {
		c.AnalyticsPolicy = PolicyOptOut
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Store.Logger == nil {
		c.Store.Logger = log
	}
}

// Analytics policies.
const (
	PolicyOptOut = "opt-out"
	PolicyOptIn  = "opt-in"
	PolicyIgnore = "ignore"
)

// restricted reports whether a profile's consent keeps it out of analytics.
func (c *Config) restricted(consent map[string]canon.ConsentState) bool {
	a, ok := consent["analytics"]
	switch c.AnalyticsPolicy {
	case PolicyOptIn:
		return !ok || !a.Value
	case PolicyIgnore:
		return false
	}
	return ok && !a.Value
}
