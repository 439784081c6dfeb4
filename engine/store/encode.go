package store

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// The writer stores each profile and event once and also appends it to
// the change log inside a change record. Both hold the same JSON, so it is
// encoded once and spliced: a JSON object with members appended is still
// the JSON of the struct that embeds both parts.

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

// appendMember appends to dst the JSON object obj with the member key: raw
// added.
func appendMember(dst, obj []byte, key string, raw []byte) []byte {
	dst = append(dst, obj[:len(obj)-1]...)
	if len(obj) > 2 {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	dst = append(dst, raw...)
	return append(dst, '}')
}

// encodeState returns a profile state's stored JSON and, inside it, the
// JSON of its public profile.
func encodeState(st *profile.State) (state, prof []byte, err error) {
	if prof, err = marshal(&st.Profile); err != nil {
		return nil, nil, fmt.Errorf("store: encode profile: %w", err)
	}
	internal, err := marshal(&st.Internal)
	if err != nil {
		return nil, nil, fmt.Errorf("store: encode profile: %w", err)
	}
	return joinObjects(prof, internal), prof, nil
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

// EncodedEvent is an event's JSON as the store files it, and apart the
// JSON of its properties, which the event's change record carries for
// sinks (canon.Change.RawProps).
type EncodedEvent struct {
	JSON  []byte
	Props []byte // nil when the event has no properties
}

// EncodeEvent encodes an event as the store files it. The engine encodes a
// batch's events before handing it to the writer, off the writer's path,
// and passes them to PutEventRecord. The properties are encoded first and
// spliced in: sinks that store them as a JSON string take those bytes
// instead of encoding the map again.
func EncodeEvent(e *canon.Event) (EncodedEvent, error) {
	if !rfc3339(e.Time) {
		// The general encoder reports it.
		b, err := marshal(e)
		if err != nil {
			return EncodedEvent{}, fmt.Errorf("store: encode event: %w", err)
		}
		return EncodedEvent{JSON: b}, nil
	}
	var props, traits, groupTraits []byte
	var err error
	if len(e.Props) > 0 {
		if props, err = marshal(e.Props); err != nil {
			return EncodedEvent{}, fmt.Errorf("store: encode event properties: %w", err)
		}
	}
	if len(e.Traits) > 0 {
		if traits, err = marshal(e.Traits); err != nil {
			return EncodedEvent{}, fmt.Errorf("store: encode event traits: %w", err)
		}
	}
	if len(e.GroupTraits) > 0 {
		if groupTraits, err = marshal(e.GroupTraits); err != nil {
			return EncodedEvent{}, fmt.Errorf("store: encode event group traits: %w", err)
		}
	}
	b := make([]byte, 0, 256+64*len(e.Identifiers)+len(props)+len(traits)+len(groupTraits))
	b = appendEvent(b, e, props, traits, groupTraits)
	return EncodedEvent{JSON: b, Props: props}, nil
}

// appendEvent writes an event's JSON by hand, with its maps of any value
// already encoded: the general encoder spent most of its time on the fixed
// members, and every event is encoded once. Members and omissions are
// canon.Event's tags (TestEncodeEventMatches holds them equal).
func appendEvent(b []byte, e *canon.Event, props, traits, groupTraits []byte) []byte {
	b = append(b, `{"channel":`...)
	b = appendJSONString(b, string(e.Channel))
	b = append(b, `,"message_id":`...)
	b = appendJSONString(b, e.MessageID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(e.Kind))
	if e.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, e.Name)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano) // as time.Time's MarshalJSON
	b = append(b, '"')
	if len(e.Identifiers) > 0 {
		b = append(b, `,"identifiers":[`...)
		for i, o := range e.Identifiers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendIdentifier(b, o.Identifier, `,"trust":`)
			b = appendJSONString(b, o.Trust.String())
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendMap(b, `,"dropped":`, e.Dropped, func(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) })
	for _, p := range []struct {
		key  string
		pair *canon.Pair
	}{{`,"unlink":{"a":`, e.Unlink}, {`,"link":{"a":`, e.Link}} {
		if p.pair == nil {
			continue
		}
		b = append(b, p.key...)
		b = appendIdentifier(b, p.pair.A, "")
		b = append(b, `},"b":`...)
		b = appendIdentifier(b, p.pair.B, "")
		b = append(b, `}}`...)
	}
	if e.Amount != nil {
		b = append(b, `,"amount":{"currency":`...)
		b = appendJSONString(b, e.Amount.Currency)
		b = append(b, `,"micros":`...)
		b = strconv.AppendInt(b, e.Amount.Micros, 10)
		b = append(b, '}')
	}
	if e.CSAT != 0 {
		b = append(b, `,"csat":`...)
		b = strconv.AppendInt(b, int64(e.CSAT), 10)
	}
	if e.GroupID != "" {
		b = append(b, `,"group_id":`...)
		b = appendJSONString(b, e.GroupID)
	}
	if traits != nil {
		b = append(b, `,"traits":`...)
		b = append(b, traits...)
	}
	b = appendMap(b, `,"consent":`, e.Consent, strconv.AppendBool)
	if props != nil {
		b = append(b, `,"properties":`...)
		b = append(b, props...)
	}
	if groupTraits != nil {
		b = append(b, `,"group_traits":`...)
		b = append(b, groupTraits...)
	}
	return append(b, '}')
}

// appendMap writes key and m as a JSON object, members in any order, or
// nothing when m is empty (omitempty).
func appendMap[V any](b []byte, key string, m map[string]V, value func([]byte, V) []byte) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = value(b, v)
	}
	return append(b, '}')
}

// appendIdentifier writes {"type":..,"value":.. and then more (a member
// of the caller's, with its key), leaving the object open.
func appendIdentifier(b []byte, id canon.Identifier, more string) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, string(id.Type))
	b = append(b, `,"value":`...)
	b = appendJSONString(b, id.Value)
	return append(b, more...)
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
	C    uint64 `json:"c,omitempty"` // profile: its component
	V    uint64 `json:"v,omitempty"` // profile: its version
	size int    // the payload's stored JSON length, for the change window's budget
}

// appendChange appends a change record's JSON to dst: the whole record,
// or with ref its head, for an event the profile and anchor it resolved
// to, and the reference.
func appendChange(dst []byte, c canon.Change, ref *pageRef) ([]byte, error) {
	if ref == nil || !rfc3339(c.At) {
		v, err := marshal(c) // the general encoder reports a time it cannot write
		return append(dst, v...), err
	}
	return appendRefRecord(dst, &c, ref), nil
}

// rfc3339 reports whether t has an RFC 3339 form, which time.Time's
// MarshalJSON requires (and refuses to write otherwise): a four-digit year
// and a zone offset under 24 hours. The hand-written encoders write only
// such times.
func rfc3339(t time.Time) bool {
	_, off := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && off > -24*3600 && off < 24*3600
}

// appendRefRecord writes a referring record by hand: every event of a
// commit has one, and the general encoder took three encodings and a copy
// for its few fixed members. The members are canon.Change's and
// canon.EventRecord's (TestSplicedEncodings decodes them back).
func appendRefRecord(dst []byte, c *canon.Change, ref *pageRef) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, c.Seq, 10)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, string(c.Kind))
	dst = append(dst, `,"at":"`...)
	dst = c.At.AppendFormat(dst, time.RFC3339Nano) // as time.Time's MarshalJSON
	dst = append(dst, '"')
	if c.Restricted {
		dst = append(dst, `,"restricted":true`...)
	}
	if c.Event != nil {
		dst = append(dst, `,"event":{"profile_id":`...)
		dst = appendJSONString(dst, c.Event.ProfileID)
		dst = append(dst, `,"anchor":{"type":`...)
		dst = appendJSONString(dst, string(c.Event.Anchor.Type))
		dst = append(dst, `,"value":`...)
		dst = appendJSONString(dst, c.Event.Anchor.Value)
		dst = append(dst, '}')
		if c.Event.Refiled {
			dst = append(dst, `,"refiled":true`...)
		}
		dst = append(dst, '}')
	}
	if ref.K != "" {
		dst = append(dst, `,"ref":{"k":`...)
		dst = appendJSONString(dst, ref.K)
		dst = append(dst, `,"n":`...)
		dst = strconv.AppendUint(dst, ref.N, 10)
	} else {
		dst = append(dst, `,"ref":{"c":`...)
		dst = strconv.AppendUint(dst, ref.C, 10)
		dst = append(dst, `,"v":`...)
		dst = strconv.AppendUint(dst, ref.V, 10)
	}
	return append(dst, `}}`...)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 as U+FFFD (as encoding/json
// does).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// evidenceV1 starts the binary encoding of a link's evidence. Links are two
// entries each and the most numerous records after identifiers; in binary
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
