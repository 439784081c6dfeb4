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
	lim = lim.withDefaults()
	if len(raw) > lim.MaxBytes {
		return nil, Rejectf(ch, ReasonOversize, "", "message is larger than %d bytes", lim.MaxBytes)
	}
	if !utf8.Valid(raw) {
		return nil, Rejectf(ch, ReasonInvalidUTF8, "", "message is not valid UTF-8")
	}
	body := bytes.TrimLeft(raw, " \t\r\n")
	if len(body) == 0 || body[0] != '{' || tooDeep(body, lim.MaxDepth) {
		// The rare paths: let the (iterative, allocation-light) validator
		// decide between invalid JSON and the structural reasons.
		switch {
		case !json.Valid(body):
			return nil, Rejectf(ch, ReasonInvalidJSON, "", "message is not valid JSON")
		case body[0] != '{':
			return nil, Rejectf(ch, ReasonNotObject, "", "message must be a JSON object")
		default:
			return nil, Rejectf(ch, ReasonTooDeep, "", "message nests deeper than %d levels", lim.MaxDepth)
		}
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, Rejectf(ch, ReasonInvalidJSON, "", "message is not valid JSON")
	}
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, Rejectf(ch, ReasonInvalidJSON, "", "message has data after its JSON object")
	}
	return &Object{st: &state{ch: ch}, m: m}, nil
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
