package store

import (
	stdjson "encoding/json"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// Hand-written encoders of the profile state and of property maps, for
// which marshal (goccy, by reflection) took about 8% of all CPU. Each
// writes exactly marshal's bytes but for the order of the members of
// maps, which marshal leaves unspecified too; TestAppendProperty and
// FuzzAppendAny hold them equal, and TestAppendKnowsEveryField fails when
// a struct they write gains a member. Where marshal would fail, or for a
// value they do not know, they report false and the caller uses marshal,
// so errors stay marshal's.

// maxAnyDepth bounds the nesting appendAny writes itself. Deeper values
// (far beyond what messages carry) go to marshal, which also reports a
// cycle; it keeps a cyclic value from recursing without end here.
const maxAnyDepth = 1000

// appendAny appends v's JSON as marshal writes it, for the values JSON
// decoders build: map[string]any, []any, string, *string, json.Number,
// bool, nil, float64, int, int64 and map[string]string. ok is false, and
// dst returned as it was, for any other type or a value marshal refuses
// (NaN, an invalid json.Number): the caller then uses marshal.
func appendAny(dst []byte, v any) ([]byte, bool) {
	b, ok := appendAnyAt(dst, v, 0)
	if !ok {
		return dst, false
	}
	return b, true
}

// appendAnyAt is appendAny for a value nested depth levels deep.
func appendAnyAt(b []byte, v any, depth int) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendMarshalString(b, v), true
	case *string:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendMarshalString(b, *v), true
	case stdjson.Number: // also goccy's json.Number, an alias of it
		return appendNumber(b, v)
	case bool:
		return strconv.AppendBool(b, v), true
	case float64:
		return appendFloat(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case map[string]any:
		return appendAnyMap(b, v, depth+1)
	case []any:
		return appendAnySlice(b, v, depth+1)
	case map[string]string:
		return appendObject(b, v, appendStringValue[string])
	}
	return b, false
}

// appendAnyMap writes m as a JSON object (null when nil) at nesting depth.
func appendAnyMap(b []byte, m map[string]any, depth int) ([]byte, bool) {
	if m != nil && depth > maxAnyDepth {
		return b, false
	}
	return appendObject(b, m, func(b []byte, v any) ([]byte, bool) { return appendAnyAt(b, v, depth) })
}

// appendAnySlice writes s as a JSON array (null when nil) at nesting depth.
func appendAnySlice(b []byte, s []any, depth int) ([]byte, bool) {
	if s != nil && depth > maxAnyDepth {
		return b, false
	}
	return appendArray(b, s, func(b []byte, v any) ([]byte, bool) { return appendAnyAt(b, v, depth) })
}

// appendOrMarshal appends v's JSON as enc writes it or, when enc cannot,
// as marshal does, returning marshal's error.
func appendOrMarshal[T any](dst []byte, v T, enc func([]byte, T) ([]byte, bool)) ([]byte, error) {
	if b, ok := enc(dst, v); ok {
		return b, nil
	}
	m, err := marshal(v)
	return append(dst, m...), err
}

// appendAnyObject is appendAny for a map of any, for appendOrMarshal.
func appendAnyObject(dst []byte, m map[string]any) ([]byte, bool) { return appendAny(dst, m) }

// jsonScratch holds the buffers encodeState and EncodeEvent encode into
// before copying out exact-size results: those are kept (Badger's batch,
// the change window, the cache), and a grown buffer's spare capacity
// would be kept with them.
var jsonScratch = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

// maxJSONScratch is the largest buffer jsonScratch keeps, so that one huge
// profile does not pin its buffer.
const maxJSONScratch = 64 << 10

// putJSONScratch returns a buffer of jsonScratch.
func putJSONScratch(p *[]byte) {
	if cap(*p) > maxJSONScratch {
		return
	}
	*p = (*p)[:0]
	jsonScratch.Put(p)
}

// appendProfile appends p's JSON as marshal writes it (canon.Profile's
// members and tags). ok is false, with b's tail undefined, for a profile
// marshal refuses or whose traits appendAny does not write.
func appendProfile(b []byte, p *canon.Profile) (_ []byte, ok bool) {
	b = append(b, `{"profile_id":`...)
	b = appendMarshalString(b, p.ID)
	b = append(b, `,"identity_level":`...)
	b = appendMarshalString(b, string(p.Level))
	b = append(b, `,"identifiers":`...)
	if b, ok = appendArray(b, p.Identifiers, appendProfileIdentifier); !ok {
		return b, false
	}
	b = append(b, `,"traits":`...)
	if b, ok = appendAnyMap(b, p.Traits, 1); !ok {
		return b, false
	}
	if len(p.TraitSources) > 0 {
		b = append(b, `,"trait_sources":`...)
		if b, ok = appendObject(b, p.TraitSources, appendTraitSource); !ok {
			return b, false
		}
	}
	b = append(b, `,"computed":`...)
	if b, ok = appendComputed(b, &p.Computed); !ok {
		return b, false
	}
	b = append(b, `,"consent":`...)
	if b, ok = appendObject(b, p.Consent, appendConsentState); !ok {
		return b, false
	}
	b = appendStrings(b, `,"groups":`, p.Groups)
	b = appendStrings(b, `,"merged_from":`, p.MergedFrom)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, p.Version, 10)
	b = append(b, `,"updated_at":`...)
	if b, ok = appendTime(b, p.UpdatedAt); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendComputed appends c's JSON as marshal writes it.
func appendComputed(b []byte, c *canon.Computed) (_ []byte, ok bool) {
	b = append(b, `{"first_seen":`...)
	if b, ok = appendTime(b, c.FirstSeen); !ok {
		return b, false
	}
	b = append(b, `,"last_seen":`...)
	if b, ok = appendTime(b, c.LastSeen); !ok {
		return b, false
	}
	b = append(b, `,"channels":`...)
	b, _ = appendArray(b, c.Channels, appendStringValue[canon.Channel])
	b = append(b, `,"events_by_channel":`...)
	b, _ = appendObject(b, c.EventsByChannel, appendInt64Value)
	b = append(b, `,"order_count":`...)
	b = strconv.AppendInt(b, c.OrderCount, 10)
	b = append(b, `,"total_spend":`...)
	if b, ok = appendAmounts(b, c.TotalSpend); !ok {
		return b, false
	}
	b = append(b, `,"return_total":`...)
	if b, ok = appendAmounts(b, c.ReturnTotal); !ok {
		return b, false
	}
	b = append(b, `,"refund_count":`...)
	b = strconv.AppendInt(b, c.RefundCount, 10)
	b = append(b, `,"refund_total":`...)
	if b, ok = appendAmounts(b, c.RefundTotal); !ok {
		return b, false
	}
	return appendComputedTail(b, c)
}

// appendComputedTail appends the members of c after refund_total, and the
// closing brace.
func appendComputedTail(b []byte, c *canon.Computed) (_ []byte, ok bool) {
	b = append(b, `,"tickets_opened":`...)
	b = strconv.AppendInt(b, c.TicketsOpened, 10)
	b = append(b, `,"avg_csat":`...)
	if b, ok = appendFloat(b, c.AvgCSAT); !ok {
		return b, false
	}
	b = append(b, `,"csat_sum":`...)
	b = strconv.AppendInt(b, c.CSATSum, 10)
	b = append(b, `,"csat_count":`...)
	b = strconv.AppendInt(b, c.CSATCount, 10)
	b = append(b, `,"devices":`...)
	b = strconv.AppendInt(b, int64(c.Devices), 10)
	b = append(b, `,"last_channel":`...)
	b = appendMarshalString(b, string(c.LastChannel))
	b = append(b, `,"lifecycle_stage":`...)
	b = appendMarshalString(b, c.LifecycleStage)
	if len(c.Lifecycle) > 0 {
		b = append(b, `,"lifecycle":`...)
		if b, ok = appendObject(b, c.Lifecycle, appendTime); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendProfileIdentifier appends id's JSON as marshal writes it.
func appendProfileIdentifier(b []byte, id canon.ProfileIdentifier) ([]byte, bool) {
	b = append(b, `{"type":`...)
	b = appendMarshalString(b, string(id.Type))
	b = append(b, `,"value":`...)
	b = appendMarshalString(b, id.Value)
	b = append(b, `,"trust":`...)
	b = appendTrust(b, id.Trust)
	b = append(b, `,"first_seen":`...)
	b, ok := appendTime(b, id.FirstSeen)
	return append(b, '}'), ok
}

// appendTraitSource appends s's JSON as marshal writes it.
func appendTraitSource(b []byte, s canon.TraitSource) ([]byte, bool) {
	b = append(b, `{"time":`...)
	b, ok := appendTime(b, s.Time)
	b = append(b, `,"channel":`...)
	b = appendMarshalString(b, string(s.Channel))
	if s.Verified {
		b = append(b, `,"verified":true`...)
	}
	return append(b, '}'), ok
}

// appendConsentState appends c's JSON as marshal writes it.
func appendConsentState(b []byte, c canon.ConsentState) ([]byte, bool) {
	b = append(b, `{"value":`...)
	b = strconv.AppendBool(b, c.Value)
	b = append(b, `,"time":`...)
	b, ok := appendTime(b, c.Time)
	b = append(b, `,"source":`...)
	b = appendMarshalString(b, c.Source)
	return append(b, '}'), ok
}

// appendInternal appends in's JSON as marshal writes it (profile.Internal's
// members and tags). ok is false, with b's tail undefined, for a state
// marshal refuses.
func appendInternal(b []byte, in *profile.Internal) (_ []byte, ok bool) {
	b = append(b, `{"comp":`...)
	b = strconv.AppendUint(b, in.Comp, 10)
	b = append(b, `,"created":`...)
	b = strconv.AppendUint(b, in.Created, 10)
	if len(in.FirstOrders) > 0 {
		b = append(b, `,"first_orders":`...)
		if b, ok = appendArray(b, in.FirstOrders, appendTime); !ok {
			return b, false
		}
	}
	if len(in.Conflicts) > 0 {
		b = append(b, `,"conflicts":`...)
		if b, ok = appendArray(b, in.Conflicts, appendLogRecord); !ok {
			return b, false
		}
	}
	if in.Founder != "" {
		b = append(b, `,"founder":`...)
		b = appendMarshalString(b, in.Founder)
	}
	if len(in.Founders) > 0 {
		b = append(b, `,"founders":`...)
		b, _ = appendObject(b, in.Founders, appendStringValue[string])
	}
	return append(b, '}'), true
}

// appendLogRecord appends r's JSON as marshal writes it.
func appendLogRecord(b []byte, r canon.LogRecord) ([]byte, bool) {
	b = append(b, `{"type":`...)
	b = appendMarshalString(b, string(r.Type))
	b = append(b, `,"profile_id":`...)
	b = appendMarshalString(b, r.ProfileID)
	b = appendStrings(b, `,"others":`, r.Others)
	if id := r.Identifier; id != nil {
		b = append(b, `,"identifier":{"type":`...)
		b = appendMarshalString(b, string(id.Type))
		b = append(b, `,"value":`...)
		b = appendMarshalString(b, id.Value)
		b = append(b, '}')
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendMarshalString(b, r.Reason)
	}
	ok := true
	if r.Evidence != nil {
		b = append(b, `,"evidence":`...)
		b, ok = appendEvidenceJSON(b, r.Evidence)
	}
	return append(b, '}'), ok
}

// appendEvidenceJSON appends ev's JSON as marshal writes it (not the
// binary form of appendEvidence, which the link entries use).
func appendEvidenceJSON(b []byte, ev *canon.Evidence) ([]byte, bool) {
	b = append(b, `{"channel":`...)
	b = appendMarshalString(b, string(ev.Channel))
	b = append(b, `,"message_id":`...)
	b = appendMarshalString(b, ev.MessageID)
	b = append(b, `,"time":`...)
	b, ok := appendTime(b, ev.Time)
	b = append(b, `,"trust":`...)
	b = appendTrust(b, ev.Trust)
	return append(b, '}'), ok
}

// appendArray writes s as a JSON array, null when nil (as marshal writes
// a slice), each element by value.
func appendArray[V any](b []byte, s []V, value func([]byte, V) ([]byte, bool)) ([]byte, bool) {
	if s == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = value(b, v); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// appendObject writes m as a JSON object, members in any order, null when
// nil (as marshal writes a map), each value by value.
func appendObject[K ~string, V any](b []byte, m map[K]V, value func([]byte, V) ([]byte, bool)) ([]byte, bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendMarshalString(b, string(k))
		b = append(b, ':')
		var ok bool
		if b, ok = value(b, v); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendStrings writes key and s as a JSON array, or nothing when s is
// empty (omitempty).
func appendStrings(b []byte, key string, s []string) []byte {
	if len(s) == 0 {
		return b
	}
	b = append(b, key...)
	b, _ = appendArray(b, s, appendStringValue[string])
	return b
}

// appendStringValue is appendMarshalString as a value writer of
// appendArray and appendObject.
func appendStringValue[S ~string](b []byte, s S) ([]byte, bool) {
	return appendMarshalString(b, string(s)), true
}

// appendInt64Value is strconv.AppendInt as a value writer of appendObject.
func appendInt64Value(b []byte, v int64) ([]byte, bool) { return strconv.AppendInt(b, v, 10), true }

// appendTrust writes t as its MarshalText does, as a string.
func appendTrust(b []byte, t canon.Trust) []byte { return appendMarshalString(b, t.String()) }

// appendTime writes t as time.Time's MarshalJSON does; ok is false for a
// time it refuses (see rfc3339). It checks the written bytes as
// MarshalJSON does, which is cheaper than rfc3339's second and third
// date computations (times are a fifth of a profile's encoding).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	start := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	if b[start+len("2006")] != '-' { // the year is not four digits
		return b, false
	}
	if n := len(b); b[n-1] != 'Z' {
		// ±hh:mm: hh above 23, or more digits, is no RFC 3339 offset
		if c := b[n-len("-07:00")]; '0' <= c && c <= '9' || (b[n-5]-'0')*10+(b[n-4]-'0') >= 24 {
			return b, false
		}
	}
	return append(b, '"'), true
}

// appendAmounts writes a as canon.Amounts' MarshalJSON does, but for the
// order of its members: {} for nil too, since marshal calls MarshalJSON
// on a nil map.
func appendAmounts(b []byte, a canon.Amounts) ([]byte, bool) {
	if a == nil {
		return append(b, "{}"...), true
	}
	return appendObject(b, a, appendMicros)
}

// appendMicros writes v as canon.FormatMicros does. ok is false for
// math.MinInt64, which FormatMicros writes as no number ("--9…"), so
// Amounts' MarshalJSON fails for it.
func appendMicros(b []byte, v int64) ([]byte, bool) {
	if v == math.MinInt64 {
		return b, false
	}
	return canon.AppendMicros(b, v), true
}

// appendFloat writes f as encoding/json (and marshal) does: the shortest
// form, in exponent form below 1e-6 and from 1e21, with a one-digit
// negative exponent not zero-padded. ok is false for NaN and infinities,
// which marshal refuses.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 to e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendNumber writes n as marshal does: as it is, or 0 when empty. ok is
// false for text that is no JSON number, which marshal refuses.
func appendNumber(b []byte, n stdjson.Number) ([]byte, bool) {
	if n == "" {
		return append(b, '0'), true
	}
	if !validNumber(string(n)) {
		return b, false
	}
	return append(b, n...), true
}

// validNumber reports whether s is a JSON number literal.
func validNumber(s string) bool {
	end, ok := canon.JSONNumberEnd(s, 0)
	return ok && end == len(s)
}

// marshalSpecial marks the bytes appendMarshalString looks at: those
// marshal escapes (control characters, quote and backslash, and <, > and
// &: it escapes for HTML, as encoding/json does by default), and every
// byte of a multi-byte sequence, which may be invalid or U+2028/U+2029.
// One table look-up passes the common bytes.
var marshalSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = true
	}
	for c := utf8.RuneSelf; c < len(t); c++ {
		t[c] = true
	}
	return t
}()

// appendMarshalString appends s as a JSON string exactly as marshal writes
// it. It differs from appendJSONString, whose output decodes the same,
// in the bytes: marshal also escapes <, > and & (\u003c), U+2028 and
// U+2029 (\u2028), and writes backspace and form feed as \b and \f.
// Invalid UTF-8 is \ufffd, a byte at a time, in both.
func appendMarshalString(dst []byte, s string) []byte {
	i := plainPrefix(s)
	dst = append(dst, '"')
	dst = append(dst, s[:i]...)
	if i < len(s) {
		dst = appendEscaped(dst, s[i:])
	}
	return append(dst, '"')
}

// plainPrefix returns the length of s's longest prefix that marshal
// copies as it is: most strings are plain through.
func plainPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if anySpecial(s[i : i+8]) {
			break
		}
	}
	if i+8 > len(s) && len(s) >= 8 && !anySpecial(s[len(s)-8:]) {
		return len(s) // the last 8 bytes, which hold the rest, are plain
	}
	for ; i < len(s); i++ {
		if marshalSpecial[s[i]] {
			return i
		}
	}
	return i
}

// appendEscaped appends s, which starts with a byte marked in
// marshalSpecial, as marshal writes a string's bytes.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !marshalSpecial[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = appendEscapedByte(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, "0123456789abcdef"[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// anySpecial reports whether any of the 8 bytes of w is marked in
// marshalSpecial, testing them at once: most strings have none, and a
// byte at a time was a third of encoding a property map.
func anySpecial(w string) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	_ = w[7] // one bounds check for the eight
	x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
	// Each term has a byte's top bit set if some byte is such a byte
	// (x-lsb*n)&^x for one below n, x^lsb*c for one equal to c, x for
	// one from 0x80; bits past the first such byte may be wrong, which
	// does not change whether there is one.
	m := (x - lsb*0x20) &^ x
	m |= zeroByte(x^(lsb*'"')) | zeroByte(x^(lsb*'\\')) | zeroByte(x^(lsb*'<')) | zeroByte(x^(lsb*'>')) | zeroByte(x^(lsb*'&'))
	return (m|x)&msb != 0
}

// zeroByte has a byte's top bit set if x has a zero byte (see anySpecial).
func zeroByte(x uint64) uint64 { return (x - 0x0101010101010101) &^ x }

// appendEscapedByte writes the escape marshal uses for the ASCII byte c.
func appendEscapedByte(dst []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}
