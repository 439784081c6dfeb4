package store

import (
	"sort"
	"sync"

	"github.com/spinecdp/spine/schemas/canon"
)

// recent keeps the newest committed change records in memory, bounded in
// (encoded) bytes, so sinks that keep up read them without a Badger read
// and a decode. A sink that falls behind the window reads from Badger.
//
// It holds each commit's records as the commit made them, one segment per
// commit, and drops the oldest segments whole (of the one that straddles
// the budget, its oldest records): copying every record into one buffer
// and compacting it took 3–6 % of the writer's CPU.
type recent struct {
	mu     sync.RWMutex
	segs   []segment // live segments are segs[head:], oldest first, seqs contiguous
	head   int
	bytes  int
	budget int
}

type segment struct {
	cs    []canon.Change
	sizes []int
	bytes int
}

// add takes ownership of cs and sizes: the caller must not modify them
// afterwards.
func (r *recent) add(cs []canon.Change, sizes []int) {
	if r.budget <= 0 || len(cs) == 0 {
		return
	}
	seg := segment{cs: cs, sizes: sizes}
	for _, s := range sizes {
		seg.bytes += s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.segs = append(r.segs, seg)
	r.bytes += seg.bytes
	for r.head < len(r.segs) && r.bytes > r.budget {
		sg := &r.segs[r.head]
		if r.bytes-sg.bytes >= r.budget || len(sg.cs) == 1 {
			r.bytes -= sg.bytes
			*sg = segment{} // let its records be collected now
			r.head++
			continue
		}
		// The oldest segment straddles the budget: drop its oldest records
		// only, so the window still holds the newest records that fit.
		r.bytes -= sg.sizes[0]
		sg.bytes -= sg.sizes[0]
		sg.cs[0] = canon.Change{}
		sg.cs, sg.sizes = sg.cs[1:], sg.sizes[1:]
	}
	// Compact once the dead prefix is half the list, so each segment is
	// moved O(1) times on average.
	if r.head > 0 && r.head >= len(r.segs)/2 {
		n := copy(r.segs, r.segs[r.head:])
		clear(r.segs[n:])
		r.segs = r.segs[:n]
		r.head = 0
	}
}

// read returns up to max records with seq > after, and false when the
// window does not start early enough to answer.
func (r *recent) read(after uint64, max int) ([]canon.Change, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	live := r.segs[r.head:]
	if len(live) == 0 || live[0].cs[0].Seq > after+1 {
		return nil, false
	}
	// The first segment holding a record newer than after.
	i := sort.Search(len(live), func(i int) bool {
		cs := live[i].cs
		return cs[len(cs)-1].Seq > after
	})
	n := 0 // how many it returns, so that out is allocated once
	for j := i; j < len(live) && n < max; j++ {
		cs := live[j].cs
		n += len(cs)
		if cs[0].Seq <= after {
			n -= int(after + 1 - cs[0].Seq)
		}
	}
	room := min(n, max)
	if room < 0 {
		room = 0
	}
	out := make([]canon.Change, 0, room)
	for ; i < len(live) && len(out) < max; i++ {
		cs := live[i].cs
		from := 0
		if cs[0].Seq <= after {
			from = int(after + 1 - cs[0].Seq)
		}
		out = append(out, cs[from:min(len(cs), from+max-len(out))]...)
	}
	return out, true
}

// RecentChanges returns up to max change records with seq > after from
// memory, and false when the caller must read them from Badger. The
// records are shared: callers must not modify them.
func (s *Store) RecentChanges(after uint64, max int) ([]canon.Change, bool) {
	return s.recent.read(after, max)
}
