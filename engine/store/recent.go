package store

import (
	"sync"

	"github.com/spinecdp/spine/schemas/canon"
)

// recent keeps the newest committed change records in memory, bounded in
// (encoded) bytes, so sinks that keep up read them without a Badger read
// and a decode. A sink that falls behind the window reads from Badger.
type recent struct {
	mu     sync.RWMutex
	buf    []canon.Change // live records are buf[head:]
	sizes  []int
	head   int
	bytes  int
	budget int
}

func (r *recent) add(cs []canon.Change, sizes []int) {
	if r.budget <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, cs...)
	r.sizes = append(r.sizes, sizes...)
	for _, s := range sizes {
		r.bytes += s
	}
	for r.head < len(r.buf) && r.bytes > r.budget {
		r.bytes -= r.sizes[r.head]
		r.buf[r.head] = canon.Change{} // let its payload be collected now
		r.head++
	}
	// Compact once the dead prefix is half the buffer: each record is
	// copied O(1) times on average, where copying on every drop moved the
	// whole window per commit.
	if r.head > 0 && r.head >= len(r.buf)/2 {
		n := copy(r.buf, r.buf[r.head:])
		clear(r.buf[n:])
		r.buf = r.buf[:n]
		r.sizes = r.sizes[:copy(r.sizes, r.sizes[r.head:])]
		r.head = 0
	}
}

// read returns up to max records with seq > after, and false when the
// window does not start early enough to answer.
func (r *recent) read(after uint64, max int) ([]canon.Change, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	live := r.buf[r.head:]
	if len(live) == 0 || live[0].Seq > after+1 {
		return nil, false
	}
	start := int(after + 1 - live[0].Seq)
	if start >= len(live) {
		return nil, true
	}
	end := min(start+max, len(live))
	return append([]canon.Change(nil), live[start:end]...), true
}

// RecentChanges returns up to max change records with seq > after from
// memory, and false when the caller must read them from Badger. The
// records are shared: callers must not modify them.
func (s *Store) RecentChanges(after uint64, max int) ([]canon.Change, bool) {
	return s.recent.read(after, max)
}
