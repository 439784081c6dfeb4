package canon

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Money is an exact amount in one currency, held in millionths of the
// currency unit so that sums never drift the way floats do. Amounts in
// different currencies are never added together.
type Money struct {
	Currency string `json:"currency"` // ISO 4217, upper case
	Micros   int64  `json:"micros"`
}

// MaxMicros bounds one amount (one trillion units), so sums of many amounts
// stay far from overflow.
const MaxMicros = 1_000_000_000_000 * 1_000_000

// Validate checks the currency code and the range.
func (m *Money) Validate() error {
	if len(m.Currency) != 3 || strings.ToUpper(m.Currency) != m.Currency {
		return &FieldError{Field: "currency", Rule: "must be a 3-letter ISO 4217 code"}
	}
	for _, r := range m.Currency {
		if r < 'A' || r > 'Z' {
			return &FieldError{Field: "currency", Rule: "must be a 3-letter ISO 4217 code"}
		}
	}
	if m.Micros < 0 || m.Micros > MaxMicros {
		return &FieldError{Field: "amount", Rule: "must be between 0 and 10^12"}
	}
	return nil
}

// ParseDecimal parses a JSON number or numeric string ("12.5", "1e2") into
// micros without going through a float, so "0.1" is exactly 100000.
// More than six decimals are rounded half away from zero.
func ParseDecimal(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 30 || e < -30 {
			return 0, false
		}
		exp = e
		s = s[:i]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, false
	}
	digits := intPart + frac
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	// value = digits * 10^(exp - len(frac)); we want value * 10^6.
	shift := exp - len(frac) + 6
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, true
	}
	var round bool
	if shift < 0 {
		if -shift > len(digits) {
			return 0, true
		}
		cut := len(digits) + shift
		round = digits[cut] >= '5'
		digits = digits[:cut]
		shift = 0
	}
	if len(digits)+shift > 18 {
		return 0, false
	}
	var v int64
	for _, r := range digits {
		v = v*10 + int64(r-'0')
	}
	for range shift {
		v *= 10
	}
	if round {
		v++
	}
	if neg {
		v = -v
	}
	return v, true
}

// FormatMicros renders micros as a decimal with no trailing zeros ("12.5").
func FormatMicros(v int64) string { return string(AppendMicros(nil, v)) }

// AppendMicros appends FormatMicros(v) to b, for encoders that write into a
// buffer of their own.
func AppendMicros(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/1_000_000, 10)
	if f := v % 1_000_000; f != 0 {
		// Six digits with their leading zeros: those of f + 1,000,000
		// after its first.
		var buf [8]byte
		digits := strconv.AppendInt(buf[:0], f+1_000_000, 10)[1:]
		for digits[len(digits)-1] == '0' {
			digits = digits[:len(digits)-1]
		}
		b = append(append(b, '.'), digits...)
	}
	return b
}

// Amounts maps currency to micros. It marshals as {"EUR": 12.5}, exact.
type Amounts map[string]int64

// MarshalJSON writes each amount as an exact JSON number.
func (a Amounts) MarshalJSON() ([]byte, error) {
	m := make(map[string]json.Number, len(a))
	for k, v := range a {
		m[k] = json.Number(FormatMicros(v))
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (a *Amounts) UnmarshalJSON(b []byte) error {
	var m map[string]json.Number
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := make(Amounts, len(m))
	for k, v := range m {
		micros, ok := ParseDecimal(string(v))
		if !ok {
			return &FieldError{Field: "amount", Rule: "not a decimal number"}
		}
		out[k] = micros
	}
	*a = out
	return nil
}
