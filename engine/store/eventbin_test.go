package store

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas/canon"
)

// randomEvent returns an event with any of its members set, as decoders
// give them (UTC times, property values the ingest parser builds).
func randomEvent(r *rand.Rand) canon.Event {
	str := func() string {
		const alphabet = "ab\x00\"\\é<>&\u2028\n"
		runes := []rune(alphabet)
		s := make([]rune, r.IntN(10))
		for i := range s {
			s[i] = runes[r.IntN(len(runes))]
		}
		return string(s)
	}
	id := func() canon.Identifier { return canon.Identifier{Type: canon.IDType(str()), Value: str()} }
	var value func(depth int) any
	value = func(depth int) any {
		switch r.IntN(7) {
		case 0:
			return str()
		case 1:
			return json.Number(fmt.Sprint(r.IntN(1000) - 500))
		case 2:
			return r.IntN(2) == 0
		case 3:
			return nil
		case 4:
			return json.Number("12.5")
		case 5:
			if depth < 2 {
				return []any{value(depth + 1), value(depth + 1)}
			}
		}
		if depth < 2 {
			return map[string]any{str(): value(depth + 1)}
		}
		return "leaf"
	}
	anyMap := func() map[string]any {
		if r.IntN(2) == 0 {
			return nil
		}
		m := map[string]any{}
		for range 1 + r.IntN(4) {
			m[str()] = value(0)
		}
		return m
	}
	e := canon.Event{Channel: canon.Channel(str()), MessageID: str(), Kind: canon.Kind(str()), Name: str(),
		Time:   time.Unix(r.Int64N(1<<35)-1<<34, r.Int64N(1e9)*int64(r.IntN(2))).UTC(),
		Traits: anyMap(), Props: anyMap(), GroupTraits: anyMap()}
	for range r.IntN(4) {
		e.Identifiers = append(e.Identifiers, canon.Observation{Identifier: id(), Trust: canon.Trust(1 + r.IntN(3))})
	}
	if r.IntN(2) == 0 {
		e.Dropped = map[string]int{str(): r.IntN(5) + 1, "blocked": 2}
	}
	if r.IntN(3) == 0 {
		e.Unlink = &canon.Pair{A: id(), B: id()}
	}
	if r.IntN(3) == 0 {
		e.Link = &canon.Pair{A: id(), B: id()}
	}
	if r.IntN(2) == 0 {
		e.Amount = &canon.Money{Currency: "EUR", Micros: r.Int64N(1 << 40)}
	}
	e.CSAT = r.IntN(6)
	if r.IntN(2) == 0 {
		e.GroupID = str()
	}
	if r.IntN(2) == 0 {
		e.Consent = map[string]bool{"sms": r.IntN(2) == 0, str(): true}
	}
	return e
}

// encodeMap returns m's JSON as EncodeEvent splices it, nil when empty.
func encodeMap(t *testing.T, m map[string]any) []byte {
	t.Helper()
	if len(m) == 0 {
		return nil
	}
	b, err := marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A binary event reads back as its JSON does, member for member.
func TestBinaryEventMatchesJSON(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 5))
		e := randomEvent(r)
		props, traits, groupTraits := encodeMap(t, e.Props), encodeMap(t, e.Traits), encodeMap(t, e.GroupTraits)
		if !binaryEvent(&e) {
			t.Fatalf("seed %d: a UTC event has no binary form", seed)
		}
		bin := appendEventBinary(nil, &e, props, traits, groupTraits)
		js := appendEvent(nil, &e, props, traits, groupTraits)
		var got, want canon.Event
		if err := decodeEvent(bin, &got); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := decodeEvent(js, &want); err != nil {
			t.Fatalf("seed %d: the JSON: %v", seed, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: binary event reads back as\n%+v\nnot as its JSON\n%+v", seed, got, want)
		}
		if len(bin) >= len(js) {
			t.Errorf("seed %d: binary %d bytes, JSON %d", seed, len(bin), len(js))
		}
	}
	if binaryEvent(&canon.Event{Time: time.Now().In(time.FixedZone("x", 3600))}) {
		t.Error("a time outside UTC has a binary form: it would read back in UTC")
	}
}

// FuzzDecodeEvent: any bytes after the marker decode or fail, without
// panicking, and an event that decodes encodes back the same.
func FuzzDecodeEvent(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 8 {
		e := randomEvent(r)
		props, _ := marshal(e.Props)
		if len(e.Props) == 0 {
			props = nil
		}
		e.Traits, e.GroupTraits = nil, nil
		f.Add(appendEventBinary(nil, &e, props, nil, nil)[1:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var e, raw canon.Event
		var props []byte
		// The change reader's decoding, which keeps the properties as JSON
		// when they are in the writer's form, reads every event decodeEvent
		// reads, and the same; it may pass on properties decodeEvent
		// refuses to decode, as long as they are a valid JSON object.
		errFull := decodeEvent(append([]byte{eventV1}, body...), &e)
		errRaw := decodeEventProps(append([]byte{eventV1}, body...), &raw, &props)
		if errFull == nil && errRaw != nil {
			t.Fatalf("keeping the properties as JSON refuses an event decodeEvent reads: %v", errRaw)
		}
		if props != nil && !gojson.Valid(props) {
			t.Fatalf("properties kept as JSON are not JSON: %q", props)
		}
		if errFull == nil {
			if props != nil {
				if raw.Props != nil {
					t.Fatalf("properties both decoded and kept as JSON")
				}
				if err := canon.Decode(props, &raw.Props); err != nil { // as jsonMap decodes
					t.Fatalf("properties kept as JSON %q: %v", props, err)
				}
			}
			if !reflect.DeepEqual(e, raw) {
				t.Fatalf("keeping the properties as JSON reads another event:\n%+v\n%+v", e, raw)
			}
		}
		if errFull != nil || !binaryEvent(&e) {
			return
		}
		var again canon.Event
		if err := decodeEvent(appendEventBinary(nil, &e, encodeMap(t, e.Props), encodeMap(t, e.Traits), encodeMap(t, e.GroupTraits)), &again); err != nil {
			t.Fatalf("a re-encoded event does not decode: %v", err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("re-encoded event differs:\n%+v\n%+v", e, again)
		}
	})
}

// TestStoredNumbersStayExact checks that numbers read back from a stored
// event are the ingest parser's json.Number, as written: a float64 would
// round 0.10000000000000000001 and refuse 1e400, so that an event the
// engine accepted could not be exported, refiled or rebuilt from.
func TestStoredNumbersStayExact(t *testing.T) {
	e := canon.Event{Channel: canon.Web, MessageID: "m", Kind: canon.KindTrack, Time: time.Unix(1e9, 0).UTC(),
		Props:  map[string]any{"huge": json.Number("1e400"), "fine": json.Number("0.10000000000000000001"), "list": []any{json.Number("-1e-400")}},
		Traits: map[string]any{"age": json.Number("36")}}
	for _, name := range []string{"binary", "JSON"} {
		var stored []byte
		if name == "binary" {
			enc, err := EncodeEvent(&e)
			if err != nil {
				t.Fatal(err)
			}
			stored = enc.Stored
		} else {
			var err error
			if stored, err = json.Marshal(&e); err != nil {
				t.Fatal(err)
			}
		}
		var back canon.Event
		if err := decodeEvent(stored, &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Errorf("%s: read back\n%+v\nwant %+v", name, back, e)
		}
	}
}
