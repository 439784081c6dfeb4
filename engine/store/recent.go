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
	buf    []canon.Change
	sizes  []int
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
	drop := 0
	for drop < len(r.buf) && r.bytes > r.budget {
		r.bytes -= r.sizes[drop]
		drop++
	}
	if drop > 0 {
		// Copy rather than reslice, so dropped records can be collected.
		r.buf = append([]canon.Change(nil), r.buf[drop:]...)
		r.sizes = append([]int(nil), r.sizes[drop:]...)
	}
}

// read returns up to max records with seq > after, and false when the
// window does not start early enough to answer.
func (r *recent) read(after uint64, max int) ([]canon.Change, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.buf) == 0 || r.buf[0].Seq > after+1 {
		return nil, false
	}
	start := int(after + 1 - r.buf[0].Seq)
	if start >= len(r.buf) {
		return nil, true
	}
	end := min(start+max, len(r.buf))
	return append([]canon.Change(nil), r.buf[start:end]...), true
}

// RecentChanges returns up to max change records with seq > after from
// memory, and false when the caller must read them from Badger. The
// records are shared: callers must not modify them.
func (s *Store) RecentChanges(after uint64, max int) ([]canon.Change, bool) {
	return s.recent.read(after, max)
}
