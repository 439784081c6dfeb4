package bench

import (
	"testing"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/clickhouse/clickhousetest"
)

// testWarehouse connects to the server named by SPINE_TEST_CLICKHOUSE.
func testWarehouse(t *testing.T) *Warehouse {
	t.Helper()
	addr := clickhousetest.Addr(t)
	w, err := OpenWarehouse(t.Context(), addr, "spine_test_peer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPeerStitch loads a fixture of known components: a chain a-b-c-d over
// three events (the longest path needs several rounds), a pair e-f, a
// lone g, and two events that only repeat identifiers.
func TestPeerStitch(t *testing.T) {
	w := testWarehouse(t)
	an := func(v string) canon.Identifier { return canon.Identifier{Type: canon.AnonymousID, Value: v} }
	em := func(v string) canon.Identifier { return canon.Identifier{Type: canon.Email, Value: v} }
	occ := []Occurrence{
		{"web/1", an("d")}, {"web/1", em("c@x.io")},
		{"web/2", em("c@x.io")}, {"web/2", an("b")},
		{"pos/3", an("b")}, {"pos/3", an("a")},
		{"pos/4", an("e")}, {"pos/4", em("f@x.io")},
		{"ciam/5", an("g")},
		{"ciam/6", an("a")}, {"ciam/7", an("a")},
	}
	l := w.Loader()
	for _, o := range occ {
		if err := l.Add(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := w.Stitch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes != 7 || s.Edges != uint64(len(occ)) {
		t.Errorf("Stitch: %d nodes, %d edges; want 7, %d", s.Nodes, s.Edges, len(occ))
	}
	if s.Rounds < 2 {
		t.Errorf("Stitch: %d rounds; the chain needs more than one", s.Rounds)
	}
	comp := func(ids ...canon.Identifier) string {
		t.Helper()
		l0, ok := s.Labels[ids[0]]
		if !ok {
			t.Fatalf("no label for %v", ids[0])
		}
		for _, id := range ids[1:] {
			if s.Labels[id] != l0 {
				t.Errorf("label(%v) = %s, want %s (same component as %v)", id, s.Labels[id], l0, ids[0])
			}
		}
		return l0
	}
	c1 := comp(an("a"), an("b"), em("c@x.io"), an("d"))
	c2 := comp(an("e"), em("f@x.io"))
	c3 := comp(an("g"))
	if c1 == c2 || c1 == c3 || c2 == c3 {
		t.Errorf("components share a label: %s %s %s", c1, c2, c3)
	}

	truth := gen.Truth{Persons: []gen.PersonTruth{
		{Identifiers: []canon.Identifier{an("a"), an("b"), em("c@x.io"), an("d")}},
		{Identifiers: []canon.Identifier{an("e"), em("f@x.io")}},
		{Identifiers: []canon.Identifier{an("g")}},
	}}
	if a := Score(truth, s.Cluster); a.Precision != 1 || a.Recall != 1 {
		t.Errorf("Score(peer) = %+v, want precision and recall 1", a)
	}
}

// TestOccurrences decodes the way the engine does: normalized identifiers,
// and nothing from a message the decoder rejects.
func TestOccurrences(t *testing.T) {
	dec := ingest.Decoders(normalize.Default(), msg.DefaultLimits())[canon.POS]
	raw := []byte(`{"transaction_id":"t1","timestamp":"2026-01-05T08:00:00Z","store_id":"s1","type":"purchase","total":1,"currency":"USD","loyalty_id":"L-1","email":" Bob@Shop.IO "}`)
	got := Occurrences(canon.POS, dec, raw, nil)
	want := map[canon.Identifier]bool{{Type: canon.LoyaltyID, Value: "L-1"}: true, {Type: canon.Email, Value: "bob@shop.io"}: true}
	if len(got) != len(want) {
		t.Fatalf("Occurrences = %v, want %v", got, want)
	}
	for _, o := range got {
		if !want[o.ID] || o.EventID != "pos/t1" {
			t.Errorf("unexpected occurrence %v", o)
		}
	}
	if got := Occurrences(canon.POS, dec, []byte(`{not json`), nil); len(got) != 0 {
		t.Errorf("Occurrences(malformed) = %v, want none", got)
	}
}
