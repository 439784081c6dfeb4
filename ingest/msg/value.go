package msg

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Bounds on event times: anything outside is a broken clock or a unit
// mistake (seconds read as milliseconds), not a real event.
const (
	minYear = 1970
	maxYear = 2100
)

// Time returns the required RFC 3339 timestamp at key in UTC. Fractional
// seconds are accepted (RFC3339Nano); other layouts and years outside
// 1970..2100 are refused with bad_timestamp.
func (o *Object) Time(key string) time.Time {
	s := o.Str(key)
	if s == "" {
		if o.st.err == nil {
			o.Fail(ReasonMissingField, key, "is required")
		}
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		o.Fail(ReasonBadTimestamp, key, "must be an RFC 3339 timestamp")
		return time.Time{}
	}
	t = t.UTC()
	if y := t.Year(); y < minYear || y > maxYear {
		o.Fail(ReasonBadTimestamp, key, "must be between 1970 and 2100")
		return time.Time{}
	}
	return t
}

// Decimal returns the amount at key in micros (millionths), read exactly
// from a JSON number or a numeric string; ok is false when absent. Negative
// amounts and amounts above canon.MaxMicros are out_of_range.
func (o *Object) Decimal(key string) (micros int64, ok bool) {
	v, ok := o.get(key)
	if !ok {
		return 0, false
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	case *string:
		s = *v
	default:
		o.Fail(ReasonWrongType, key, "must be a number or a numeric string")
		return 0, false
	}
	micros, ok = canon.ParseDecimal(s)
	switch {
	case !ok && isNumeric(s):
		o.Fail(ReasonOutOfRange, key, "is too large")
	case !ok:
		o.Fail(ReasonInvalidValue, key, "must be a decimal number")
	case micros < 0:
		o.Fail(ReasonOutOfRange, key, "must not be negative")
	case micros > canon.MaxMicros:
		o.Fail(ReasonOutOfRange, key, "is too large")
	default:
		return micros, true
	}
	return 0, false
}

// isNumeric reports whether s has the shape of a number, so that a number
// ParseDecimal refuses is reported as too large rather than malformed.
func isNumeric(s string) bool {
	s = strings.TrimSpace(s)
	_, err := json.Number(s).Float64()
	return err == nil
}

// Currency returns the ISO 4217 code at key, upper-cased. When absent it
// returns def, or refuses with missing_field if def is "".
func (o *Object) Currency(key, def string) string {
	c := strings.ToUpper(strings.TrimSpace(o.Str(key)))
	if c == "" {
		if def == "" && o.st.err == nil {
			o.Fail(ReasonMissingField, key, "is required")
		}
		return def
	}
	if len(c) != 3 || strings.ContainsFunc(c, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		o.Fail(ReasonInvalidValue, key, "must be a 3-letter ISO 4217 code")
		return ""
	}
	return c
}

// Money reads a required amount at amountKey and its currency at
// currencyKey (def when absent; required when def is ""). It returns nil
// when the message is already refused.
func (o *Object) Money(amountKey, currencyKey, def string) *canon.Money {
	micros, ok := o.Decimal(amountKey)
	if !ok && o.st.err == nil {
		o.Fail(ReasonMissingField, amountKey, "is required")
	}
	cur := o.Currency(currencyKey, def)
	if o.st.err != nil {
		return nil
	}
	return &canon.Money{Currency: cur, Micros: micros}
}
