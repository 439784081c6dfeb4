package msg

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/spinecdp/spine/schemas/canon"
)

// Parse checks raw against lim and decodes it into the message's top-level
// Object. The checks run in the order the package doc gives; the first that
// fails is returned as a *Reject.
func Parse(ch canon.Channel, raw []byte, lim Limits) (*Object, error) {
	return parse(ch, raw, lim, false)
}

// parse is Parse; with fields, the top-level Object keeps its members as a
// list (see parseFields) where Parse builds their map. Its readers give
// the same answers either way.
func parse(ch canon.Channel, raw []byte, lim Limits, fields bool) (*Object, error) {
	lim = lim.withDefaults()
	if len(raw) > lim.MaxBytes {
		return nil, Rejectf(ch, ReasonOversize, "", "message is larger than %d bytes", lim.MaxBytes)
	}
	if !utf8.Valid(raw) {
		return nil, Rejectf(ch, ReasonInvalidUTF8, "", "message is not valid UTF-8")
	}
	body := bytes.TrimLeft(raw, " \t\r\n")
	if len(body) == 0 || body[0] != '{' {
		return nil, rejectStructure(ch, body, lim)
	}
	// The parser stops at MaxDepth, so hostile nesting never grows a tree.
	// A message it accepts whole nests no deeper, which is what tooDeep
	// would find; on the other paths tooDeep still decides the reason, so
	// every message keeps the one it always had.
	var (
		list []member
		m    map[string]any
		n    int
		ok   bool
	)
	if fields {
		list, m, n, ok = parseFields(body, lim.MaxDepth, true)
	} else {
		var v any
		if v, n, ok = parseJSON(body, lim.MaxDepth, true); ok {
			m = v.(map[string]any)
		}
	}
	if !ok {
		return nil, rejectStructure(ch, body, lim)
	}
	if len(bytes.TrimLeft(body[n:], " \t\r\n")) != 0 {
		// Brackets after the object count for tooDeep too; such a body
		// has always been plain invalid JSON.
		if tooDeep(body, lim.MaxDepth) {
			return nil, Rejectf(ch, ReasonInvalidJSON, "", "message is not valid JSON")
		}
		return nil, Rejectf(ch, ReasonInvalidJSON, "", "message has data after its JSON object")
	}
	// One allocation for the top Object and the state it shares.
	top := &struct {
		Object
		st state
	}{st: state{ch: ch}}
	top.Object.st, top.m = &top.st, m
	top.st.fields, top.flat = list, list != nil
	return &top.Object, nil
}

// rejectStructure returns the reason of a body that does not parse as a
// JSON object within lim: invalid JSON beats not_object beats too_deep.
func rejectStructure(ch canon.Channel, body []byte, lim Limits) error {
	if len(body) != 0 && body[0] == '{' && !tooDeep(body, lim.MaxDepth) {
		return Rejectf(ch, ReasonInvalidJSON, "", "message is not valid JSON")
	}
	// The rare paths: let the (iterative, allocation-light) validator
	// decide between invalid JSON and the structural reasons.
	switch {
	case !json.Valid(body):
		return Rejectf(ch, ReasonInvalidJSON, "", "message is not valid JSON")
	case body[0] != '{':
		return Rejectf(ch, ReasonNotObject, "", "message must be a JSON object")
	default:
		return Rejectf(ch, ReasonTooDeep, "", "message nests deeper than %d levels", lim.MaxDepth)
	}
}

// tooDeep reports whether b nests objects and arrays deeper than max. It
// counts brackets outside strings and does not validate; Parse validates.
func tooDeep(b []byte, max int) bool {
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped byte; multi-byte escapes hold no quote
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
