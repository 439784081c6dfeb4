package msg

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"sync"
	"unicode/utf8"

	"github.com/spinecdp/spine/schemas/canon"
)

// jsonMaxDepth is encoding/json's nesting limit: input nested deeper is
// invalid there, so it is invalid here too, and it bounds the recursion.
const jsonMaxDepth = 10000

// parser decodes one JSON value into the tree encoding/json builds for an
// `any` with UseNumber: map[string]any, []any, string, json.Number, bool and
// nil. It validates as it goes, by the grammar encoding/json's scanner
// follows, and writes nothing on failure that a caller could see.
type parser struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
	utf8ok   bool // b is known valid UTF-8, so strings need no UTF-8 check

	// Scratch shared by all levels, reused through parserPool: members and
	// elements wait here until their container closes and its size is
	// known, so each map and slice is allocated once at its final size.
	members []member
	elems   []any
	buf     []byte   // unescaped string bytes
	strs    []topStr // the top-level object's strings (see parseFields)

	// keys caches object keys, which repeat from message to message, so
	// most keys cost no allocation. It is bounded, two entries a hash
	// (so two keys with one hash both stay): a miss just allocates, and
	// hostile keys cannot grow it.
	keys [1024]string
}

type member struct {
	k string
	v any
}

// topStr is the string value of member i of the top-level object.
type topStr struct {
	i int
	s string
}

var parserPool = sync.Pool{New: func() any { return new(parser) }}

// Scratch larger than this is dropped rather than pooled, so one huge
// message does not pin its buffers.
const maxPooledScratch = 1 << 12

// parseJSON decodes the JSON value at the start of b (no leading
// whitespace) nested at most maxDepth deep (capped at jsonMaxDepth). n is
// the offset just past the value; what follows is the caller's business.
// utf8ok says b is known valid UTF-8.
func parseJSON(b []byte, maxDepth int, utf8ok bool) (v any, n int, ok bool) {
	p := parserPool.Get().(*parser)
	p.b, p.i, p.depth, p.maxDepth, p.utf8ok = b, 0, 0, min(maxDepth, jsonMaxDepth), utf8ok
	v, ok = p.value()
	n = p.i
	p.release()
	if !ok {
		return nil, 0, false
	}
	return v, n, true
}

// release drops every reference into the message before pooling p.
func (p *parser) release() {
	p.b = nil
	clear(p.members)
	clear(p.elems)
	clear(p.strs)
	p.members, p.elems, p.buf, p.strs = p.members[:0], p.elems[:0], p.buf[:0], p.strs[:0]
	if cap(p.members) > maxPooledScratch || cap(p.elems) > maxPooledScratch || cap(p.buf) > maxPooledScratch ||
		cap(p.strs) > maxPooledScratch {
		return
	}
	parserPool.Put(p)
}

func (p *parser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value decodes the value at p.i, which is not whitespace.
func (p *parser) value() (any, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; c {
	case '{':
		m, ok := p.object()
		if !ok {
			return nil, false
		}
		return m, true
	case '[':
		a, ok := p.array()
		if !ok {
			return nil, false
		}
		return a, true
	case '"':
		s, ok := p.str(false)
		if !ok {
			return nil, false
		}
		return s, true
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			num, ok := p.number()
			if !ok {
				return nil, false
			}
			if len(num) == 1 {
				return digitNumbers[num[0]-'0'], true
			}
			return num, true
		}
		return nil, false
	}
}

func (p *parser) literal(lit string) bool {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// open enters the object or array at p.i (at its opening bracket), within
// the depth limit. empty reports that its closing bracket, end, came next
// and was consumed: the value is complete.
func (p *parser) open(end byte) (empty, ok bool) {
	p.depth++
	if p.depth > p.maxDepth {
		return false, false
	}
	p.i++
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == end {
		p.i++
		p.depth--
		return true, true
	}
	return false, true
}

// object decodes the object at p.i (at its '{').
func (p *parser) object() (map[string]any, bool) {
	start := len(p.members)
	if !p.objectMembers(false) {
		return nil, false
	}
	ms := p.members[start:]
	m := make(map[string]any, len(ms))
	for _, e := range ms {
		m[e.k] = e.v // a repeated key: the last wins, as in encoding/json
	}
	clear(ms)
	p.members = p.members[:start]
	return m, true
}

// objectMembers decodes the members of the object at p.i (at its '{') onto
// p.members, in message order. With top, a string value goes to p.strs
// instead, and its member's value is left nil (see parseFields).
func (p *parser) objectMembers(top bool) bool {
	switch empty, ok := p.open('}'); {
	case !ok:
		return false
	case empty:
		return true
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		k, ok := p.str(true)
		if !ok {
			return false
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.skipSpace()
		var v any
		if top && p.i < len(p.b) && p.b[p.i] == '"' {
			var s string
			if s, ok = p.str(false); ok {
				p.strs = append(p.strs, topStr{len(p.members), s})
			}
		} else {
			v, ok = p.value()
		}
		if !ok {
			return false
		}
		p.members = append(p.members, member{k, v})
		p.skipSpace()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.skipSpace()
		case '}':
			p.i++
			p.depth--
			return true
		default:
			return false
		}
	}
}

// maxFields is the most members parseFields keeps as a list rather than a
// map: lookups scan the list, which beats hashing for a few dozen keys. It
// is at most 64, as state.read has one bit per member.
const maxFields = 32

// parseFields is parseJSON for b that starts with '{', returning the
// object's members in message order when it has at most maxFields of them
// (fields, never nil), or else its map (m). A decoder reads a message's
// top-level fields once each and never hands out the top-level map, so
// building and hashing it would be wasted work.
//
// The strings of fields come as *string, into one slice: putting each in
// an interface would allocate, and most are read once as strings (ids,
// times, event names) or not kept at all. Object's readers take them as
// strings, and box them only to hand out a map.
func parseFields(b []byte, maxDepth int, utf8ok bool) (fields []member, m map[string]any, n int, ok bool) {
	p := parserPool.Get().(*parser)
	p.b, p.i, p.depth, p.maxDepth, p.utf8ok = b, 0, 0, min(maxDepth, jsonMaxDepth), utf8ok
	if p.objectMembers(true) {
		ok, n = true, p.i
		if ms := p.members; len(ms) <= maxFields {
			fields = make([]member, len(ms))
			copy(fields, ms)
			strs := make([]string, len(p.strs))
			for j, s := range p.strs {
				strs[j] = s.s
				fields[s.i].v = &strs[j]
			}
		} else {
			for _, s := range p.strs {
				ms[s.i].v = s.s
			}
			m = make(map[string]any, len(ms))
			for _, e := range ms {
				m[e.k] = e.v // a repeated key: the last wins, as in encoding/json
			}
		}
	}
	p.release()
	return fields, m, n, ok
}

// array decodes the array at p.i (at its '[').
func (p *parser) array() ([]any, bool) {
	switch empty, ok := p.open(']'); {
	case !ok:
		return nil, false
	case empty:
		return []any{}, true // empty, not nil, as encoding/json decodes it
	}
	start := len(p.elems)
	for {
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		p.elems = append(p.elems, v)
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.skipSpace()
		case ']':
			p.i++
			p.depth--
			es := p.elems[start:]
			a := make([]any, len(es))
			copy(a, es)
			clear(es)
			p.elems = p.elems[:start]
			return a, true
		default:
			return nil, false
		}
	}
}

// digitNumbers holds the numbers 0 to 9 ready as interface values:
// quantities, counts and flags are often one digit, and putting a
// json.Number in an interface allocates.
var digitNumbers = [10]any{
	json.Number("0"), json.Number("1"), json.Number("2"), json.Number("3"), json.Number("4"),
	json.Number("5"), json.Number("6"), json.Number("7"), json.Number("8"), json.Number("9"),
}

// number takes the number at p.i as its literal text.
func (p *parser) number() (json.Number, bool) {
	end, ok := canon.JSONNumberEnd(p.b, p.i)
	if !ok {
		return "", false
	}
	n := json.Number(p.b[p.i:end])
	p.i = end
	return n, true
}

// str decodes the string at p.i (at its '"'); key says it is an object key.
func (p *parser) str(key bool) (string, bool) {
	b := p.b
	start := p.i + 1
	ascii := true
	for i := start; i < len(b); i++ {
		i = plain(b, i)
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			if !ascii && !p.utf8ok && !utf8.Valid(b[start:i]) {
				return p.unescape(start)
			}
			p.i = i + 1
			if key {
				return p.key(b[start:i]), true
			}
			return string(b[start:i]), true
		case c == '\\':
			return p.unescape(start)
		case c < ' ':
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// Bytes with each bit set, for plain.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain returns the index of the first byte from b[i] on that ends a run of
// plain string bytes: a quote, a backslash, a control character or a
// non-ASCII byte; len(b) if none does. It looks at eight bytes at a time,
// which is most of what decoding a message's strings costs.
func plain(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// A byte's top bit in stop is set where x has a quote or a
		// backslash (the byte XOR the character is zero), a byte below
		// 0x20, or a byte of 0x80 or more. Borrows can set it in later
		// bytes too, never in earlier ones, so the lowest set bit marks
		// the first such byte.
		q, bs := x^(lsb*'"'), x^(lsb*'\\')
		stop := ((q - lsb) &^ q) | ((bs - lsb) &^ bs) | ((x - lsb*' ') &^ x) | x
		if stop &= msb; stop != 0 {
			return i + bits.TrailingZeros64(stop)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// maxCachedKey is the longest key kept in parser.keys.
const maxCachedKey = 32

// key returns k as a string, from parser.keys when it holds it.
func (p *parser) key(k []byte) string {
	n := len(k)
	if n == 0 || n > maxCachedKey {
		return string(k)
	}
	h := (uint32(k[0]) | uint32(k[n/2])<<8 | uint32(k[n-1])<<16 | uint32(n)<<24) * 0x9e3779b1 >> 23 << 1
	if s := p.keys[h]; s == string(k) {
		return s
	}
	if s := p.keys[h+1]; s == string(k) {
		return s
	}
	// The newest key takes the first entry, the one it displaces the second.
	s := string(k)
	p.keys[h], p.keys[h+1] = s, p.keys[h]
	return s
}

// unescape decodes the string whose contents start at b[start], by
// encoding/json's rules: \uXXXX surrogate pairs combine, a lone or broken
// surrogate becomes U+FFFD, and so does each byte of invalid UTF-8.
func (p *parser) unescape(start int) (string, bool) {
	b := p.b
	out := p.buf[:0]
	for r := start; r < len(b); {
		switch c := b[r]; {
		case c == '"':
			p.i = r + 1
			p.buf = out
			return string(out), true
		case c < ' ':
			return "", false
		case c == '\\':
			if r+1 >= len(b) {
				return "", false
			}
			switch e := b[r+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				rr := hex4(b, r)
				if rr < 0 {
					return "", false
				}
				r += 6
				if 0xd800 <= rr && rr < 0xdc00 {
					if lo := hex4(b, r); 0xdc00 <= lo && lo < 0xe000 {
						r += 6
						out = utf8.AppendRune(out, 0x10000+(rr-0xd800)<<10+(lo-0xdc00))
						continue
					}
				}
				// A surrogate not in a pair appends U+FFFD.
				out = utf8.AppendRune(out, rr)
				continue
			default:
				return "", false
			}
			r += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			r++
		default:
			rr, size := utf8.DecodeRune(b[r:])
			if rr == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, b[r:r+size]...)
			}
			r += size
		}
	}
	p.buf = out
	return "", false
}

// hex4 returns the code unit of the escape \uXXXX at b[i], or -1.
func hex4(b []byte, i int) rune {
	if len(b)-i < 6 || b[i] != '\\' || b[i+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
