package engine

import (
	"context"
	"fmt"

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
		if e.st.LastSeq() > cur {
			if out, ok := e.st.RecentChanges(cur, max); ok && len(out) > 0 {
				return out, nil
			}
			var out []canon.Change
			err := e.st.View(func(r *store.Reader) error {
				var err error
				out, err = r.Changes(cur, max)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("engine: read changes: %w", err)
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
	// The cursor is stored with the next transaction, or at the next tick
	// when nothing is applied, rather than in a commit of its own: one per
	// sink batch, on the writer's path. Sinks are at-least-once with
	// idempotent writes, so a crash before it is stored only replays
	// changes the sink already wrote.
	e.unsaved[a.sink] = a.upTo
	return nil
}

// saveCursors writes into tx the cursors acked since they were last
// stored; after tx commits, the caller clears e.unsaved.
func (e *Engine) saveCursors(tx *store.Txn) error {
	for s, c := range e.unsaved {
		if err := tx.SetCursor(s, c); err != nil {
			return err
		}
	}
	return nil
}

// flushCursors stores acked cursors when no transaction took them.
func (e *Engine) flushCursors() error {
	if len(e.unsaved) == 0 {
		return nil
	}
	if err := e.st.Update(e.cfg.Now(), e.saveCursors); err != nil {
		return fmt.Errorf("engine: store cursors: %w", err)
	}
	clear(e.unsaved)
	return nil
}

// trim deletes change records every sink has acknowledged, a bounded
// number per call. With no sinks, nothing waits for the log: all of it goes.
// The cursors are stored first: a restart must never find a sink's cursor
// behind the trimmed log.
func (e *Engine) trim() error {
	if err := e.flushCursors(); err != nil {
		return err
	}
	e.mu.Lock()
	low := e.lowCursor()
	e.mu.Unlock()
	if low <= e.trimmed {
		return nil
	}
	var trimmed uint64
	err := e.st.Update(e.cfg.Now(), func(tx *store.Txn) error {
		var err error
		if trimmed, err = tx.TrimLog(e.trimmed, low, trimBatch); err != nil {
			return err
		}
		return tx.SetCursor(trimKey, trimmed)
	})
	if err != nil {
		return fmt.Errorf("engine: trim change log: %w", err)
	}
	e.trimmed = trimmed
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

// backlog is how far the slowest sink lags.
func (e *Engine) backlog() uint64 {
	e.mu.Lock()
	low := e.lowCursor()
	e.mu.Unlock()
	return e.st.LastSeq() - low
}
