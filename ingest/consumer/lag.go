package consumer

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spinecdp/spine/schemas/canon"
)

// lagWatch holds the next offset to apply of every partition assigned to
// this member; the lag is measured from it. Each applied chunk sets the
// lag of its partitions from the high watermark its fetch saw. That alone
// would cover only partitions that return records: while the engine
// back-pressures ingest nothing is fetched, and the lag would freeze just
// when it grows. So the lag of every assigned partition is also refreshed
// from the partitions' end offsets each Config.LagInterval.
type lagWatch struct {
	mu   sync.Mutex
	next map[canon.Partition]int64 // -1: no stored position, read from the log start
	// end is the newest end offset known of each partition, from a fetch
	// or a refresh: a fetch's may be older than the last refresh's.
	end map[canon.Partition]int64
}

// assign records the positions a new assignment starts from.
func (w *lagWatch) assign(pos map[canon.Partition]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == nil {
		w.next = make(map[canon.Partition]int64, len(pos))
	}
	maps.Copy(w.next, pos)
}

// applied moves the positions of partitions still assigned, and sets
// their lag from the high watermarks their fetch saw.
func (w *lagWatch) applied(m *metrics, pos, marks map[canon.Partition]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, o := range pos {
		if _, ok := w.next[p]; !ok {
			continue // revoked meanwhile: its series is gone and stays gone
		}
		w.next[p] = o
		if hw, ok := marks[p]; ok {
			m.setLag(p.Topic, p.Partition, w.newestEnd(p, hw)-o)
		}
	}
}

// drop forgets a partition no longer assigned.
func (w *lagWatch) drop(p canon.Partition) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.next, p)
	delete(w.end, p)
}

// newestEnd records an end offset seen of p and returns the newest known.
// w.mu must be held.
func (w *lagWatch) newestEnd(p canon.Partition, end int64) int64 {
	if w.end == nil {
		w.end = make(map[canon.Partition]int64)
	}
	if end > w.end[p] {
		w.end[p] = end
	}
	return w.end[p]
}

func (w *lagWatch) topics() (topics []string, fresh bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, o := range w.next {
		topics = append(topics, p.Topic)
		fresh = fresh || o < 0
	}
	slices.Sort(topics)
	return slices.Compact(topics), fresh
}

// report sets the lag of every assigned partition the offsets list. It
// holds the lock while setting, so a partition revoked meanwhile does not
// get its series back.
func (w *lagWatch) report(m *metrics, ends, starts kadm.ListedOffsets) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, next := range w.next {
		end, ok := ends.Lookup(p.Topic, p.Partition)
		if !ok || end.Err != nil {
			continue
		}
		if next < 0 {
			start, ok := starts.Lookup(p.Topic, p.Partition)
			if !ok || start.Err != nil {
				continue
			}
			next = start.Offset
		}
		m.setLag(p.Topic, p.Partition, w.newestEnd(p, end.Offset)-next)
	}
}

// watchLag refreshes the lag metric, then again one LagInterval after each
// refresh ends, until ctx ends.
func (c *Consumer) watchLag(ctx context.Context) {
	adm := kadm.NewClient(c.cl)
	for {
		if err := c.refreshLag(ctx, adm); err != nil && ctx.Err() == nil {
			c.m.lagErrors.Inc()
			c.log.Debug("lag refresh failed", "err", err)
		}
		wait := time.NewTimer(c.cfg.LagInterval)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
}

func (c *Consumer) refreshLag(ctx context.Context, adm *kadm.Client) error {
	topics, fresh := c.lag.topics()
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LagInterval)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	var starts kadm.ListedOffsets
	if fresh {
		if starts, err = adm.ListStartOffsets(ctx, topics...); err != nil {
			return err
		}
	}
	c.lag.report(c.m, ends, starts)
	return nil
}
