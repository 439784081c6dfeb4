package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// A change-log page (one per commit) is binary since state format 3: the
// byte pageV1, then its records in seq order. Most records are an event's
// or a profile's reference, a few dozen bytes each here against a quarter
// of a kilobyte as JSON, and every event has one: the page was a fifth of
// the bytes a commit wrote. Each record is a tag, flags, the seq as the
// difference from the record before, the commit time unless it is the
// record before's, then the tag's fields:
//
//	recEvent    profile id, anchor type, anchor value, [filing key], filing seq,
//	            [filing seq less its group's, with flagGrouped; format 5]
//	recProfile  component, version
//	recMapping  identifier type, identifier value, profile id, version
//	recJSON     the record's JSON (every other kind, and anything the
//	            binary forms do not hold)
//
// Strings are length-prefixed; numbers uvarints. Pages written before
// format 3 are JSON ('[' or '{') and decodePage still reads them.
const pageV1 = 0x01

// Record tags.
const (
	recJSON byte = iota
	recEvent
	recProfile
	recMapping
)

// Record flags.
const (
	flagRestricted byte = 1 << iota
	flagRefiled
	flagSameAt     // the commit time is the record before's
	flagAnchorFile // an event filed under its anchor: the filing key is not repeated
	flagGrouped    // an event filed in a group: the group's seq follows, as N less it
)

// changeOverhead is what the change window counts for a record besides
// its stored form and payload: the decoded record's own fields, about
// the size of the JSON a record took before pages were binary.
const changeOverhead = 192

// pageWriter appends records to a binary page.
type pageWriter struct {
	b      []byte
	prev   uint64    // seq of the record before
	prevAt time.Time // its commit time, as written
	any    bool
}

func newPageWriter(capacity int) *pageWriter {
	w := &pageWriter{b: make([]byte, 1, max(capacity, 1))}
	w.b[0] = pageV1
	return w
}

// add appends c, by reference when ref is set (an event's filing or a
// profile's version). A time without an RFC 3339 form is an error, as the
// JSON encoders refuse it.
func (w *pageWriter) add(c *canon.Change, ref *pageRef) error {
	tag := recJSON
	// A binary form holds one payload: a record that carries another too
	// (none does) stays whole rather than lose it.
	payloads := 0
	for _, set := range []bool{c.Event != nil, c.Profile != nil, c.Delete != nil, c.Mapping != nil, c.Log != nil, c.Erase != nil, c.Account != nil} {
		if set {
			payloads++
		}
	}
	switch {
	case !rfc3339(c.At) || c.Superseded || payloads > 1:
	case ref != nil && c.Kind == canon.ChangeEvent && c.Event != nil:
		tag = recEvent
	case ref != nil && c.Kind == canon.ChangeProfile && ref.K == "":
		tag = recProfile
	case ref == nil && c.Kind == canon.ChangeMapping && c.Mapping != nil && c.Mapping.ProfileID != "":
		// An identifier's removal (no profile) stays JSON: TrimLog finds
		// erasures by their JSON.
		tag = recMapping
	}
	if tag == recJSON {
		v, err := marshal(c)
		if err != nil {
			return err
		}
		w.head(recJSON, 0, c)
		w.b = appendBytes(w.b, v)
		return nil
	}
	var flags byte
	if c.Restricted {
		flags |= flagRestricted
	}
	switch tag {
	case recEvent:
		if c.Event.Refiled {
			flags |= flagRefiled
		}
		anchorFile := isKeyOf(ref.K, c.Event.Anchor)
		if anchorFile {
			flags |= flagAnchorFile
		}
		// An event that opened its group is found under its own seq.
		grouped := ref.G != 0 && ref.G != ref.N
		if grouped {
			flags |= flagGrouped
		}
		w.head(tag, flags, c)
		w.b = appendString(w.b, c.Event.ProfileID)
		w.b = appendIdentifier(w.b, c.Event.Anchor)
		if !anchorFile {
			w.b = appendString(w.b, ref.K)
		}
		w.b = binary.AppendUvarint(w.b, ref.N)
		if grouped {
			w.b = binary.AppendUvarint(w.b, ref.N-ref.G)
		}
	case recProfile:
		w.head(tag, flags, c)
		w.b = binary.AppendUvarint(w.b, ref.C)
		w.b = binary.AppendUvarint(w.b, ref.V)
	case recMapping:
		w.head(tag, flags, c)
		w.b = appendIdentifier(w.b, c.Mapping.Identifier)
		w.b = appendString(w.b, c.Mapping.ProfileID)
		w.b = binary.AppendUvarint(w.b, c.Mapping.Version)
	}
	return nil
}

// isKeyOf reports whether k is id.Key(), without building it.
func isKeyOf(k string, id canon.Identifier) bool {
	t := string(id.Type)
	return len(k) == len(t)+1+len(id.Value) && k[:len(t)] == t && k[len(t)] == 0 && k[len(t)+1:] == id.Value
}

// head writes a record's tag, flags, seq and (when it differs from the
// record before's) commit time. A JSON record carries its own fields.
func (w *pageWriter) head(tag, flags byte, c *canon.Change) {
	if tag == recJSON {
		w.b = append(w.b, recJSON)
		return
	}
	same := w.any && c.At.Equal(w.prevAt) && c.At.Location() == w.prevAt.Location()
	if same {
		flags |= flagSameAt
	}
	w.b = append(w.b, tag, flags)
	w.b = binary.AppendUvarint(w.b, c.Seq-w.prev)
	if !same {
		n := len(w.b)
		w.b = append(w.b, 0) // the length, below: RFC 3339 is at most 35 bytes
		w.b = c.At.AppendFormat(w.b, time.RFC3339Nano)
		w.b[n] = byte(len(w.b) - n - 1)
		w.prevAt, w.any = c.At, true
	}
	w.prev = c.Seq
}

// decodeBinaryPage reads a page of the binary layout whose key says it
// holds the records first to last: a page that ends early (it has no
// terminator) or holds others is an error.
func decodeBinaryPage(b []byte, first, last uint64) ([]pageChange, error) {
	page, err := decodeRecords(b, min(last-first+1, uint64(len(b))))
	if err != nil {
		return nil, err
	}
	if len(page) == 0 || page[0].Seq != first || page[len(page)-1].Seq != last {
		return nil, fmt.Errorf("store: log page %d-%d holds %d records that do not span it", first, last, len(page))
	}
	return page, nil
}

// decodeRecords reads the records of a binary page, about n of them.
func decodeRecords(b []byte, n uint64) ([]pageChange, error) {
	d := decoder{b: b[1:]}
	page := make([]pageChange, 0, n)
	var prev uint64
	var at time.Time
	haveAt := false
	for len(d.b) > 0 && !d.bad {
		tag := d.b[0]
		d.b = d.b[1:]
		if tag == recJSON {
			raw := d.bytes()
			var pc pageChange
			if d.bad {
				break
			}
			if err := canon.Decode(raw, &pc); err != nil {
				return nil, fmt.Errorf("store: log page record: %w", err)
			}
			page = append(page, pc)
			continue
		}
		if len(d.b) == 0 {
			d.bad = true
			break
		}
		flags := d.b[0]
		d.b = d.b[1:]
		seq := prev + d.uvarint()
		prev = seq
		if flags&flagSameAt == 0 {
			if err := at.UnmarshalText(d.bytes()); err != nil && !d.bad {
				return nil, fmt.Errorf("store: log page record %d: %w", seq, err)
			}
			haveAt = true
		} else if !haveAt {
			d.bad = true
			break
		}
		pc := pageChange{Change: canon.Change{Seq: seq, At: at, Restricted: flags&flagRestricted != 0}}
		switch tag {
		case recEvent:
			rec := &canon.EventRecord{ProfileID: d.string(), Refiled: flags&flagRefiled != 0}
			rec.Anchor = d.identifier()
			ref := &pageRef{}
			if flags&flagAnchorFile != 0 {
				ref.K = rec.Anchor.Key()
			} else {
				ref.K = d.string()
			}
			ref.N = d.uvarint()
			if flags&flagGrouped != 0 {
				// Written only for an event that did not open its group.
				if back := d.uvarint(); back > 0 && back < ref.N {
					ref.G = ref.N - back
				} else {
					d.bad = true
				}
			}
			pc.Kind, pc.Event, pc.Ref = canon.ChangeEvent, rec, ref
		case recProfile:
			pc.Kind, pc.Ref = canon.ChangeProfile, &pageRef{C: d.uvarint(), V: d.uvarint()}
		case recMapping:
			m := &canon.Mapping{Identifier: d.identifier()}
			m.ProfileID, m.Version = d.string(), d.uvarint()
			pc.Kind, pc.Mapping = canon.ChangeMapping, m
		default:
			return nil, fmt.Errorf("store: log page record %d: unknown tag %d", seq, tag)
		}
		page = append(page, pc)
	}
	if d.bad {
		return nil, fmt.Errorf("store: log page cut short after %d records", len(page))
	}
	return page, nil
}

// bytes reads a length-prefixed field without copying it.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
