package store

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// The writer stores each profile once, as JSON that lookups answer with,
// and hands the public profile's JSON to the sinks: it is encoded once and
// spliced, since a JSON object with members appended is still the JSON of
// the struct that embeds both parts. Events (eventbin.go) and change-log
// pages (logpage.go) are binary.

// marshal encodes for storage: map members in any order, which spares the
// encoder a sort per map (readers decode; nothing compares bytes).
func marshal(v any) ([]byte, error) { return json.MarshalWithOption(v, json.UnorderedMap()) }

// joinObjects returns the JSON object holding a's members, then b's.
func joinObjects(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	out = append(out, a[:len(a)-1]...)
	if len(a) > 2 && len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}

// encodeState returns a profile state's stored JSON and, inside it, the
// JSON of its public profile.
func encodeState(st *profile.State) (state, prof []byte, err error) {
	// Both parts go to a scratch buffer, then out at their exact sizes:
	// prof cannot lie inside state (the byte after the profile's members
	// is '}' in one, ',' in the other), and the change window and the
	// cache keep prof, which must not pin state or spare capacity.
	scratch := jsonScratch.Get().(*[]byte)
	defer putJSONScratch(scratch)
	buf, err := appendOrMarshal((*scratch)[:0], &st.Profile, appendProfile)
	if err != nil {
		return nil, nil, fmt.Errorf("store: encode profile: %w", err)
	}
	n := len(buf)
	if buf, err = appendOrMarshal(buf, &st.Internal, appendInternal); err != nil {
		return nil, nil, fmt.Errorf("store: encode profile: %w", err)
	}
	*scratch = buf
	prof = append([]byte(nil), buf[:n]...)
	return joinObjects(prof, buf[n:]), prof, nil
}

// encodeProfile returns a profile's JSON, at its exact size: the cache
// keeps it.
func encodeProfile(p *canon.Profile) ([]byte, error) {
	scratch := jsonScratch.Get().(*[]byte)
	defer putJSONScratch(scratch)
	buf, err := appendOrMarshal((*scratch)[:0], p, appendProfile)
	if err != nil {
		return nil, fmt.Errorf("store: encode profile: %w", err)
	}
	*scratch = buf
	return append([]byte(nil), buf...), nil
}

// encodedState is a profile state's stored JSON and its public profile's.
type encodedState struct{ state, prof []byte }

// parallelStates is how many profiles a commit encodes before it shares
// the work with a second goroutine: below it, the handoff costs more
// than it saves.
const parallelStates = 64

// encodeStates encodes the profiles a commit writes. Encoding them is
// most of a commit's CPU and each is independent, so a large commit splits
// them between the writer and one more goroutine, on the core the writer
// leaves to Badger and decoding. background, when not nil, runs first on
// that goroutine (Options.Background).
func encodeStates(states []*profile.State, background func()) ([]encodedState, error) {
	out := make([]encodedState, len(states))
	encode := func(part []*profile.State, dst []encodedState) error {
		for i, st := range part {
			state, prof, err := encodeState(st)
			if err != nil {
				return err
			}
			dst[i] = encodedState{state, prof}
		}
		return nil
	}
	if len(states) < parallelStates || runtime.GOMAXPROCS(0) < 2 {
		return out, encode(states, out)
	}
	half := len(states) / 2
	errc := make(chan error, 1)
	go func() {
		if background != nil {
			background()
		}
		errc <- encode(states[half:], out[half:])
	}()
	err := encode(states[:half], out[:half])
	if err2 := <-errc; err == nil {
		err = err2
	}
	return out, err
}

// EncodedEvent is an event as the store files it, and apart the JSON of
// its properties, which the event's change record carries for sinks
// (canon.Change.RawProps).
type EncodedEvent struct {
	Stored []byte
	Props  []byte // nil when the event has no properties
}

// EncodeEvent encodes an event as the store files it (eventbin.go). The
// engine encodes a batch's events before handing it to the writer, off
// the writer's path, and passes them to PutEventRecord. The properties
// are encoded once: sinks that store them as a JSON string take those
// bytes instead of encoding the map again.
func EncodeEvent(e *canon.Event) (EncodedEvent, error) {
	if !binaryEvent(e) {
		// A time outside UTC (decoders give none) keeps its zone in
		// JSON; the general encoder reports one it cannot write.
		b, err := marshal(e)
		if err != nil {
			return EncodedEvent{}, fmt.Errorf("store: encode event: %w", err)
		}
		return EncodedEvent{Stored: b}, nil
	}
	// The maps go to a scratch buffer one after another; the properties,
	// which the change record keeps, then get their own exact-size copy.
	scratch := jsonScratch.Get().(*[]byte)
	defer putJSONScratch(scratch)
	buf := (*scratch)[:0]
	var maps [3][]byte // properties, traits, group traits
	for i, m := range [3]map[string]any{e.Props, e.Traits, e.GroupTraits} {
		if len(m) == 0 {
			continue
		}
		start := len(buf)
		var err error
		if buf, err = appendOrMarshal(buf, m, appendAnyObject); err != nil {
			return EncodedEvent{}, fmt.Errorf("store: encode event %s: %w", [3]string{"properties", "traits", "group traits"}[i], err)
		}
		maps[i] = buf[start:] // still valid once buf grows: the old array keeps these bytes
	}
	*scratch = buf
	props := maps[0]
	if props != nil {
		props = append([]byte(nil), props...)
	}
	b := make([]byte, 0, 128+48*len(e.Identifiers)+len(props)+len(maps[1])+len(maps[2]))
	return EncodedEvent{Stored: appendEventBinary(b, e, props, maps[1], maps[2]), Props: props}, nil
}

// pageRef is where a change record in the stored log finds what it
// carries: the stored event (its filing key and seq), or the stored
// profile (its component and version). The writer stores each event and
// profile anyway; a second copy in the log was a third of all bytes
// written. Sinks that keep up read the records from memory, with their
// payload; one that reads the log resolves the reference at its snapshot
// (Reader.Changes), and what is gone by then (a newer profile version, an
// event erased or moved) comes back Superseded.
type pageRef struct {
	K    string `json:"k,omitempty"` // event: the identifier key it is filed under
	N    uint64 `json:"n,omitempty"` // event: its filing seq
	G    uint64 `json:"g,omitempty"` // event: the filing seq of its group, the key's (0: N, as for an event that opened its group or was filed alone)
	C    uint64 `json:"c,omitempty"` // profile: its component
	V    uint64 `json:"v,omitempty"` // profile: its version
	size int    // the payload's stored length, for the change window's budget
}

// rfc3339 reports whether t has an RFC 3339 form, which time.Time's
// MarshalJSON requires (and refuses to write otherwise): a four-digit year
// and a zone offset under 24 hours. The hand-written encoders write only
// such times.
func rfc3339(t time.Time) bool {
	_, off := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && off > -24*3600 && off < 24*3600
}

// evidenceV1 starts the binary encoding of a link's evidence. Links are
// among the most numerous records after identifiers; in binary
// (about half the JSON's size) they stay under Badger's value threshold,
// in the LSM tree instead of the value log. JSON, from stores written
// before, starts with '{' and is still read.
const evidenceV1 = 0x01

// appendEvidence appends ev's binary encoding: the version byte, channel
// and message id as length-prefixed strings, the trust level, and the time
// as Unix seconds and nanoseconds (in UTC; the zero time round-trips).
func appendEvidence(dst []byte, ev canon.Evidence) []byte {
	dst = append(dst, evidenceV1)
	dst = appendString(dst, string(ev.Channel))
	dst = appendString(dst, ev.MessageID)
	dst = binary.AppendUvarint(dst, uint64(ev.Trust))
	dst = binary.AppendVarint(dst, ev.Time.Unix())
	return binary.AppendUvarint(dst, uint64(ev.Time.Nanosecond()))
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// decodeEvidence reads either encoding of a link's evidence.
func decodeEvidence(b []byte, ev *canon.Evidence) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, ev)
	}
	if len(b) == 0 || b[0] != evidenceV1 {
		return fmt.Errorf("store: unknown evidence encoding")
	}
	d := decoder{b: b[1:]}
	ch, msg, trust := d.string(), d.string(), d.uvarint()
	sec, nsec := d.varint(), d.uvarint()
	if d.bad || len(d.b) != 0 || nsec >= 1e9 || trust > 255 {
		return fmt.Errorf("store: malformed evidence")
	}
	*ev = canon.Evidence{Channel: canon.Channel(ch), MessageID: msg, Trust: canon.Trust(trust), Time: time.Unix(sec, int64(nsec)).UTC()}
	return nil
}

// decoder reads length-prefixed binary fields; bad is set, and the rest
// reads zero, once the input runs short.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads binary.AppendVarint's zig-zag encoding.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
