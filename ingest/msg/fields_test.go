package msg

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

// checkFields fails t unless the top-level Object a decoder gets (members
// kept as a list, see parseFields) answers exactly as the one Parse builds
// over a map: the same reject, then, for reads chosen by sel, the same
// values, the same first problem, the same Rest and the same Map.
func checkFields(t *testing.T, b []byte, sel []byte) {
	t.Helper()
	for _, lim := range []Limits{{}, {MaxDepth: 2}} {
		got, gotErr := parse(canon.Web, b, lim, true)
		want, wantErr := Parse(canon.Web, b, lim)
		if !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("parse(%q, %+v) = %v, want %v", b, lim, gotErr, wantErr)
		}
		if gotErr != nil {
			continue
		}
		keys := slices.Sorted(maps.Keys(want.m))
		keys = append(keys, "absent")
		if got.Present() != want.Present() {
			t.Fatalf("parse(%q).Present() = %v, want %v", b, got.Present(), want.Present())
		}
		for _, k := range keys {
			if got.Has(k) != want.Has(k) || got.IsObj(k) != want.IsObj(k) {
				t.Fatalf("parse(%q): Has/IsObj(%q) = %v/%v, want %v/%v", b, k,
					got.Has(k), got.IsObj(k), want.Has(k), want.IsObj(k))
			}
		}
		for i, k := range keys {
			s := byte(i)
			if i < len(sel) {
				s = sel[i]
			}
			if g, w := readAs(got, k, s), readAs(want, k, s); g != w {
				t.Fatalf("parse(%q): read %d of %q = %s, want %s", b, s%10, k, g, w)
			}
		}
		if !reflect.DeepEqual(got.Err(), want.Err()) {
			t.Fatalf("parse(%q): Err = %v, want %v", b, got.Err(), want.Err())
		}
		if g, w := got.Rest(), want.Rest(); !reflect.DeepEqual(g, w) {
			t.Fatalf("parse(%q): Rest = %#v, want %#v", b, g, w)
		}
		// Where the rest holds both k and _k, which one KeepField renames
		// depends on the order it meets them: compare only the others.
		if rest := want.Rest(); !slices.ContainsFunc(slices.Collect(maps.Keys(rest)), func(k string) bool {
			return strings.HasPrefix(k, "_")
		}) {
			props := map[string]any{"a": "p", "_a": "q"}
			if g, w := got.keepRest(maps.Clone(props)), Keep(maps.Clone(props), rest); !reflect.DeepEqual(g, w) {
				t.Fatalf("parse(%q): keepRest = %#v, want %#v", b, g, w)
			}
		}
		if g, w := got.Map(), want.Map(); !reflect.DeepEqual(g, w) {
			t.Fatalf("parse(%q): Map = %#v, want %#v", b, g, w)
		}
		if got.Rest() != nil {
			t.Fatalf("parse(%q): Rest after Map = %#v, want nil", b, got.Rest())
		}
	}
}

// readAs reads key of o with the reader sel picks (some not at all, so
// that Rest has fields left) and prints what it returned.
func readAs(o *Object, key string, sel byte) string {
	switch sel % 10 {
	case 0:
		return fmt.Sprintf("%q", o.Str(key))
	case 1:
		id, ok := o.ID(key)
		return fmt.Sprintf("%q %v", id, ok)
	case 2:
		b, ok := o.Bool(key)
		return fmt.Sprint(b, ok)
	case 3:
		n, ok := o.Int(key)
		return fmt.Sprint(n, ok)
	case 4:
		n, ok := o.Decimal(key)
		return fmt.Sprint(n, ok)
	case 5:
		c := o.Obj(key)
		return fmt.Sprintf("%v %#v", c.Present(), c.Map())
	case 6:
		return fmt.Sprintf("%#v", o.Arr(key))
	case 7:
		return fmt.Sprintf("%q", o.ReqID(key))
	default:
		return "" // left unread
	}
}

func TestFieldsMatchMap(t *testing.T) {
	many := make([]string, 0, maxFields+2)
	for i := range cap(many) {
		many = append(many, fmt.Sprintf(`"k%d":"v%d"`, i, i))
	}
	inputs := append(slices.Clone(tricky),
		`{"s":"x","n":12,"b":true,"z":null,"o":{"k":"v"},"a":[1,"x"],"m":"1.5","e":"\u00e9\n"}`,
		`{"a":"x","a":null}`, `{"a":null,"a":"x"}`, `{"a":"x","b":"y","a":"z"}`, `{"a":1,"a":"1"}`,
		`{"a":"1","a":{"b":"c"}}`, `{"id":" 7 ","id":"8"}`, `{"":"e","":""}`,
		"{"+strings.Join(many[:maxFields], ",")+"}",
		"{"+strings.Join(many, ",")+"}",
		"{"+strings.Join(many, ",")+`,"k0":"again"}`,
	)
	for _, in := range inputs {
		for sel := range byte(10) {
			checkFields(t, []byte(in), []byte{sel, sel + 1, sel + 2, sel + 3, sel + 4, sel + 5, sel + 6, sel + 7})
		}
	}
}

// FuzzFieldsMatchMap checks the decoders' top-level Object against Parse's
// (see checkFields); sel picks the reader of each key.
func FuzzFieldsMatchMap(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sel := b
		if len(sel) > 64 {
			sel = sel[len(sel)-64:]
		}
		checkFields(t, b, sel)
	})
}
