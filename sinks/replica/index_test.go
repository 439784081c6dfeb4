package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

var (
	em1  = canon.Identifier{Type: canon.Email, Value: "ann@shop.io"}
	em2  = canon.Identifier{Type: canon.Email, Value: "bob@shop.io"}
	ph1  = canon.Identifier{Type: canon.Phone, Value: "+15550100001"}
	dev1 = canon.Identifier{Type: canon.DeviceID, Value: "dev-1"}
)

// profileRecord is the JSON the Kafka sink publishes for profile pid. The
// version is the record's seq, so that an answer tells which record of a
// profile the index holds.
func profileRecord(pid string, seq uint64, ids []canon.Identifier, merged ...string) []byte {
	p := canon.Profile{ID: pid, Level: canon.Pseudonymous, Version: seq, MergedFrom: merged}
	for _, id := range ids {
		p.Identifiers = append(p.Identifiers, canon.ProfileIdentifier{Type: id.Type, Value: id.Value, Trust: canon.Asserted})
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

// step is one record of the profile stream: value nil is a tombstone.
type step struct {
	pid   string
	value []byte
	seq   uint64
}

func put(pid string, seq uint64, ids []canon.Identifier, merged ...string) step {
	return step{pid, profileRecord(pid, seq, ids, merged...), seq}
}

func tomb(pid string, seq uint64) step { return step{pid, nil, seq} }

func ids(v ...canon.Identifier) []canon.Identifier { return v }

// answer names the record a lookup returned as "pid@version", "" for not
// found, and anything else as "error: ...".
func answer(b []byte, err error) string {
	if errors.Is(err, canon.ErrNotFound) {
		return ""
	}
	if err != nil {
		return "error: " + err.Error()
	}
	var p canon.Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Sprintf("error: answered %q: %v", b, err)
	}
	return fmt.Sprintf("%s@%d", p.ID, p.Version)
}

// want is what an index must answer: identifier → "pid@version" and
// profile id → "pid@version", "" meaning not found.
type want struct {
	lookups  map[canon.Identifier]string
	profiles map[string]string
}

func (w want) check(t *testing.T, x *Index) {
	t.Helper()
	for id, exp := range w.lookups {
		if got := answer(x.LookupJSON(id)); got != exp {
			t.Errorf("LookupJSON(%s %s) = %q, want %q", id.Type, id.Value, got, exp)
		}
	}
	for pid, exp := range w.profiles {
		if got := answer(x.ProfileJSON(pid)); got != exp {
			t.Errorf("ProfileJSON(%s) = %q, want %q", pid, got, exp)
		}
	}
}

// checkAccounting recomputes the index's byte estimate from what it holds:
// every path that adds or removes an item must keep the running total
// equal to it, or the bound drifts.
func checkAccounting(t testing.TB, x *Index) {
	t.Helper()
	x.mu.RLock()
	defer x.mu.RUnlock()
	var n int64
	for pid, e := range x.profiles {
		n += entrySize(pid, e)
	}
	for k, c := range x.ids {
		n += claimSize(k, c.pid)
		if x.profiles[c.pid] == nil {
			t.Errorf("identifier %q is held by %s, which the index does not hold", k, c.pid)
		}
	}
	for k, c := range x.aliases {
		n += claimSize(k, c.pid)
		if x.profiles[c.pid] == nil {
			t.Errorf("absorbed id %q is held by %s, which the index does not hold", k, c.pid)
		}
	}
	if n != x.bytes {
		t.Errorf("bytes = %d, but what the index holds adds up to %d", x.bytes, n)
	}
}

func TestIndexApply(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		want  want
		size  *Size // Profiles, Identifiers, Aliases; nil: not checked
	}{
		{
			name:  "a profile's identifiers and id resolve to it",
			steps: []step{put("p1", 1, ids(em1, ph1))},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "p1@1", ph1: "p1@1", em2: "", {Type: canon.Phone, Value: em1.Value}: ""},
				profiles: map[string]string{"p1": "p1@1", "p2": ""},
			},
			size: &Size{Profiles: 1, Identifiers: 2},
		},
		{
			name: "an absorbed id answers with its survivor",
			steps: []step{
				put("p2", 1, ids(em2)), put("p1", 2, ids(em1)),
				put("p1", 3, ids(em1, em2), "p2"), tomb("p2", 4),
			},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "p1@3", em2: "p1@3"},
				profiles: map[string]string{"p1": "p1@3", "p2": "p1@3"},
			},
			size: &Size{Profiles: 1, Identifiers: 2, Aliases: 1},
		},
		{
			// The absorbed profile's partition lags: its old record comes
			// after the survivor's, its tombstone last.
			name: "an absorbed profile's record after its survivor's",
			steps: []step{
				put("p1", 3, ids(em1, em2), "p2"), put("p2", 1, ids(em2)), tomb("p2", 4),
			},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "p1@3", em2: "p1@3"},
				profiles: map[string]string{"p1": "p1@3", "p2": "p1@3"},
			},
			size: &Size{Profiles: 1, Identifiers: 2, Aliases: 1},
		},
		{
			name:  "a newer record without an identifier drops it",
			steps: []step{put("p1", 1, ids(em1, ph1)), put("p1", 2, ids(em1))},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "p1@2", ph1: ""},
				profiles: map[string]string{"p1": "p1@2"},
			},
			size: &Size{Profiles: 1, Identifiers: 1},
		},
		{
			name:  "a newer record without an absorbed id drops it",
			steps: []step{put("p1", 1, ids(em1), "p0", "p9"), put("p1", 2, ids(em1), "p9")},
			want:  want{profiles: map[string]string{"p0": "", "p9": "p1@2"}},
			size:  &Size{Profiles: 1, Identifiers: 1, Aliases: 1},
		},
		{
			name:  "a tombstone removes the profile, its identifiers and absorbed ids",
			steps: []step{put("p1", 1, ids(em1, dev1), "p0"), put("p2", 2, ids(em2)), tomb("p1", 3)},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "", dev1: "", em2: "p2@2"},
				profiles: map[string]string{"p1": "", "p0": "", "p2": "p2@2"},
			},
			size: &Size{Profiles: 1, Identifiers: 1},
		},
		{
			name:  "a tombstone of an unknown profile changes nothing",
			steps: []step{put("p1", 1, ids(em1)), tomb("p7", 2)},
			want:  want{lookups: map[canon.Identifier]string{em1: "p1@1"}},
			size:  &Size{Profiles: 1, Identifiers: 1},
		},
		{
			name:  "a redelivered older record changes nothing",
			steps: []step{put("p1", 1, ids(em1)), put("p1", 2, ids(ph1)), put("p1", 1, ids(em1))},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "", ph1: "p1@2"},
				profiles: map[string]string{"p1": "p1@2"},
			},
			size: &Size{Profiles: 1, Identifiers: 1},
		},
		{
			name:  "the same record twice is taken once",
			steps: []step{put("p1", 2, ids(em1)), put("p1", 2, ids(em1))},
			want:  want{lookups: map[canon.Identifier]string{em1: "p1@2"}},
			size:  &Size{Profiles: 1, Identifiers: 1},
		},
		{
			name:  "a stale tombstone is ignored",
			steps: []step{put("p1", 5, ids(em1), "p0"), tomb("p1", 3)},
			want: want{
				lookups:  map[canon.Identifier]string{em1: "p1@5"},
				profiles: map[string]string{"p1": "p1@5", "p0": "p1@5"},
			},
			size: &Size{Profiles: 1, Identifiers: 1, Aliases: 1},
		},
		{
			// A revived id (an unlink hands an absorbed id back to a
			// part): its tombstone, redelivered, is older than its new life.
			name:  "a redelivered tombstone does not end a revived profile",
			steps: []step{put("p2", 1, ids(em2)), tomb("p2", 2), put("p2", 6, ids(em2)), tomb("p2", 2)},
			want:  want{lookups: map[canon.Identifier]string{em2: "p2@6"}},
		},
		{
			// Records without a seq header (seq 0): the profile's version
			// orders them instead.
			name: "without a seq the version orders a profile's records",
			steps: []step{
				{"p1", profileRecord("p1", 2, ids(em1)), 0},
				{"p1", profileRecord("p1", 1, ids(ph1)), 0},
			},
			want: want{lookups: map[canon.Identifier]string{em1: "p1@2", ph1: ""}},
		},
		{
			name:  "a tombstone without a seq removes the profile",
			steps: []step{put("p1", 5, ids(em1)), tomb("p1", 0)},
			want:  want{lookups: map[canon.Identifier]string{em1: ""}, profiles: map[string]string{"p1": ""}},
			size:  &Size{},
		},
		{
			name:  "an identifier listed twice is held once",
			steps: []step{put("p1", 1, ids(em1, em1)), put("p1", 2, ids(ph1))},
			want:  want{lookups: map[canon.Identifier]string{em1: "", ph1: "p1@2"}},
			size:  &Size{Profiles: 1, Identifiers: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := NewIndex(0)
			for i, s := range c.steps {
				if err := x.Apply(s.pid, s.value, s.seq); err != nil {
					t.Fatalf("step %d: Apply(%s, seq %d): %v", i, s.pid, s.seq, err)
				}
				checkAccounting(t, x)
			}
			c.want.check(t, x)
			if c.size != nil {
				got := x.Size()
				got.Bytes = 0
				if got != *c.size {
					t.Errorf("Size() = %+v, want %+v", got, *c.size)
				}
			}
		})
	}
}

// TestIndexMovedIdentifier: an identifier moves from A to B; A's and B's
// records are on different partitions, so they arrive in any interleaving
// that keeps each profile's own order. The highest seq wins in all.
func TestIndexMovedIdentifier(t *testing.T) {
	// The two change orders the engine may give the move: A loses em1
	// before or after B gains it.
	histories := map[string]struct{ a, b []step }{
		"A drops first": {
			a: []step{put("A", 1, ids(em1, ph1)), put("A", 2, ids(ph1))},
			b: []step{put("B", 3, ids(em1, dev1))},
		},
		"B takes first": {
			a: []step{put("A", 1, ids(em1, ph1)), put("A", 3, ids(ph1))},
			b: []step{put("B", 2, ids(em1, dev1))},
		},
		"and back to A": {
			a: []step{put("A", 1, ids(em1, ph1)), put("A", 2, ids(ph1)), put("A", 5, ids(em1, ph1))},
			b: []step{put("B", 3, ids(em1, dev1)), put("B", 4, ids(dev1))},
		},
	}
	finals := map[string]map[canon.Identifier]string{
		"A drops first": {em1: "B@3", ph1: "A@2", dev1: "B@3"},
		"B takes first": {em1: "B@2", ph1: "A@3", dev1: "B@2"},
		"and back to A": {em1: "A@5", ph1: "A@5", dev1: "B@4"},
	}
	for name, h := range histories {
		for _, order := range interleavings(len(h.a), len(h.b)) {
			t.Run(fmt.Sprintf("%s/%v", name, order), func(t *testing.T) {
				x := NewIndex(0)
				ai, bi := 0, 0
				for _, fromA := range order {
					var s step
					if fromA {
						s, ai = h.a[ai], ai+1
					} else {
						s, bi = h.b[bi], bi+1
					}
					if err := x.Apply(s.pid, s.value, s.seq); err != nil {
						t.Fatalf("Apply(%s, seq %d): %v", s.pid, s.seq, err)
					}
				}
				want{lookups: finals[name]}.check(t, x)
				checkAccounting(t, x)
			})
		}
	}
}

// interleavings returns every merge of a list of n items with one of m,
// each as a sequence of "take the next of the first list".
func interleavings(n, m int) [][]bool {
	if n == 0 && m == 0 {
		return [][]bool{nil}
	}
	var out [][]bool
	if n > 0 {
		for _, rest := range interleavings(n-1, m) {
			out = append(out, append([]bool{true}, rest...))
		}
	}
	if m > 0 {
		for _, rest := range interleavings(n, m-1) {
			out = append(out, append([]bool{false}, rest...))
		}
	}
	return out
}

// TestIndexRefusesNonProfiles: a record that is not a profile is an
// error and leaves everything as it was.
func TestIndexRefusesNonProfiles(t *testing.T) {
	cases := []struct {
		name  string
		pid   string
		value []byte
	}{
		{"bad JSON", "p1", []byte(`{"profile_id":"p1","identifiers":[`)},
		{"not an object", "p1", []byte(`[1,2]`)},
		{"JSON null", "p1", []byte(`null`)},
		{"empty value", "p1", []byte{}},
		{"profile_id of another profile", "p1", profileRecord("p2", 9, ids(ph1))},
		{"no profile_id", "p1", []byte(`{"identifiers":[{"type":"phone","value":"+15550100001"}],"version":9}`)},
		{"profile_id not a string", "p1", []byte(`{"profile_id":1}`)},
		{"identifiers not a list", "p1", []byte(`{"profile_id":"p1","identifiers":"+15550100001","version":9}`)},
		{"empty key", "", profileRecord("", 9, ids(ph1))},
		{"empty key tombstone", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := NewIndex(0)
			if err := x.Apply("p1", profileRecord("p1", 1, ids(em1), "p0"), 1); err != nil {
				t.Fatal(err)
			}
			before := x.Size()
			err := x.Apply(c.pid, c.value, 9)
			if err == nil {
				t.Fatalf("Apply(%q, %q) = nil, want an error", c.pid, c.value)
			}
			// Logged by the replica: it names the kind of fault and
			// quotes no identifier value.
			if !errors.Is(err, ErrNotProfile) || strings.Contains(err.Error(), "+1555") {
				t.Errorf("Apply(%q, %q) = %v, want ErrNotProfile without the record's values", c.pid, c.value, err)
			}
			if got := x.Size(); got != before {
				t.Errorf("Size() = %+v after a refused record, want %+v", got, before)
			}
			want{
				lookups:  map[canon.Identifier]string{em1: "p1@1", ph1: ""},
				profiles: map[string]string{"p1": "p1@1", "p0": "p1@1", "p2": "", "": ""},
			}.check(t, x)
			checkAccounting(t, x)
		})
	}
}

// TestIndexFull: a record that would take the index past its bound is
// refused with ErrFull and changes nothing; records that do not grow it,
// and tombstones, are still taken.
func TestIndexFull(t *testing.T) {
	r1 := put("p1", 1, ids(em1, ph1), "p0")
	r2 := put("p2", 2, ids(em2, dev1))
	// The bound is exactly what r1 costs, counted by an unbounded index.
	probe := NewIndex(0)
	if err := probe.Apply(r1.pid, r1.value, r1.seq); err != nil {
		t.Fatal(err)
	}
	bound := probe.Size().Bytes

	t.Run("under the bound by one byte", func(t *testing.T) {
		// Everything r1 adds counts, its identifiers' and absorbed ids'
		// entries included, so that Bytes never passes the bound.
		x := NewIndex(bound - 1)
		if err := x.Apply(r1.pid, r1.value, r1.seq); !errors.Is(err, ErrFull) {
			t.Fatalf("Apply over the bound = %v (Size %+v, bound %d), want ErrFull", err, x.Size(), bound-1)
		}
		if got := x.Size(); got != (Size{}) {
			t.Errorf("Size() = %+v after a refused record, want empty", got)
		}
		want{lookups: map[canon.Identifier]string{em1: ""}, profiles: map[string]string{"p1": "", "p0": ""}}.check(t, x)
	})

	x := NewIndex(bound)
	if err := x.Apply(r1.pid, r1.value, r1.seq); err != nil {
		t.Fatalf("Apply at exactly the bound: %v", err)
	}
	full := x.Size()
	if full.Bytes != bound {
		t.Fatalf("Size().Bytes = %d, want %d, as the unbounded index counted", full.Bytes, bound)
	}
	held := want{
		lookups:  map[canon.Identifier]string{em1: "p1@1", ph1: "p1@1", em2: "", dev1: ""},
		profiles: map[string]string{"p1": "p1@1", "p0": "p1@1", "p2": ""},
	}
	for _, s := range []step{
		r2,                                      // a new profile
		put("p1", 2, ids(em1, ph1, dev1), "p0"), // a bigger record of the held one
	} {
		err := x.Apply(s.pid, s.value, s.seq)
		if !errors.Is(err, ErrFull) {
			t.Fatalf("Apply(%s, seq %d) on a full index = %v, want ErrFull", s.pid, s.seq, err)
		}
		if got := x.Size(); got != full {
			t.Errorf("Size() = %+v after ErrFull, want %+v", got, full)
		}
		held.check(t, x)
	}
	// A record that shrinks the profile fits.
	if err := x.Apply("p1", profileRecord("p1", 3, ids(em1)), 3); err != nil {
		t.Fatalf("a smaller record on a full index: %v", err)
	}
	if got := x.Size(); got.Bytes >= full.Bytes || got.Identifiers != 1 || got.Aliases != 0 {
		t.Errorf("Size() = %+v after a smaller record, want fewer bytes than %d, 1 identifier, no alias", got, full.Bytes)
	}
	// A tombstone always fits, and makes room.
	if err := x.Apply("p1", nil, 4); err != nil {
		t.Fatalf("tombstone on a full index: %v", err)
	}
	if err := x.Apply(r2.pid, r2.value, r2.seq); err != nil {
		t.Errorf("Apply once there is room: %v", err)
	}
	want{lookups: map[canon.Identifier]string{em2: "p2@2", em1: ""}}.check(t, x)
	checkAccounting(t, x)
}

// TestIndexEmptiesOnTombstones: once every profile is tombstoned, nothing
// is held and the byte estimate is back to 0, whatever claims moved
// between profiles meanwhile.
func TestIndexEmptiesOnTombstones(t *testing.T) {
	x := NewIndex(0)
	for _, s := range []step{
		put("p1", 1, ids(em1, ph1)),
		put("p2", 2, ids(em2)),
		put("p3", 3, ids(dev1, ph1), "p4"), // ph1 moves to p3 before p1 says so
		put("p1", 4, ids(em1)),
		put("p2", 5, ids(em2, em1), "p1"), // p2 absorbs p1 ...
		put("p1", 2, ids(em1, ph1)),       // ... a redelivery of p1 ...
		tomb("p1", 5),                     // ... and p1's tombstone
	} {
		if err := x.Apply(s.pid, s.value, s.seq); err != nil {
			t.Fatalf("Apply(%s, seq %d): %v", s.pid, s.seq, err)
		}
	}
	if got := x.Size(); got.Profiles != 2 || got.Identifiers != 4 || got.Aliases != 2 || got.Bytes <= 0 {
		t.Fatalf("Size() = %+v, want 2 profiles, 4 identifiers, 2 aliases and some bytes", got)
	}
	checkAccounting(t, x)
	for _, pid := range []string{"p3", "p2"} {
		if err := x.Apply(pid, nil, 9); err != nil {
			t.Fatal(err)
		}
	}
	if got := x.Size(); got != (Size{}) {
		t.Errorf("Size() = %+v after every profile's tombstone, want all 0", got)
	}
}

// TestIndexRedeliveryAfterTombstone: a sink's retry that delivers a
// profile's older record again after its tombstone does not bring the
// profile back while the tombstone is remembered; a newer record of the
// same id (a split handing it back) does. Past forgetAfter the tombstone is
// forgotten, and so is everything about it.
func TestIndexRedeliveryAfterTombstone(t *testing.T) {
	x := NewIndex(0)
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	x.now = func() time.Time { return clock }
	apply := func(s step) {
		t.Helper()
		if err := x.Apply(s.pid, s.value, s.seq); err != nil {
			t.Fatalf("Apply(%s, seq %d): %v", s.pid, s.seq, err)
		}
	}
	apply(put("p1", 5, ids(em1, ph1)))
	apply(tomb("p1", 6))
	apply(put("p1", 5, ids(em1, ph1))) // the retry
	apply(put("p1", 6, ids(em1)))      // as old as the tombstone
	want{lookups: map[canon.Identifier]string{em1: "", ph1: ""}, profiles: map[string]string{"p1": ""}}.check(t, x)
	checkAccounting(t, x)

	apply(put("p1", 9, ids(em1)))
	want{lookups: map[canon.Identifier]string{em1: "p1@9", ph1: ""}, profiles: map[string]string{"p1": "p1@9"}}.check(t, x)

	apply(tomb("p1", 10))
	apply(tomb("p2", 3)) // a profile the index never held
	clock = clock.Add(forgetAfter + time.Second)
	apply(put("p3", 11, ids(dev1))) // reading on forgets
	x.mu.RLock()
	gone, queued := len(x.gone), len(x.forget)
	x.mu.RUnlock()
	if gone != 0 || queued != 0 {
		t.Errorf("after forgetAfter the index remembers %d tombstones (%d queued), want none", gone, queued)
	}
	checkAccounting(t, x)
	if got := x.Size(); got.Profiles != 1 || got.Identifiers != 1 {
		t.Errorf("Size() = %+v, want p3 and its identifier only", got)
	}
}
