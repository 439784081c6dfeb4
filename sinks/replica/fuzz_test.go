package replica

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// FuzzApply: whatever a record of the profile stream holds (it is read
// from a topic anyone with access may write to), Apply does not panic;
// an error leaves the index as it was; and the byte estimate stays equal
// to what the index holds, within its bound.
func FuzzApply(f *testing.F) {
	f.Add("p1", profileRecord("p1", 3, ids(em1, ph1), "p0"), uint64(3), false, uint16(0))
	f.Add("p2", profileRecord("p2", 4, ids(em1, em2)), uint64(4), false, uint16(300))
	f.Add("p1", profileRecord("p1", 1, ids(dev1)), uint64(0), false, uint16(0))
	f.Add("p1", []byte(nil), uint64(9), true, uint16(0))
	f.Add("p9", []byte(`{"profile_id":"p9","identifiers":[{"type":"email","value":"a"},{"type":"email","value":"a"}],"merged_from":["p1","p1"]}`), uint64(7), false, uint16(1))
	f.Add("p1", []byte(`{"profile_id":"p1","identifiers":[{"type":"","value":""}],"merged_from":[""]}`), uint64(1<<63), false, uint16(0))
	f.Add("", []byte(`{"profile_id":""}`), uint64(1), false, uint16(0))
	f.Add("p1", []byte(`{"profile_id":"p1","identifiers":null,"version":18446744073709551615}`), uint64(0), false, uint16(0))
	f.Add("p1", []byte(`{"profile_id":"p1"`), uint64(2), false, uint16(0))
	f.Add("p1", []byte("\xff\xfe{"), uint64(2), false, uint16(0))
	f.Fuzz(func(t *testing.T, key string, value []byte, seq uint64, tombstone bool, room uint16) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{} // a present but empty value: not a tombstone
		}
		value = bytes.Clone(value) // the index keeps it

		// Profiles the record may touch: it may take their identifiers
		// and absorbed ids, or be a record of one of them.
		x := NewIndex(0)
		for _, s := range []step{put("p1", 2, ids(em1, ph1), "p0"), put("p2", 5, ids(em2))} {
			if err := x.Apply(s.pid, s.value, s.seq); err != nil {
				t.Fatal(err)
			}
		}
		if room > 0 {
			x.max = x.Size().Bytes + int64(room)
		}
		before := x.Size()
		snapshot := func() []string {
			return []string{
				answer(x.LookupJSON(em1)), answer(x.LookupJSON(ph1)), answer(x.LookupJSON(em2)),
				answer(x.ProfileJSON("p0")), answer(x.ProfileJSON("p1")), answer(x.ProfileJSON("p2")), answer(x.ProfileJSON(key)),
			}
		}
		was := snapshot()

		err := x.Apply(key, value, seq)
		if err != nil {
			if got := x.Size(); got != before {
				t.Fatalf("Apply(%q, %q, %d) = %v and Size went from %+v to %+v", key, value, seq, err, before, got)
			}
			if now := snapshot(); !slices.Equal(now, was) {
				t.Fatalf("Apply(%q, %q, %d) = %v and answers went from %q to %q", key, value, seq, err, was, now)
			}
			if room == 0 && errors.Is(err, ErrFull) {
				t.Fatalf("ErrFull from an unbounded index")
			}
		}
		if x.max > 0 && x.Size().Bytes > x.max {
			t.Fatalf("Bytes = %d past the bound %d", x.Size().Bytes, x.max)
		}
		checkAccounting(t, x)

		// Whatever was taken, tombstones of everything empty the index.
		for _, pid := range []string{key, "p1", "p2"} {
			if pid != "" {
				if err := x.Apply(pid, nil, 0); err != nil {
					t.Fatalf("tombstone of %q: %v", pid, err)
				}
			}
		}
		if got := x.Size(); got != (Size{}) {
			t.Fatalf("after every tombstone Size() = %+v, want empty", got)
		}
	})
}
