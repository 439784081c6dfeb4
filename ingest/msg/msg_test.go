package msg

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

func reasonOf(err error) Reason {
	var r *Reject
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

func TestParseOrder(t *testing.T) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	tests := []struct {
		name string
		in   string
		lim  Limits
		want Reason
	}{
		{"ok", `{"a":1}`, Limits{}, ""},
		{"ok leading space", " \n{\"a\":1} \n", Limits{}, ""},
		{"oversize beats everything", "\xff[" + deep, Limits{MaxBytes: 10}, ReasonOversize},
		{"utf8 beats json", "{\xff", Limits{}, ReasonInvalidUTF8},
		{"json beats not_object", `[1,`, Limits{}, ReasonInvalidJSON},
		{"json beats too_deep", `{"a":` + deep, Limits{}, ReasonInvalidJSON},
		{"not object", `"s"`, Limits{}, ReasonNotObject},
		{"null", `null`, Limits{}, ReasonNotObject},
		{"not object beats too_deep", deep, Limits{}, ReasonNotObject},
		{"too deep", `{"a":` + deep + `}`, Limits{}, ReasonTooDeep},
		{"depth 64 ok", `{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, Limits{}, ""},
		{"depth 65", `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, Limits{}, ReasonTooDeep},
		{"custom depth", `{"a":{"b":{}}}`, Limits{MaxDepth: 2}, ReasonTooDeep},
		{"brackets in strings", `{"a":"` + strings.Repeat("[{", 100) + `"}`, Limits{}, ""},
		{"escaped quote in string", `{"a":"\"` + strings.Repeat("[", 100) + `"}`, Limits{}, ""},
		{"trailing", `{} {}`, Limits{}, ReasonInvalidJSON},
		{"empty", ``, Limits{}, ReasonInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(canon.Web, []byte(tt.in), tt.lim)
			if got := reasonOf(err); got != tt.want {
				t.Errorf("Parse(%s) = %v, want %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestReaders(t *testing.T) {
	o, err := Parse(canon.POS, []byte(`{"s":"x","n":12,"f":1.5,"b":true,"z":null,"t":"2025-01-02T03:04:05.5+02:00",
		"m":"0.1","big":1e40,"neg":"-1","o":{"k":"v"},"extra":1}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Str("s") != "x" || o.Str("z") != "" || o.Str("absent") != "" {
		t.Error("Str")
	}
	if id, ok := o.ID("n"); !ok || id != "12" {
		t.Errorf("ID(n) = %q, %v", id, ok)
	}
	if n, ok := o.Int("n"); !ok || n != 12 {
		t.Errorf("Int(n) = %d", n)
	}
	if b, ok := o.Bool("b"); !ok || !b {
		t.Error("Bool")
	}
	if got := o.Time("t"); !got.Equal(time.Date(2025, 1, 2, 1, 4, 5, 5e8, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("Time = %v", got)
	}
	if m, ok := o.Decimal("m"); !ok || m != 100_000 {
		t.Errorf("Decimal(m) = %d", m)
	}
	if o.Obj("o").Str("k") != "v" || o.Obj("absent").Present() {
		t.Error("Obj")
	}
	if o.Err() != nil {
		t.Fatalf("Err = %v", o.Err())
	}
	if rest := o.Rest(); len(rest) != 4 || rest["extra"] == nil || rest["f"] == nil {
		t.Errorf("Rest = %v", rest)
	}
	o.Decimal("big")
	if r := reasonOf(o.Err()); r != ReasonOutOfRange {
		t.Errorf("Decimal(big) = %v", o.Err())
	}
	o.Int("f") // the first problem wins
	if r := o.Err().(*Reject); r.Field != "big" {
		t.Errorf("Err = %v, want the first problem", r)
	}
}

func TestKeep(t *testing.T) {
	got := Keep(map[string]any{"a": 1, "_a": 2}, map[string]any{"a": 3, "b": 4})
	if got["a"] != 1 || got["_a"] != 2 || got["__a"] != 3 || got["b"] != 4 {
		t.Errorf("Keep = %v", got)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Error(err)
	}
	err := Limits{MaxBytes: -1, MaxDepth: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "MaxBytes") || !strings.Contains(err.Error(), "MaxDepth") {
		t.Errorf("Validate = %v, want both problems", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"]"}]}`, `{"a":"\\\""}`, `[`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := Parse(canon.Web, raw, Limits{MaxDepth: 8})
		if err != nil {
			if reasonOf(err) == "" {
				t.Fatalf("Parse error %v is not a *Reject", err)
			}
			return
		}
		if !o.Present() || tooDeep(raw, 8) {
			t.Fatalf("Parse accepted a non-object or a too deep message")
		}
	})
}
