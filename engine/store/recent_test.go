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
	if live := r.buf[r.head:]; r.bytes > r.budget || len(live) != 10 || live[0].Seq != 21 {
		t.Fatalf("window holds %d records from seq %d in %d bytes; want the newest 10 within 100", len(live), live[0].Seq, r.bytes)
	}
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
