package store

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// randomChange returns a change record as a commit emits it, with the
// reference the commit would store it by (nil for a whole record).
// Strings hold invalid UTF-8 only with raw: JSON replaces it.
func randomChange(r *rand.Rand, seq uint64, at time.Time, raw bool) (canon.Change, *pageRef) {
	str := func() string {
		const alphabet = "ab\x00\"\\é<>&\u2028\n"
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(string([]rune(alphabet)[r.IntN(len([]rune(alphabet)))]))
		}
		if raw && r.IntN(8) == 0 {
			b.WriteByte(0xff) // invalid UTF-8
		}
		return b.String()
	}
	id := func() canon.Identifier {
		return canon.Identifier{Type: []canon.IDType{canon.Email, canon.AnonymousID, canon.IDType(str())}[r.IntN(3)], Value: str()}
	}
	c := canon.Change{Seq: seq, At: at, Restricted: r.IntN(3) == 0}
	switch r.IntN(6) {
	case 0, 1:
		c.Kind = canon.ChangeEvent
		c.Event = &canon.EventRecord{ProfileID: str(), Anchor: id(), Refiled: r.IntN(4) == 0}
		ref := &pageRef{K: c.Event.Anchor.Key(), N: 1 + r.Uint64N(1<<40)}
		switch r.IntN(3) {
		case 0: // filed in a group it did not open
			ref.G = 1 + r.Uint64N(ref.N)
		case 1: // it opened its group
			ref.G = ref.N
		}
		if r.IntN(4) == 0 {
			ref.K = "k" + str() // never empty: an event is filed under some key
		}
		return c, ref
	case 2:
		c.Kind = canon.ChangeProfile
		c.Profile = &canon.Profile{ID: str(), Version: seq}
		return c, &pageRef{C: r.Uint64N(1 << 40), V: seq}
	case 3:
		c.Kind = canon.ChangeMapping
		c.Mapping = &canon.Mapping{Identifier: id(), Version: seq}
		if r.IntN(4) > 0 {
			c.Mapping.ProfileID = str()
		}
	case 4:
		c.Kind = canon.ChangeDelete
		c.Delete = &canon.Deletion{ProfileID: str(), Reason: "erased"}
	default:
		c.Kind = canon.ChangeErase
		c.Erase = &canon.Erasure{ProfileIDs: []string{str()}, Hashes: []string{str()}, At: at}
	}
	return c, nil
}

// A binary page reads back as the JSON page of format 2 holding the same
// records did: every record kind, references, times in several zones,
// strings with every kind of byte.
func TestBinaryPageMatchesJSON(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("x", -7*3600), time.Local}
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 3))
		w := newPageWriter(0)
		js := []byte{'['}
		seq := r.Uint64N(1 << 50)
		at := time.Unix(r.Int64N(1<<33), r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
		n := 1 + r.IntN(40)
		var first uint64
		for i := range n {
			seq += 1 + r.Uint64N(3)
			if i == 0 {
				first = seq
			}
			if r.IntN(5) == 0 {
				at = at.Add(time.Duration(r.Int64N(int64(time.Hour)))).In(zones[r.IntN(len(zones))])
			}
			c, ref := randomChange(r, seq, at, false)
			if err := w.add(&c, ref); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if i > 0 {
				js = append(js, ',')
			}
			var err error
			if js, err = appendChange(js, c, ref); err != nil {
				t.Fatal(err)
			}
		}
		js = append(js, ']')
		got, err := decodePage(w.b, first, seq)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		want, err := decodePage(js, first, seq)
		if err != nil {
			t.Fatalf("seed %d: the JSON page: %v", seed, err)
		}
		if !reflect.DeepEqual(got, want) {
			for i := range min(len(got), len(want)) {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("seed %d: record %d reads back as\n%+v %+v (ref %+v)\nnot as from JSON\n%+v %+v (ref %+v)", seed, i, got[i].Change, got[i].Event, got[i].Ref, want[i].Change, want[i].Event, want[i].Ref)
				}
			}
			t.Fatalf("seed %d: %d records read back, JSON %d", seed, len(got), len(want))
		}
		if len(w.b) > len(js)/2 && n > 10 {
			t.Logf("seed %d: binary page %d bytes, JSON %d", seed, len(w.b), len(js))
		}
	}
}

// What the binary layout cannot hold goes whole, and a time without an RFC
// 3339 form is refused as the JSON encoders refuse it.
func TestBinaryPageEdges(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	w := newPageWriter(0)
	removal := canon.Change{Seq: 1, Kind: canon.ChangeMapping, At: at, Mapping: &canon.Mapping{Identifier: canon.Identifier{Type: canon.Email, Value: "a@b.io"}}}
	if err := w.add(&removal, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(w.b), `"profile_id":""`) {
		t.Errorf("an identifier's removal is not kept as JSON: %q", w.b)
	}
	for _, bad := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), at.In(time.FixedZone("y", 24*3600))} {
		c := canon.Change{Seq: 2, Kind: canon.ChangeEvent, At: bad, Event: &canon.EventRecord{ProfileID: "p"}}
		if err := w.add(&c, &pageRef{K: "k", N: 1}); err == nil {
			t.Errorf("a record at %v was written", bad)
		}
	}
	// Bytes JSON would replace survive.
	w = newPageWriter(0)
	odd := canon.Change{Seq: 3, Kind: canon.ChangeEvent, At: at, Event: &canon.EventRecord{ProfileID: "p\xff", Anchor: canon.Identifier{Type: canon.Email, Value: "\xfe@b.io"}}}
	if err := w.add(&odd, &pageRef{K: odd.Event.Anchor.Key(), N: 7}); err != nil {
		t.Fatal(err)
	}
	if page, err := decodePage(w.b, 3, 3); err != nil || len(page) != 1 || page[0].Event.ProfileID != odd.Event.ProfileID || page[0].Event.Anchor != odd.Event.Anchor || page[0].Ref.K != odd.Event.Anchor.Key() {
		t.Errorf("invalid UTF-8 read back as %+v, %v", page, err)
	}
	// A page cut anywhere is an error, never a panic or a short page
	// read as whole.
	w = newPageWriter(0)
	for i := range 5 {
		c := canon.Change{Seq: uint64(10 + i), Kind: canon.ChangeEvent, At: at, Event: &canon.EventRecord{ProfileID: fmt.Sprint("p", i), Anchor: canon.Identifier{Type: canon.Email, Value: "a@b.io"}}}
		if err := w.add(&c, &pageRef{K: c.Event.Anchor.Key(), N: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if page, err := decodePage(w.b, 10, 14); err != nil || len(page) != 5 {
		t.Fatalf("whole page: %d records, %v", len(page), err)
	}
	for n := 1; n < len(w.b); n++ {
		if page, err := decodePage(w.b[:n], 10, 14); err == nil {
			t.Errorf("a page cut at %d of %d bytes reads as %d records", n, len(w.b), len(page))
		}
	}
	if _, err := decodePage(w.b, 10, 15); err == nil {
		t.Error("a page read under a key it does not span")
	}
	// A record with a second payload, which a binary form would lose,
	// stays whole.
	two := canon.Change{Seq: 20, Kind: canon.ChangeEvent, At: at, Event: &canon.EventRecord{ProfileID: "p"}, Delete: &canon.Deletion{ProfileID: "q", Reason: "absorbed"}}
	w = newPageWriter(0)
	if err := w.add(&two, &pageRef{K: "k", N: 1}); err != nil {
		t.Fatal(err)
	}
	if page, err := decodePage(w.b, 20, 20); err != nil || page[0].Delete == nil || page[0].Delete.ProfileID != "q" {
		t.Errorf("a record with two payloads reads back as %+v, %v", page, err)
	}
}

// FuzzDecodeBinaryPage: any bytes after the marker decode or fail, without
// panicking, and a page that decodes encodes back to records that decode
// the same.
func FuzzDecodeBinaryPage(f *testing.F) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	for s := range 8 {
		w := newPageWriter(0)
		for i := range s + 1 {
			c, ref := randomChange(r, uint64(i+1), at, true)
			if err := w.add(&c, ref); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(w.b[1:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodeRecords(append([]byte{pageV1}, body...), 0)
		if err != nil {
			return
		}
		// A decoded record may carry what the binary forms leave out (a
		// whole record's payload beside a reference, which no commit
		// writes): after one more round, encoding is a fixed point.
		second, ok := reencode(t, page)
		if !ok {
			return
		}
		third, _ := reencode(t, second)
		a, _ := json.Marshal(second)
		b, _ := json.Marshal(third)
		if string(a) != string(b) {
			t.Fatalf("re-encoded page differs:\n%s\n%s", a, b)
		}
	})
}

// reencode writes page's records as a commit would and reads them back; ok
// is false when the writer refuses one (a time without an RFC 3339 form).
func reencode(t *testing.T, page []pageChange) (_ []pageChange, ok bool) {
	w := newPageWriter(0)
	for i := range page {
		if err := w.add(&page[i].Change, page[i].Ref); err != nil {
			return nil, false
		}
	}
	again, err := decodeRecords(w.b, uint64(len(page)))
	if err != nil {
		t.Fatalf("a re-encoded page does not decode: %v", err)
	}
	return again, true
}

func TestIsKeyOf(t *testing.T) {
	id := canon.Identifier{Type: canon.Email, Value: "a@b.io"}
	for _, c := range []struct {
		k    string
		want bool
	}{
		{id.Key(), true},
		{"email\x00a@b.i", false},
		{"email\x00a@b.io\x00", false},
		{"emai\x00la@b.io", false},
		{"email-a@b.io", false},
		{"", false},
	} {
		if got := isKeyOf(c.k, id); got != c.want {
			t.Errorf("isKeyOf(%q) = %v", c.k, got)
		}
	}
	if !isKeyOf("\x00", canon.Identifier{}) {
		t.Error("the empty identifier's key is not its own")
	}
}
