package store

import (
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

func TestRecentWindow(t *testing.T) {
	r := &recent{budget: 100}
	var cs []canon.Change
	var sizes []int
	for seq := uint64(1); seq <= 30; seq++ {
		cs = append(cs, canon.Change{Seq: seq})
		sizes = append(sizes, 10)
	}
	r.add(cs[:20], sizes[:20])
	r.add(cs[20:], sizes[20:])
	if live := r.segs[r.head:]; r.bytes > r.budget || len(live) != 1 || live[0].cs[0].Seq != 21 {
		t.Fatalf("window holds %d segments in %d bytes; want the newest commit's 10 records within 100", len(live), r.bytes)
	}
	// A commit larger than the budget leaves its newest records.
	big, bigSizes := make([]canon.Change, 15), make([]int, 15)
	for i := range big {
		big[i], bigSizes[i] = canon.Change{Seq: 31 + uint64(i)}, 10
	}
	r.add(big, bigSizes)
	if got, ok := r.read(35, 20); r.bytes != 100 || !ok || len(got) != 10 || got[0].Seq != 36 || got[9].Seq != 45 {
		t.Fatalf("after a commit over the budget the window answers read(35) with %d records, %v (%d bytes); want seqs 36-45 in 100", len(got), ok, r.bytes)
	}
	r = &recent{budget: 100}
	r.add(cs[:20], sizes[:20])
	r.add(cs[20:], sizes[20:])
	if _, ok := r.read(5, 10); ok {
		t.Error("read before the window answered from memory")
	}
	got, ok := r.read(20, 4)
	if !ok || len(got) != 4 || got[0].Seq != 21 || got[3].Seq != 24 {
		t.Errorf("read(20, 4) = %v, %v", got, ok)
	}
	if got, ok := r.read(30, 4); !ok || len(got) != 0 {
		t.Errorf("read at the head = %v, %v; want nothing, from memory", got, ok)
	}
}

// Reads across commits: every start position and length returns the
// records after it, in order, from as many segments as it takes.
func TestRecentAcrossSegments(t *testing.T) {
	r := &recent{budget: 1 << 20}
	seq := uint64(10)
	for _, n := range []int{3, 1, 5, 2, 4} {
		cs, sizes := make([]canon.Change, n), make([]int, n)
		for i := range cs {
			seq++
			cs[i], sizes[i] = canon.Change{Seq: seq}, 1
		}
		r.add(cs, sizes)
	}
	if _, ok := r.read(9, 5); ok {
		t.Error("read before the window answered from memory")
	}
	for after := uint64(10); after <= seq; after++ {
		for max := 1; max <= 16; max++ {
			got, ok := r.read(after, max)
			want := min(max, int(seq-after))
			if !ok || len(got) != want {
				t.Fatalf("read(%d, %d) = %d records, %v; want %d", after, max, len(got), ok, want)
			}
			for i, c := range got {
				if c.Seq != after+1+uint64(i) {
					t.Fatalf("read(%d, %d)[%d].Seq = %d", after, max, i, c.Seq)
				}
			}
		}
	}
}
