package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas/canon"
)

// An event is filed in binary since state format 4: the byte eventV1, the
// fixed members (channel, message id, kind, name, time as Unix seconds and
// nanoseconds in UTC), the identifiers (type, value, trust), then a bit
// set of the optional members present and each of them. Maps of any value
// (properties, traits, group traits) are their JSON, as sinks take the
// properties. Every event is filed once and most are never read again, so
// what counts is its size: a quarter less than its JSON, which was half of
// what a commit wrote. Events filed before are JSON ('{') and still read.
const eventV1 = 0x01

// Optional members of a binary event, in the order they follow.
const (
	evDropped uint64 = 1 << iota
	evUnlink
	evLink
	evAmount
	evCSAT
	evGroupID
	evTraits
	evConsent
	evProps
	evGroupTraits
)

// decodedEventOverhead is what the change window counts for an event
// besides its stored form: the decoded struct's own fields, which its
// JSON's member names used to stand for.
const decodedEventOverhead = 192

// binaryEvent reports whether e's members all have a binary form: the
// time is UTC (as decoders give it) and within RFC 3339's years, so it
// reads back as its JSON would.
func binaryEvent(e *canon.Event) bool {
	return e.Time.Location() == time.UTC && rfc3339(e.Time)
}

// appendEventBinary appends e in binary, with its maps of any value already
// encoded as JSON (nil when empty). The caller checks binaryEvent first.
func appendEventBinary(b []byte, e *canon.Event, props, traits, groupTraits []byte) []byte {
	b = append(b, eventV1)
	b = appendString(b, string(e.Channel))
	b = appendString(b, e.MessageID)
	b = appendString(b, string(e.Kind))
	b = appendString(b, e.Name)
	b = binary.AppendVarint(b, e.Time.Unix())
	b = binary.AppendUvarint(b, uint64(e.Time.Nanosecond()))
	b = binary.AppendUvarint(b, uint64(len(e.Identifiers)))
	for _, o := range e.Identifiers {
		b = append(appendIdentifier(b, o.Identifier), byte(o.Trust))
	}
	var has uint64
	for _, m := range [...]struct {
		bit uint64
		set bool
	}{
		{evDropped, len(e.Dropped) > 0}, {evUnlink, e.Unlink != nil}, {evLink, e.Link != nil}, {evAmount, e.Amount != nil},
		{evCSAT, e.CSAT != 0}, {evGroupID, e.GroupID != ""}, {evTraits, traits != nil}, {evConsent, len(e.Consent) > 0},
		{evProps, props != nil}, {evGroupTraits, groupTraits != nil},
	} {
		if m.set {
			has |= m.bit
		}
	}
	b = binary.AppendUvarint(b, has)
	if has&evDropped != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Dropped)))
		for k, n := range e.Dropped {
			b = binary.AppendVarint(appendString(b, k), int64(n))
		}
	}
	for _, p := range []*canon.Pair{e.Unlink, e.Link} {
		if p != nil {
			b = appendIdentifier(appendIdentifier(b, p.A), p.B)
		}
	}
	if e.Amount != nil {
		b = binary.AppendVarint(appendString(b, e.Amount.Currency), e.Amount.Micros)
	}
	if e.CSAT != 0 {
		b = binary.AppendVarint(b, int64(e.CSAT))
	}
	if e.GroupID != "" {
		b = appendString(b, e.GroupID)
	}
	if traits != nil {
		b = appendBytes(b, traits)
	}
	if len(e.Consent) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Consent)))
		for k, v := range e.Consent {
			var granted byte
			if v {
				granted = 1
			}
			b = append(appendString(b, k), granted)
		}
	}
	if props != nil {
		b = appendBytes(b, props)
	}
	if groupTraits != nil {
		b = appendBytes(b, groupTraits)
	}
	return b
}

// appendIdentifier appends an identifier's type and value as two
// length-prefixed fields (decoder.identifier reads them).
func appendIdentifier(b []byte, id canon.Identifier) []byte {
	return appendString(appendString(b, string(id.Type)), id.Value)
}

func (d *decoder) identifier() canon.Identifier {
	t := d.string()
	return canon.Identifier{Type: canon.IDType(t), Value: d.string()}
}

// appendBytes appends a length-prefixed field, as appendString does.
func appendBytes(dst, v []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(v))), v...)
}

// decodeEvent reads a filed event in either encoding.
func decodeEvent(b []byte, e *canon.Event) error { return decodeEventProps(b, e, nil) }

// decodeEventProps is decodeEvent that, with rawProps set and the binary
// encoding, leaves Props nil and sets *rawProps to a copy of their stored
// JSON instead: a sink that writes them as JSON then neither decodes nor
// encodes them again.
func decodeEventProps(b []byte, e *canon.Event, rawProps *[]byte) error {
	if len(b) == 0 || b[0] != eventV1 {
		return canon.Decode(b, e)
	}
	d := decoder{b: b[1:]}
	*e = canon.Event{Channel: canon.Channel(d.string()), MessageID: d.string(), Kind: canon.Kind(d.string()), Name: d.string()}
	sec, nsec := d.varint(), d.uvarint()
	if nsec >= 1e9 {
		d.bad = true
	}
	e.Time = time.Unix(sec, int64(nsec)).UTC()
	if n := d.count(); n > 0 {
		e.Identifiers = make([]canon.Observation, n)
		for i := range e.Identifiers {
			o := &e.Identifiers[i]
			o.Identifier, o.Trust = d.identifier(), canon.Trust(d.byte())
			if o.Trust < canon.Observed || o.Trust > canon.Verified {
				d.bad = true // as the JSON's trust names refuse it
			}
		}
	}
	has := d.uvarint()
	if has&evDropped != 0 {
		n := d.nonEmptyCount()
		e.Dropped = make(map[string]int, n)
		for range n {
			k := d.string()
			e.Dropped[k] = int(d.varint())
		}
	}
	pair := func() *canon.Pair {
		return &canon.Pair{A: d.identifier(), B: d.identifier()}
	}
	if has&evUnlink != 0 {
		e.Unlink = pair()
	}
	if has&evLink != 0 {
		e.Link = pair()
	}
	if has&evAmount != 0 {
		e.Amount = &canon.Money{Currency: d.string(), Micros: d.varint()}
	}
	if has&evCSAT != 0 {
		e.CSAT = int(d.varint())
	}
	if has&evGroupID != 0 {
		e.GroupID = d.string()
	}
	// A member present is never empty: the writer leaves an empty one
	// out, and a decoder that took either would not read back the same.
	jsonMap := func(dst *map[string]any) error {
		raw := d.bytes()
		if d.bad {
			return nil
		}
		if err := canon.Decode(raw, dst); err != nil {
			return err
		}
		if len(*dst) == 0 {
			d.bad = true
		}
		return nil
	}
	if has&evTraits != 0 {
		if err := jsonMap(&e.Traits); err != nil {
			return fmt.Errorf("store: event traits: %w", err)
		}
	}
	if has&evConsent != 0 {
		n := d.nonEmptyCount()
		e.Consent = make(map[string]bool, n)
		for range n {
			k := d.string()
			e.Consent[k] = d.byte() == 1
		}
	}
	if has&evProps != 0 && rawProps != nil && compactObject(d.b) {
		// The writer's form (compact, not empty): kept as it is.
		*rawProps = bytes.Clone(d.bytes())
	} else if has&evProps != 0 {
		if err := jsonMap(&e.Props); err != nil {
			return fmt.Errorf("store: event properties: %w", err)
		}
	}
	if has&evGroupTraits != 0 {
		if err := jsonMap(&e.GroupTraits); err != nil {
			return fmt.Errorf("store: event group traits: %w", err)
		}
	}
	if d.bad || len(d.b) != 0 || has >= evGroupTraits<<1 {
		return fmt.Errorf("store: malformed event")
	}
	return nil
}

// compactObject reports whether b starts with a length-prefixed field that
// holds a valid JSON object of at least one member, written without
// spaces as marshal writes it. Anything else the properties' decoding
// (jsonMap) judges.
func compactObject(b []byte) bool {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return false
	}
	v := b[k : k+int(n)]
	return len(v) > 2 && v[0] == '{' && v[1] == '"' && v[len(v)-1] == '}' && json.Valid(v)
}

// count reads a number of entries that follow, each at least one byte, so
// that a corrupt count cannot make a decoder allocate more than the input.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return 0
	}
	return int(n)
}

// nonEmptyCount is count for a member present, which holds at least one
// entry.
func (d *decoder) nonEmptyCount() int {
	n := d.count()
	if n == 0 {
		d.bad = true
	}
	return n
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}
