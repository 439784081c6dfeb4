package store

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spinecdp/spine/schemas/canon"
)

// The JSON encoders of state format 2, which filed events as JSON and
// wrote change-log pages as JSON arrays: tests write such state to check
// that this build still reads it, and take the JSON as the reference the
// binary forms must read back as.

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
			b = appendIdentifierJSON(b, o.Identifier, `,"trust":`)
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
		b = appendIdentifierJSON(b, p.pair.A, "")
		b = append(b, `},"b":`...)
		b = appendIdentifierJSON(b, p.pair.B, "")
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

// appendIdentifierJSON writes {"type":..,"value":.. and then more (a member
// of the caller's, with its key), leaving the object open.
func appendIdentifierJSON(b []byte, id canon.Identifier, more string) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, string(id.Type))
	b = append(b, `,"value":`...)
	b = appendJSONString(b, id.Value)
	return append(b, more...)
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
		if ref.G != 0 && ref.G != ref.N { // an event that opened its group is found by its seq
			dst = append(dst, `,"g":`...)
			dst = strconv.AppendUint(dst, ref.G, 10)
		}
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
