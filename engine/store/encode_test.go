package store

import (
	stdjson "encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// generic decodes JSON into plain maps, so encodings compare regardless of
// member order.
func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if g, w := generic(t, got), generic(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// sameEvent checks that a filed event reads back as the event whose JSON
// is want.
func sameEvent(t *testing.T, what string, stored, want []byte) {
	t.Helper()
	var got, w canon.Event
	if err := decodeEvent(stored, &got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := canon.Decode(want, &w); err != nil { // as the store reads events
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Errorf("%s:\n got %+v\nwant %s", what, got, want)
	}
}

// The spliced encodings must be exactly what encoding the whole struct
// gives: readers decode them as canon.Change, profile.State and canon.Event.
func TestSplicedEncodings(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	st := profile.New("prf_1", 7, 3)
	st.Level = canon.Registered
	st.Identifiers = []canon.ProfileIdentifier{{Type: canon.Email, Value: "a@b.io", Trust: canon.Verified, FirstSeen: at}}
	st.Traits = map[string]any{"first_name": "Ada", "age": json.Number("36")}
	st.Consent = map[string]canon.ConsentState{"analytics": {Value: true, Time: at, Source: "web"}}
	st.Computed.TotalSpend = canon.Amounts{"EUR": 1250}
	st.Computed.EventsByChannel = map[canon.Channel]int64{canon.Web: 2}
	st.FirstOrders = []time.Time{at}
	st.Conflicts = []canon.LogRecord{{Type: canon.LogConflict, ProfileID: "prf_1", Others: []string{"prf_2"}, Reason: "limit:email"}}
	st.Version = 42

	state, prof, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := json.Marshal(st)
	sameJSON(t, "state", state, whole)
	whole, _ = json.Marshal(&st.Profile)
	sameJSON(t, "profile", prof, whole)
	var back profile.State
	if err := json.Unmarshal(state, &back); err != nil || back.Comp != 7 || back.Created != 3 || back.ID != "prf_1" || len(back.Conflicts) != 1 {
		t.Errorf("state decodes to %+v, %v", back, err)
	}
	// A change record in the stored log refers to the profile.
	p := st.Profile
	c := canon.Change{Seq: 42, Kind: canon.ChangeProfile, At: at, Restricted: true, Profile: &p}
	checkRefRecord(t, c, &pageRef{C: 7, V: 42})

	rec := &canon.EventRecord{
		Event: canon.Event{Channel: canon.POS, MessageID: "m1", Kind: canon.KindOrder, Time: at,
			Identifiers: []canon.Observation{{Identifier: canon.Identifier{Type: canon.LoyaltyID, Value: "L1"}, Trust: canon.Asserted}},
			Amount:      &canon.Money{Currency: "EUR", Micros: 12_500_000}, Traits: map[string]any{"city": "Oslo"}},
		ProfileID: "prf_1", Anchor: canon.Identifier{Type: canon.LoyaltyID, Value: "L1"},
	}
	ev, err := EncodeEvent(&rec.Event)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Props != nil {
		t.Errorf("an event without properties has their JSON: %s", ev.Props)
	}
	whole, _ = json.Marshal(&rec.Event)
	sameEvent(t, "event", ev.Stored, whole)

	// Properties are spliced into the event, and apart they are the map's
	// JSON.
	withProps := rec.Event
	withProps.Props = map[string]any{"z": 1.5, "a": "x<y", "m": map[string]any{"k2": true, "k1": []any{"v", nil}}}
	enc, err := EncodeEvent(&withProps)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ = json.Marshal(&withProps)
	sameEvent(t, "event with properties", enc.Stored, whole)
	whole, _ = json.Marshal(withProps.Props)
	sameJSON(t, "properties", enc.Props, whole)
	if _, err := EncodeEvent(&canon.Event{Props: map[string]any{"bad": make(chan int)}}); err == nil {
		t.Error("properties that cannot be encoded gave no error")
	}
	// An event's record in the stored log holds where the event resolved
	// and the reference; a record without one is whole.
	c = canon.Change{Seq: 43, Kind: canon.ChangeEvent, At: at, Event: rec}
	checkRefRecord(t, c, &pageRef{K: rec.Anchor.Key(), N: 9})
	moved := *rec
	moved.Refiled = true
	checkRefRecord(t, canon.Change{Seq: 44, Kind: canon.ChangeEvent, At: at.In(time.FixedZone("x", 5*3600+1800)), Event: &moved}, &pageRef{K: "k\x00\"v\"", N: 10})
	// Times without an RFC 3339 form are refused, as the general encoder
	// refuses them, rather than written undecodable.
	for _, bad := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), at.In(time.FixedZone("y", 24*3600))} {
		if _, err := appendChange(nil, canon.Change{Seq: 45, Kind: canon.ChangeEvent, At: bad, Event: rec}, &pageRef{K: "k", N: 1}); err == nil {
			t.Errorf("a record at %v was written", bad)
		}
		if _, err := EncodeEvent(&canon.Event{Channel: canon.Web, MessageID: "m", Kind: canon.KindTrack, Time: bad}); err == nil {
			t.Errorf("an event at %v was written", bad)
		}
	}
	whole, _ = json.Marshal(c)
	plain, err := appendChange(nil, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "event change without a reference", plain, whole)

	if got := joinObjects([]byte(`{}`), []byte(`{"a":1}`)); string(got) != `{"a":1}` {
		t.Errorf("joinObjects({}, {a}) = %s", got)
	}
}

// checkRefRecord encodes c with ref as the stored log does and decodes it
// back: the record's own fields, an event's profile and anchor, and the
// reference survive; the payload does not.
func checkRefRecord(t *testing.T, c canon.Change, ref *pageRef) {
	t.Helper()
	b, err := appendChange(nil, c, ref)
	if err != nil {
		t.Fatal(err)
	}
	var back pageChange
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if back.Seq != c.Seq || back.Kind != c.Kind || !back.At.Equal(c.At) || back.Restricted != c.Restricted || back.Profile != nil ||
		back.Ref == nil || back.Ref.K != ref.K || back.Ref.N != ref.N || back.Ref.C != ref.C || back.Ref.V != ref.V {
		t.Errorf("record %s decodes to %+v (ref %+v)", b, back.Change, back.Ref)
	}
	if c.Event != nil {
		if back.Event == nil || back.Event.ProfileID != c.Event.ProfileID || back.Event.Anchor != c.Event.Anchor || back.Event.Refiled != c.Event.Refiled || back.Event.MessageID != "" {
			t.Errorf("event record %s decodes to %+v", b, back.Event)
		}
	} else if back.Event != nil {
		t.Errorf("record %s decodes with an event", b)
	}
}

// appendJSONString gives what encoding/json gives for the same string,
// once decoded: escapes, control characters, invalid UTF-8.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "nul\x00type", "tab\tnl\ncr\r", "\x1f\x7f",
		"ünïcödé ✓ 𝄞", "bad\xffutf8\xc3", "\u2028\u2029", "<html>&"} {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("email\x00a@b.io")
	f.Add("bad\xff")
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	got := appendJSONString(nil, s)
	var back, want string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%q encodes to %s, not JSON: %v", s, got, err)
	}
	ref, _ := stdjson.Marshal(s)
	if err := stdjson.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if back != want {
		t.Errorf("%q encodes to %s, which decodes to %q; encoding/json's to %q", s, got, back, want)
	}
}

func TestEvidenceEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)
	for _, ev := range []canon.Evidence{
		{Channel: canon.Web, MessageID: "0b8f6a52-5d7e-4c1e-9a53-3f1f0f7b1c2d", Time: at, Trust: canon.Asserted},
		{Channel: canon.CIAM, MessageID: "m1", Time: at.Add(-time.Hour * 24 * 365 * 60), Trust: canon.Verified},
		{Channel: "api", Trust: canon.Verified}, // the zero time
		{},
	} {
		b := appendEvidence(nil, ev)
		if len(b) >= 64 && len(ev.MessageID) <= 36 {
			t.Errorf("%+v: %d bytes, over the store's value threshold", ev, len(b))
		}
		var got canon.Evidence
		if err := decodeEvidence(b, &got); err != nil || got != ev {
			t.Errorf("round trip of %+v = %+v, %v", ev, got, err)
		}
		if ev.Trust == 0 {
			continue // not valid as JSON
		}
		// Stores written before the binary encoding hold JSON.
		j, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got = canon.Evidence{}
		if err := decodeEvidence(j, &got); err != nil || !got.Time.Equal(ev.Time) || got.MessageID != ev.MessageID || got.Trust != ev.Trust {
			t.Errorf("JSON %s = %+v, %v", j, got, err)
		}
	}
	b := appendEvidence(nil, canon.Evidence{Channel: canon.POS, MessageID: "tx-1", Time: at, Trust: canon.Observed})
	for _, bad := range [][]byte{nil, {0x7f}, b[:len(b)-1], append(append([]byte{}, b...), 0), {evidenceV1, 200}} {
		if err := decodeEvidence(bad, &canon.Evidence{}); err == nil {
			t.Errorf("decodeEvidence(%x) accepted", bad)
		}
	}
}

func FuzzDecodeEvidence(f *testing.F) {
	f.Add(appendEvidence(nil, canon.Evidence{Channel: canon.Web, MessageID: "m-1", Time: time.Unix(1e9, 5).UTC(), Trust: canon.Asserted}))
	f.Add([]byte(`{"channel":"web","message_id":"m","time":"2026-01-01T00:00:00Z","trust":"asserted"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev canon.Evidence
		if decodeEvidence(b, &ev) != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		var again canon.Evidence
		if err := decodeEvidence(appendEvidence(nil, ev), &again); err != nil || again != ev {
			t.Fatalf("%x decodes to %+v, which re-encodes to %+v, %v", b, ev, again, err)
		}
	})
}

// TestEncodeStatesInParallel checks that a commit's profiles, encoded in
// two halves, come out as each encodes alone, in order.
func TestEncodeStatesInParallel(t *testing.T) {
	var states []*profile.State
	for i := range parallelStates*2 + 1 {
		st := profile.New(fmt.Sprint("prf_", i), uint64(i+1), uint64(i))
		st.Traits = map[string]any{"n": json.Number(fmt.Sprint(i))}
		states = append(states, st)
	}
	got, err := encodeStates(states, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		state, prof, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, fmt.Sprint("state ", i), got[i].state, state)
		sameJSON(t, fmt.Sprint("profile ", i), got[i].prof, prof)
	}
}

// EncodeEvent's hand-written JSON is what encoding the struct gives, for
// random events with every member set or not and awkward strings.
func TestEncodeEventMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	strs := []string{"", "a", `q"uote`, "nul\x00", "ü✓𝄞", "bad\xff", "new\nline", "<&>"}
	str := func() string { return strs[r.IntN(len(strs))] + fmt.Sprint(r.IntN(3)) }
	id := func() canon.Identifier { return canon.Identifier{Type: canon.IDType(str()), Value: str()} }
	for i := range 2000 {
		e := canon.Event{Channel: canon.Channel(str()), MessageID: str(), Kind: canon.Kind(str()),
			Time: time.Date(1970+r.IntN(100), 1, 1, 0, 0, 0, r.IntN(2)*r.IntN(1e9), time.UTC).Add(time.Duration(r.Int64N(1e15)))}
		if r.IntN(2) == 0 {
			e.Name = str()
		}
		if r.IntN(3) == 0 {
			e.Time = e.Time.In(time.FixedZone("z", (r.IntN(47)-23)*3600+r.IntN(2)*1800))
		}
		for range r.IntN(4) {
			e.Identifiers = append(e.Identifiers, canon.Observation{Identifier: id(), Trust: canon.Trust(1 + r.IntN(3))})
		}
		if r.IntN(3) == 0 {
			e.Dropped = map[string]int{str(): r.IntN(5), str(): 1}
		}
		if r.IntN(3) == 0 {
			e.Unlink = &canon.Pair{A: id(), B: id()}
		}
		if r.IntN(3) == 0 {
			e.Link = &canon.Pair{A: id(), B: id()}
		}
		if r.IntN(2) == 0 {
			e.Amount = &canon.Money{Currency: str(), Micros: r.Int64N(1e12) - 5e11}
		}
		if r.IntN(2) == 0 {
			e.CSAT = r.IntN(6)
		}
		if r.IntN(2) == 0 {
			e.GroupID = str()
		}
		if r.IntN(2) == 0 {
			e.Traits = map[string]any{str(): str(), "n": float64(r.IntN(100))}
		}
		if r.IntN(2) == 0 {
			e.Consent = map[string]bool{str(): r.IntN(2) == 0, "sms": true}
		}
		if r.IntN(2) == 0 {
			e.Props = map[string]any{str(): []any{str(), true, nil}, "m": map[string]any{str(): 1.5}}
		}
		if r.IntN(4) == 0 {
			e.GroupTraits = map[string]any{str(): str()}
		}
		enc, err := EncodeEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var got, want canon.Event
		if err := decodeEvent(enc.Stored, &got); err != nil {
			t.Fatalf("event %d: %q: %v", i, enc.Stored, err)
		}
		if err := json.Unmarshal(whole, &want); err != nil {
			t.Fatal(err)
		}
		// A binary event keeps invalid UTF-8 that JSON replaces: compared
		// as JSON, they are the same.
		back, err := json.Marshal(&got)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, fmt.Sprint("event ", i), back, whole)
		if !got.Time.Equal(want.Time) || got.Time.Location().String() != want.Time.Location().String() {
			t.Errorf("event %d: time %v reads back as %v", i, want.Time, got.Time)
		}
	}
}
