package canon

import "testing"

func TestJSONNumberEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		from int
		end  int
		ok   bool
	}{
		{"0", 0, 1, true},
		{"-0", 0, 2, true},
		{"12", 0, 2, true},
		{"01", 0, 1, true}, // the number "0"; the "1" is the caller's to refuse
		{"1.5e+10,", 0, 7, true},
		{"-1.25E-3}", 0, 8, true},
		{"[3]", 1, 2, true},
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{"+1", 0, 0, false},
		{".5", 0, 0, false},
		{"1.", 0, 0, false},
		{"1.e3", 0, 0, false},
		{"1e", 0, 0, false},
		{"1e+", 0, 0, false},
		{"x", 0, 0, false},
	} {
		end, ok := JSONNumberEnd(tc.in, tc.from)
		if ok != tc.ok || (ok && end != tc.end) {
			t.Errorf("JSONNumberEnd(%q, %d) = %d, %v; want %d, %v", tc.in, tc.from, end, ok, tc.end, tc.ok)
		}
		if bend, bok := JSONNumberEnd([]byte(tc.in), tc.from); bend != end || bok != ok {
			t.Errorf("JSONNumberEnd of bytes %q = %d, %v; of the string %d, %v", tc.in, bend, bok, end, ok)
		}
	}
}
