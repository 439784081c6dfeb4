package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// trimBatch bounds the change-log records deleted in one transaction.
const trimBatch = 20_000

// Read returns up to max change records the sink has not acknowledged,
// blocking until there is at least one or ctx ends. It satisfies
// sinks.ChangeLog. Records come from memory while the sink keeps up, and
// are shared between sinks: they must not be modified.
func (e *Engine) Read(ctx context.Context, sink string, max int) ([]canon.Change, error) {
	for {
		e.mu.Lock()
		cur, ok := e.cursors[sink]
		e.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("engine: read: sink %q is not registered", sink)
		}
		changed := e.st.Changed() // taken before reading, so no commit is missed
		if cur < e.heldHigh.Load() {
			// Erasures kept from a trim while the sink was away come
			// first: all of them precede what the log still holds.
			out, err := e.readStored(func(r *store.Reader) ([]canon.Change, error) { return r.Held(cur, max) })
			if err != nil {
				return nil, fmt.Errorf("engine: read kept erasures: %w", err)
			}
			if len(out) > 0 {
				return out, nil
			}
		}
		if e.st.LastSeq() > cur {
			if out, ok := e.st.RecentChanges(cur, max); ok && len(out) > 0 {
				return out, nil
			}
			out, err := e.readStored(func(r *store.Reader) ([]canon.Change, error) { return r.Changes(cur, max) })
			if err != nil {
				return nil, fmt.Errorf("engine: read changes: %w", err)
			}
			if n := superseded(out); n > 0 {
				e.m.superseded.WithLabelValues(sink).Add(float64(n))
			}
			if len(out) > 0 {
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// readStored returns what read finds in a snapshot of the state.
func (e *Engine) readStored(read func(r *store.Reader) ([]canon.Change, error)) (out []canon.Change, err error) {
	err = e.st.View(func(r *store.Reader) error {
		out, err = read(r)
		return err
	})
	return out, err
}

// superseded counts the records of cs read back without their payload.
func superseded(cs []canon.Change) int {
	n := 0
	for i := range cs {
		if cs[i].Superseded {
			n++
		}
	}
	return n
}

// Ack records that a sink wrote every change up to upTo.
func (e *Engine) Ack(ctx context.Context, sink string, upTo uint64) error {
	return e.submit(ctx, e.ctrlCh, &request{ack: &ackReq{sink, upTo}})
}

func (e *Engine) ack(a *ackReq) error {
	e.mu.Lock()
	cur, ok := e.cursors[a.sink]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("engine: ack: sink %q is not registered", a.sink)
	}
	if a.upTo <= cur {
		return nil
	}
	if last := e.st.LastSeq(); a.upTo > last {
		return fmt.Errorf("engine: ack: sink %q acked %d past the newest change %d", a.sink, a.upTo, last)
	}
	e.mu.Lock()
	e.cursors[a.sink] = a.upTo
	e.mu.Unlock()
	// The cursor is stored, and the log trimmed behind it, at the start of
	// the next transaction, or within ackFlushDelay when none comes, rather
	// than in commits of their own: one per sink batch, on the writer's
	// path. Sinks are at-least-once with idempotent writes, so a crash
	// before it is stored only replays changes the sink already wrote.
	e.unsaved[a.sink] = a.upTo
	return nil
}

// ackFlushDelay is how long an ack waits for a transaction to store it
// before the writer stores it in one of its own.
const ackFlushDelay = 50 * time.Millisecond

// storeCursors writes into tx the cursors acked since they were last
// stored, and trims the change log every sink has acknowledged, a bounded
// number of records per call (with no sinks, nothing waits for the log:
// all of it goes). Both in one transaction: a restart never finds a
// sink's cursor behind the trimmed log. It runs before tx writes anything
// else, so the trim's iterator does not sort the transaction's writes.
// After tx commits, the caller calls cursorsStored with the result.
func (e *Engine) storeCursors(tx *store.Txn) (trimmed uint64, err error) {
	for s, c := range e.unsaved {
		if err := tx.SetCursor(s, c); err != nil {
			return 0, err
		}
	}
	e.heldTried = [2]uint64{e.heldLow, e.heldHigh.Load()}
	if e.heldTried[0] > 0 && e.readByAll() >= e.heldTried[0] {
		// Every sink, configured or not, has read some kept erasures.
		if e.heldTried[0], e.heldTried[1], err = tx.DropHeld(e.readByAll()); err != nil {
			return 0, err
		}
	}
	e.triedAt = e.trimAt
	if !e.trimBehind() {
		return e.trimmed, nil
	}
	low := e.trimUpTo()
	// A sink not configured now that has not read up to low misses the
	// trimmed records, all but the erasures, which are kept for it.
	keepAfter := low
	for _, c := range e.parked {
		keepAfter = min(keepAfter, c)
	}
	var low0, high0 uint64
	if trimmed, low0, high0, err = tx.TrimLog(e.trimmed, low, trimBatch, keepAfter); err != nil {
		return 0, err
	}
	if low0 > 0 {
		// A trim keeps seqs above any kept before.
		if e.heldTried[0] == 0 {
			e.heldTried[0] = low0
		}
		e.heldTried[1] = high0
	}
	if trimmed == e.trimmed {
		// The low cursor is inside a page: nothing to delete until it
		// moves (trimAt, once tx commits).
		e.triedAt = low
		return trimmed, nil
	}
	e.triedAt = 0
	return trimmed, tx.SetCursor(trimKey, trimmed)
}

// ackedUpTo is lowCursor, taking e.mu.
func (e *Engine) ackedUpTo() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lowCursor()
}

// trimUpTo is how far the change log may be trimmed: up to what every
// configured sink acknowledged, and no further than a sink configured in
// an earlier run and not in this one has (its stored cursor), unless that
// sink lags more than MaxBacklog records behind. A sink left out for a
// while (spine run without --clickhouse) finds its records when it comes
// back; one left out for good holds back at most MaxBacklog records, and
// on its return the engine reports what it missed.
func (e *Engine) trimUpTo() uint64 {
	low := e.ackedUpTo()
	floor := uint64(0)
	if last := e.st.LastSeq(); last > e.cfg.MaxBacklog {
		floor = last - e.cfg.MaxBacklog
	}
	for _, c := range e.parked {
		low = min(low, max(c, floor))
	}
	return low
}

// trimBehind reports whether acknowledged records wait to be trimmed: the
// low cursor is past the trimmed log, and not where a trim found nothing
// to delete. A trim deletes at most trimBatch records, so it may take
// several.
func (e *Engine) trimBehind() bool {
	low := e.trimUpTo()
	return low > e.trimmed && low != e.trimAt
}

func (e *Engine) cursorsStored(trimmed uint64) {
	clear(e.unsaved)
	e.heldLow = e.heldTried[0]
	e.heldHigh.Store(e.heldTried[1])
	e.trimmed = trimmed
	e.trimAt = e.triedAt
}

// flushCursors stores acked cursors and trims the log when no transaction
// of events did.
func (e *Engine) flushCursors() error {
	if len(e.unsaved) == 0 && !e.trimBehind() {
		return nil
	}
	var trimmed uint64
	err := e.st.Update(e.cfg.Now(), func(tx *store.Txn) error {
		var err error
		trimmed, err = e.storeCursors(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("engine: store cursors and trim the change log: %w", err)
	}
	e.cursorsStored(trimmed)
	return nil
}

// lowCursor is the slowest sink's cursor; with no sinks, everything is
// acknowledged. e.mu must be held.
func (e *Engine) lowCursor() uint64 {
	if len(e.cursors) == 0 {
		return e.st.LastSeq()
	}
	low := ^uint64(0)
	for _, c := range e.cursors {
		low = min(low, c)
	}
	return low
}

// readByAll is the seq every sink has read up to, configured in this run
// or not.
func (e *Engine) readByAll() uint64 {
	low := e.ackedUpTo()
	for _, c := range e.parked {
		low = min(low, c)
	}
	return low
}

// backlog is how far the slowest sink lags.
func (e *Engine) backlog() uint64 {
	return e.st.LastSeq() - e.ackedUpTo()
}
