package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// Engine is the single writer of one tenant's state.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	st    *store.Store
	graph *graph.Graph

	applyCh chan *request // batches (one may wait queued): not taken while back-pressured
	ctrlCh  chan *request // acks and commands: always taken
	done    chan struct{} // closed when Run returns

	// Totals since start, for progress lines; metrics have the same.
	events, duplicates, merges, conflicts atomic.Uint64

	dash dashCache // the dashboard's last scan

	pseudonymKey []byte // see PseudonymKey

	mu      sync.Mutex
	cursors map[string]uint64 // acked seq per sink
	parked  map[string]uint64 // stored cursors of sinks not configured in this run
	unsaved map[string]uint64 // acked cursors not yet stored; writer-owned
	trimmed uint64            // change log deleted up to here
	trimAt  uint64            // the low cursor of the last trim, writer-owned
	triedAt uint64            // the low cursor of the trim in the open transaction

	// Erasure records a trim kept for sinks that had not read them
	// (store.Txn.TrimLog): the highest seq kept, which sinks' reads
	// check, and the lowest, writer-owned; tried is the range after the
	// open transaction.
	heldHigh  atomic.Uint64
	heldLow   uint64
	heldTried [2]uint64

	refilePast string // the value whose refile failed last, writer-owned
}

type request struct {
	ctx     context.Context
	batch   *canon.Batch
	cmd     *canon.Command
	ack     *ackReq
	queued  bool                 // a batch the sender does not wait for (Pipelined)
	encoded []store.EncodedEvent // a batch: its events encoded (encodeEvents)
	res     canon.Result
	err     chan error
}

type ackReq struct {
	sink string
	upTo uint64
}

const trimKey = "\x00trimmed"

// Open opens the state in cfg.Store.Dir. Run must be called for Apply, Do
// and Ack to make progress; reads work without it.
func Open(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg.defaults(log)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Store.Background = cfg.Background
	st, err := store.Open(cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	secret := cfg.ErasureSecret
	if len(secret) == 0 {
		if secret, err = st.Secret("erasure"); err != nil {
			st.Close()
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	pseudonymKey, err := st.Secret("pseudonym")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	g, err := graph.New(cfg.Graph, secret)
	if err != nil {
		st.Close()
		return nil, err
	}
	e := &Engine{
		cfg: cfg, log: log, m: newMetrics(reg, st.Disk), st: st, graph: g, pseudonymKey: pseudonymKey,
		applyCh: make(chan *request, 1), ctrlCh: make(chan *request),
		done: make(chan struct{}), cursors: map[string]uint64{}, parked: map[string]uint64{}, unsaved: map[string]uint64{},
	}
	var stored map[string]uint64
	err = st.View(func(r *store.Reader) error {
		var err error
		if stored, err = r.Cursors(); err != nil {
			return err
		}
		var high uint64
		e.heldLow, high, err = r.HeldRange()
		e.heldHigh.Store(high)
		return err
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("engine: read cursors: %w", err)
	}
	e.trimmed = stored[trimKey]
	delete(stored, trimKey)
	var register []string
	for _, s := range cfg.Sinks {
		c, known := stored[s]
		delete(stored, s)
		missed := uint64(0)
		if c < e.trimmed {
			missed = e.trimmed - c
			msg := "sink missed change records: they were trimmed while it was not configured; its destination lacks them, but for the erasures among them, which it reads first"
			if !known {
				msg = "new sink: the change records before its first run were trimmed already; its destination starts after them"
			}
			log.Warn(msg, "sink", s, "from_seq", c+1, "to_seq", e.trimmed, "records", missed)
		}
		e.m.missed.WithLabelValues(s).Set(float64(missed))
		if !known {
			register = append(register, s)
			// A new destination holds nobody's rows: the erasures kept
			// for sinks that were away are not for it.
			c = max(c, e.heldHigh.Load())
		}
		e.cursors[s] = c
	}
	var forget []string
	for _, s := range cfg.ForgetSinks {
		if _, ok := stored[s]; ok {
			forget = append(forget, s)
			delete(stored, s)
			log.Info("sink forgotten: the change log keeps nothing more for it", "sink", s)
		}
	}
	// A sink's cursor is stored from its first run, so that a later run
	// without it keeps its records (trimUpTo).
	if len(register) > 0 || len(forget) > 0 {
		err := st.Update(cfg.Now(), func(tx *store.Txn) error {
			for _, s := range register {
				if err := tx.SetCursor(s, e.cursors[s]); err != nil {
					return err
				}
			}
			for _, s := range forget {
				if err := tx.DeleteCursor(s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("engine: store new sinks' cursors, delete forgotten ones': %w", err)
		}
	}
	// A sink configured before and not now keeps its cursor, and the
	// change log keeps its records for when it comes back, within
	// MaxBacklog (trimUpTo).
	maps.Copy(e.parked, stored)
	return e, nil
}

// PseudonymKey is the key of the pseudonyms that stand for identifiers in
// records an erasure cannot reach (the Kafka identity log): created at
// random in the state on first start and kept, so pseudonyms correlate
// across runs, and never stored outside the state.
func (e *Engine) PseudonymKey() []byte { return slices.Clone(e.pseudonymKey) }

// Close closes the state. Run must have returned.
func (e *Engine) Close() error { return e.st.Close() }

// Run is the writer loop. It returns when ctx ends. It runs
// Config.Background on the calling goroutine, so call it on a goroutine of
// its own that ends when Run returns.
func (e *Engine) Run(ctx context.Context) error {
	e.background()
	var wg sync.WaitGroup
	defer wg.Wait()
	// Senders learn the writer stopped before the collector has stopped.
	defer close(e.done)
	// The collector stops with Run, also when Run stops on an error.
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	wg.Add(1)
	go func() { defer wg.Done(); e.background(); e.collectGarbage(gcCtx) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var flush <-chan time.Time // armed by an ack no transaction has stored yet
	var purge <-chan time.Time // armed while erased identifiers have events left
	purgeWait := purgeDelay
	var refile <-chan time.Time // armed while quarantined values have events left
	refileWait := purgeDelay
	for {
		if purge == nil && e.st.Purging() > 0 {
			purge = time.After(purgeWait)
		}
		if refile == nil && e.st.Refiling() > 0 {
			refile = time.After(refileWait)
		}
		applyCh := e.applyCh
		backlog := e.backlog()
		e.m.backlog.Set(float64(backlog))
		if backlog > e.cfg.MaxBacklog {
			applyCh = nil // back-pressure: only acks and commands get through
			e.m.backpressed.Set(1)
		} else {
			e.m.backpressed.Set(0)
		}
		select {
		case <-ctx.Done():
			// A batch queued before the stop was accepted: apply it.
			if err := e.drainQueued(); err != nil {
				return err
			}
			if err := e.flushCursors(); err != nil {
				e.log.Warn("storing sink cursors at stop failed; sinks replay from the stored ones", "err", err)
			}
			if err := e.st.Wait(); err != nil {
				return fmt.Errorf("engine: %w", err)
			}
			return nil
		case r := <-applyCh:
			if err := e.applyRequest(r); err != nil {
				return err
			}
		case r := <-e.ctrlCh:
			if r.ack == nil {
				// Batches queued before a command or a barrier go first,
				// so a caller that saw Apply return sees the command act
				// on them, back-pressure or not.
				if err := e.drainQueued(); err != nil {
					r.err <- fmt.Errorf("engine: stopped: %w", err)
					return err
				}
			}
			switch {
			case r.ack != nil:
				r.err <- e.ack(r.ack)
				if flush == nil && len(e.unsaved) > 0 {
					flush = time.After(ackFlushDelay)
				}
			case r.cmd != nil:
				var err error
				r.res, err = e.do(r.cmd)
				r.err <- err
				if errors.Is(err, store.ErrFailed) {
					return fmt.Errorf("engine: %w", err)
				}
			default: // a barrier (Sync)
				r.err <- e.st.Wait()
			}
		case <-flush:
			flush = nil
			if err := e.flushCursors(); err != nil {
				e.log.Warn("storing sink cursors failed; retrying at the next ack or tick", "err", err)
			} else if e.trimBehind() {
				flush = time.After(ackFlushDelay) // more than one trim's worth
			}
		case <-purge:
			purge = nil
			n, err := e.st.Purge()
			purgeWait = purgeDelay
			if err != nil {
				purgeWait = purgeRetry
				e.log.Warn("deleting the events of erased identifiers failed; retrying", "in", purgeRetry, "err", err)
			}
			e.m.purged.Add(float64(n))
			e.m.purging.Set(float64(e.st.Purging()))
		case <-refile:
			refile = nil
			refileWait = purgeDelay
			if err := e.refileRest(); err != nil {
				if errors.Is(err, store.ErrFailed) {
					return fmt.Errorf("engine: %w", err)
				}
				refileWait = purgeRetry
				e.log.Warn("moving events off a quarantined value failed; retrying", "in", purgeRetry, "err", err)
			}
			e.m.refiling.Set(float64(e.st.Refiling()))
		case <-tick.C:
			e.gauges()
			if err := e.flushCursors(); err != nil {
				e.log.Warn("storing sink cursors failed; retrying at the next ack or tick", "err", err)
			}
		}
	}
}

// drainQueued applies the batches waiting in applyCh, without waiting for
// more. It ignores back-pressure: those batches were accepted (Pipelined)
// before what the writer does next, a command, a barrier or the stop, and
// the consumer queues one at a time.
func (e *Engine) drainQueued() error {
	for {
		select {
		case r := <-e.applyCh:
			if err := e.applyRequest(r); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// applyRequest applies a batch of applyCh. A non-nil result stops the
// writer.
func (e *Engine) applyRequest(r *request) error {
	err := e.apply(r.ctx, r.batch, r.encoded)
	if r.queued {
		// Nobody waits to retry it, and later batches may be queued behind
		// it, so the engine stops; a restart applies it again from the
		// stored positions.
		if err != nil {
			return fmt.Errorf("engine: apply a queued batch: %w", err)
		}
		return nil
	}
	if err == nil {
		err = e.st.Wait()
	}
	r.err <- err
	if errors.Is(err, store.ErrFailed) {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// refileRest moves the next events still filed under a quarantined value
// (graph.RefileRest) in a transaction of their own.
func (e *Engine) refileRest() error {
	var key string
	err := e.st.Update(e.cfg.Now(), func(tx *store.Txn) error {
		var touched []uint64
		var err error
		if touched, key, err = e.graph.RefileRest(tx, e.refilePast); err != nil {
			return err
		}
		return e.finalizeAll(tx, touched)
	})
	// After a failure the next value goes first, so that one that keeps
	// failing does not hold back the others.
	e.refilePast = ""
	if err != nil {
		e.refilePast = key
	}
	return err
}

// finalizeAll finalizes the profiles of the components touched in tx, and
// restricts the identity records of those the analytics policy keeps out.
func (e *Engine) finalizeAll(tx *store.Txn, touched []uint64) error {
	var restricted map[string]bool
	for _, c := range touched {
		st, err := tx.Profile(c)
		if err != nil {
			return err
		}
		if st != nil && e.finalize(tx, st) {
			if restricted == nil {
				restricted = map[string]bool{}
			}
			// Ids it absorbed in this transaction named it in
			// changes before the merge.
			for _, id := range append([]string{st.ID}, st.MergedFrom...) {
				restricted[id] = true
			}
		}
	}
	restrictIdentity(tx, restricted)
	return nil
}

// purgeDelay spaces the writer's transactions that delete the events of
// erased identifiers (store.Purge), so that applies run between them;
// purgeRetry follows a failed one.
const (
	purgeDelay = 10 * time.Millisecond
	purgeRetry = 5 * time.Second
)

// background runs Config.Background, if set, on the calling goroutine.
func (e *Engine) background() {
	if e.cfg.Background != nil {
		e.cfg.Background()
	}
}

// collectGarbage reclaims the state's value log until ctx ends. It runs
// beside the writer: Badger's value-log GC is safe alongside commits.
func (e *Engine) collectGarbage(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := e.st.CollectGarbage(0.5, 8)
		e.m.vlogGC.Add(float64(n))
		if err != nil {
			e.log.Warn("value log gc failed", "err", err)
		}
	}
}

func (e *Engine) gauges() {
	_, ib, _, pb := e.st.CacheStats()
	e.m.cacheBytes.WithLabelValues("identifiers").Set(float64(ib))
	e.m.cacheBytes.WithLabelValues("profiles").Set(float64(pb))
	for _, f := range e.st.KeyFilters() {
		e.m.filterKeys.WithLabelValues(f.Name).Set(float64(f.Keys))
		e.m.filterUsed.WithLabelValues(f.Name).Set(map[bool]float64{false: 0, true: 1}[f.Usable])
	}
}

// submit hands a request to the writer and waits for its answer.
func (e *Engine) submit(ctx context.Context, ch chan *request, r *request) error {
	r.ctx = ctx
	r.err = make(chan error, 1)
	select {
	case ch <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return errors.New("engine: stopped")
	}
	select {
	case err := <-r.err:
		return err
	case <-ctx.Done():
		// The writer still finishes the request; its effect is committed
		// or not as a whole, and the caller retries with dedup to guard.
		return ctx.Err()
	case <-e.done:
		// A request left queued when the writer stopped is not run.
		select {
		case err := <-r.err:
			return err
		default:
			return errors.New("engine: stopped")
		}
	}
}

// Apply applies a batch: every event, then the positions, durably. It
// blocks while a sink's backlog is over its bound. A failed Apply may have
// committed a prefix of the batch; applying the batch again is safe,
// because applied messages are recognized as duplicates.
func (e *Engine) Apply(ctx context.Context, b canon.Batch) error {
	return e.submit(ctx, e.applyCh, &request{batch: &b, encoded: encodeEvents(b.Events)})
}

// Pipelined is the engine as a consumer feeds it: its Apply queues the
// batch and returns, so the consumer decodes, dead-letters and encodes the
// next batch while the writer applies this one, and the writer builds the
// next transaction while the store writes this one.
type Pipelined struct{ e *Engine }

// Pipelined returns the engine for a consumer.
func (e *Engine) Pipelined() Pipelined { return Pipelined{e} }

// Apply queues a batch for the writer, behind at most one other, and
// returns; it blocks while the writer is back-pressured with a batch
// already queued. The batch, with its positions, is durable and visible
// once Positions (or Sync) returns. A queued batch that fails to apply
// stops the engine (Run returns the error) rather than being skipped: a
// restart applies it again from the stored positions, so nothing is lost.
func (p Pipelined) Apply(ctx context.Context, b canon.Batch) error {
	// The writer finishes a batch it took whatever happens to the
	// sender's context: it stores the positions with the last events.
	select {
	case <-p.e.done:
		return errors.New("engine: stopped")
	default:
	}
	r := &request{ctx: context.WithoutCancel(ctx), batch: &b, queued: true, encoded: encodeEvents(b.Events)}
	select {
	case p.e.applyCh <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.e.done:
		return errors.New("engine: stopped")
	}
}

// Positions returns the stored consume positions once every batch queued
// before is applied and durable, so a new assignment resumes past them.
func (p Pipelined) Positions(ctx context.Context) (map[canon.Partition]int64, error) {
	if err := p.e.Sync(ctx); err != nil {
		return nil, fmt.Errorf("engine: positions: %w", err)
	}
	return p.e.Positions(ctx)
}

// Do runs a command through the writer.
func (e *Engine) Do(ctx context.Context, c canon.Command) (canon.Result, error) {
	r := &request{cmd: &c}
	err := e.submit(ctx, e.ctrlCh, r)
	return r.res, err
}

// Sync returns once the writer has finished every request it took before
// and every batch queued before (Pipelined), with their commits durable,
// including the bookkeeping after a commit (Stats counters). A commit is
// visible to readers (Positions, Lookup) a moment before that bookkeeping
// is done; Sync is the barrier for callers that read both. It does not
// wait out back-pressure.
func (e *Engine) Sync(ctx context.Context) error {
	return e.submit(ctx, e.ctrlCh, &request{})
}

// Positions returns the stored consume positions: where to resume.
func (e *Engine) Positions(ctx context.Context) (map[canon.Partition]int64, error) {
	var out map[canon.Partition]int64
	err := e.st.View(func(r *store.Reader) error {
		var err error
		out, err = r.Positions()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: positions: %w", err)
	}
	return out, nil
}

// Lookup returns the profile holding a normalized identifier.
func (e *Engine) Lookup(ctx context.Context, id canon.Identifier) (canon.Profile, error) {
	comp, err := e.st.LookupID(id.Key())
	if err != nil {
		return canon.Profile{}, fmt.Errorf("engine: lookup: %w", err)
	}
	return e.profileOf(graph.Comp(comp))
}

// Profile returns a profile by id. An absorbed id answers with the
// survivor, whose merged_from lists the id asked for.
func (e *Engine) Profile(ctx context.Context, pid string) (canon.Profile, error) {
	comp, err := e.st.LookupAlias(pid)
	if err != nil {
		return canon.Profile{}, fmt.Errorf("engine: profile: %w", err)
	}
	return e.profileOf(comp)
}

// LookupJSON is Lookup answered with the profile's JSON (canon.Profile)
// as its last commit encoded it, map members in no set order; a lookup
// that hits the cache encodes nothing. The bytes are shared: do not
// modify them.
func (e *Engine) LookupJSON(ctx context.Context, id canon.Identifier) ([]byte, error) {
	comp, err := e.st.LookupID(id.Key())
	if err != nil {
		return nil, fmt.Errorf("engine: lookup: %w", err)
	}
	return e.profileJSONOf(graph.Comp(comp))
}

// ProfileJSON is Profile answered as LookupJSON answers.
func (e *Engine) ProfileJSON(ctx context.Context, pid string) ([]byte, error) {
	comp, err := e.st.LookupAlias(pid)
	if err != nil {
		return nil, fmt.Errorf("engine: profile: %w", err)
	}
	return e.profileJSONOf(comp)
}

func (e *Engine) profileJSONOf(comp uint64) ([]byte, error) {
	if comp == 0 {
		return nil, canon.ErrNotFound
	}
	b, err := e.st.LoadProfileJSON(comp)
	if err != nil {
		return nil, fmt.Errorf("engine: load profile: %w", err)
	}
	if b == nil {
		return nil, canon.ErrNotFound
	}
	return b, nil
}

func (e *Engine) profileOf(comp uint64) (canon.Profile, error) {
	if comp == 0 {
		return canon.Profile{}, canon.ErrNotFound
	}
	st, err := e.st.LoadProfile(comp)
	if err != nil {
		return canon.Profile{}, fmt.Errorf("engine: load profile: %w", err)
	}
	if st == nil {
		return canon.Profile{}, canon.ErrNotFound
	}
	return st.Profile, nil
}

// Stats is a snapshot of the engine's size.
type Stats struct {
	LastSeq        uint64
	Backlog        uint64
	Profiles       uint64
	Events         uint64 // applied since start
	Duplicates     uint64 // skipped since start
	Merges         uint64 // since start
	Conflicts      uint64 // since start
	CachedIDs      int
	CachedProfiles int
	Purging        int64 // erased identifiers whose stored events are still being deleted
	ReadAround     bool  // a fault in Badger's logs may read the kernel's read-around window (store.Store.ReadAround)
}

// Stats reports the engine's size.
func (e *Engine) Stats() Stats {
	ids, _, profiles, _ := e.st.CacheStats()
	return Stats{
		LastSeq: e.st.LastSeq(), Backlog: e.backlog(), Profiles: e.st.Profiles(),
		Events: e.events.Load(), Duplicates: e.duplicates.Load(), Merges: e.merges.Load(), Conflicts: e.conflicts.Load(),
		CachedIDs: ids, CachedProfiles: profiles, Purging: e.st.Purging(), ReadAround: e.st.ReadAround(),
	}
}

// Disk reports the state directory's bytes on disk, by kind. It walks the
// directory, so it is kept out of Stats, which callers poll.
func (e *Engine) Disk() store.Disk { return e.st.Disk() }

func (e *Engine) prio(t canon.IDType) int { return e.graph.Priority(t) }

// finalize derives a touched profile's computed values and emits its new
// version. It reports whether the profile is kept out of analytics.
func (e *Engine) finalize(tx *store.Txn, st *profile.State) (restricted bool) {
	st.Finalize(e.prio)
	st.UpdatedAt = tx.Now()
	p := st.Profile
	restricted = e.cfg.restricted(st.Consent)
	seq := tx.Emit(canon.Change{Kind: canon.ChangeProfile, Profile: &p, Restricted: restricted})
	p.Version, st.Version = seq, seq
	tx.PutProfile(st)
	e.m.profiles.Inc()
	return restricted
}

// restrictIdentity marks the transaction's identity-map and identity-log
// records of the given profiles (those kept out of analytics), so that
// analytics sinks write none of their identifiers either, and the records
// of events refiled to them.
func restrictIdentity(tx *store.Txn, profiles map[string]bool) {
	if len(profiles) == 0 {
		return
	}
	cs := tx.Pending()
	for i := range cs {
		switch c := &cs[i]; {
		case c.Mapping != nil && profiles[c.Mapping.ProfileID]:
			c.Restricted = true
		case c.Log != nil && profiles[c.Log.ProfileID]:
			c.Restricted = true
		case c.Event != nil && c.Event.Refiled && profiles[c.Event.ProfileID]:
			// An event moved to the person in this transaction; new events
			// carry the restriction of the time they happened.
			c.Restricted = true
		}
	}
}
