package canon

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	long := `{"k":"` + strings.Repeat("x", 2000) + `","n":[1e400,2]}`
	for _, tc := range []struct {
		in   string
		want any // nil: an error
	}{
		{`{"a":1e400,"b":0.10000000000000000001}`, map[string]any{"a": json.Number("1e400"), "b": json.Number("0.10000000000000000001")}},
		{`{"a":[1,{"b":-2.5}]}`, map[string]any{"a": []any{json.Number("1"), map[string]any{"b": json.Number("-2.5")}}}},
		{"{\"a\":\"x\"} \t\r\n", map[string]any{"a": "x"}},
		{long, map[string]any{"k": strings.Repeat("x", 2000), "n": []any{json.Number("1e400"), json.Number("2")}}},
		{`{"a":1} {"b":2}`, nil},
		{`{"a":1}x`, nil},
		{`{"a":`, nil},
		{``, nil},
		{`[1]`, nil}, // not a map
	} {
		var got map[string]any
		err := Decode([]byte(tc.in), &got)
		if tc.want == nil {
			if err == nil {
				t.Errorf("Decode(%.40q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Decode(%.40q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
