package msg

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spinecdp/spine/schemas/canon"
)

const jsonSpace = " \t\r\n"

// stdDecode is the reference: encoding/json with UseNumber into an any.
func stdDecode(t *testing.T, b []byte) (any, bool) {
	t.Helper()
	if !json.Valid(b) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("json.Valid accepts %q but Decode fails: %v", b, err)
	}
	return v, true
}

// ourDecode reads b as one whole JSON text, as json.Valid does.
func ourDecode(b []byte, utf8ok bool) (any, bool) {
	body := bytes.TrimLeft(b, jsonSpace)
	v, n, ok := parseJSON(body, jsonMaxDepth, utf8ok)
	if !ok || len(bytes.TrimLeft(body[n:], jsonSpace)) != 0 {
		return nil, false
	}
	return v, true
}

// stdParse is Parse as it was with encoding/json, the reference for every
// reject reason and message.
func stdParse(ch canon.Channel, raw []byte, lim Limits) (*Object, error) {
	lim = lim.withDefaults()
	if len(raw) > lim.MaxBytes {
		return nil, Rejectf(ch, ReasonOversize, "", "message is larger than %d bytes", lim.MaxBytes)
	}
	if !utf8.Valid(raw) {
		return nil, Rejectf(ch, ReasonInvalidUTF8, "", "message is not valid UTF-8")
	}
	body := bytes.TrimLeft(raw, jsonSpace)
	if len(body) == 0 || body[0] != '{' || tooDeep(body, lim.MaxDepth) {
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
	if len(bytes.TrimLeft(body[dec.InputOffset():], jsonSpace)) != 0 {
		return nil, Rejectf(ch, ReasonInvalidJSON, "", "message has data after its JSON object")
	}
	return &Object{st: &state{ch: ch}, m: m}, nil
}

// checkSame fails t unless the parser and encoding/json agree on b, and
// Parse and stdParse agree on b under a few limits.
func checkSame(t *testing.T, b []byte) {
	t.Helper()
	want, wantOK := stdDecode(t, b)
	for _, utf8ok := range []bool{false, true} {
		if utf8ok && !utf8.Valid(b) {
			continue
		}
		got, gotOK := ourDecode(b, utf8ok)
		if gotOK != wantOK {
			t.Fatalf("parse(%q, utf8ok=%v) accepts=%v, encoding/json accepts=%v", b, utf8ok, gotOK, wantOK)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parse(%q, utf8ok=%v) =\n%#v\nencoding/json =\n%#v", b, utf8ok, got, want)
		}
	}
	for _, lim := range []Limits{{}, {MaxDepth: 2}, {MaxBytes: 64, MaxDepth: jsonMaxDepth + 5}} {
		got, gotErr := Parse(canon.Web, b, lim)
		want, wantErr := stdParse(canon.Web, b, lim)
		if !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("Parse(%q, %+v) = %v, want %v", b, lim, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got.m, want.m) {
			t.Fatalf("Parse(%q, %+v) =\n%#v\nwant\n%#v", b, lim, got.m, want.m)
		}
	}
}

// tricky holds inputs at the edges of the grammar and of unescaping.
var tricky = []string{
	`{}`, `[]`, `{"a":{}}`, `{"a":[]}`, `[[],{}]`, ` { } `, "\t{\r\n\"a\"\t:\n1 }\n",
	`{"a":1,"a":2}`, `{"a":{"x":1},"a":{"y":2}}`, `{"a":[1],"a":"s"}`,
	`{"n":-0}`, `{"n":0}`, `{"n":1e5}`, `{"n":1E+2}`, `{"n":0.5e-3}`, `{"n":-1.25E-10}`,
	`{"n":123456789012345678901234567890}`, `{"n":-9223372036854775809}`, `{"n":1e400}`,
	`{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`, `{"n":1e}`, `{"n":1e+}`, `{"n":+1}`, `{"n":0x1}`,
	`{"n":00}`, `{"n":-01}`, `{"n":1.e5}`, `{"n":NaN}`, `{"n":Infinity}`, `1`, `-0`, `1 2`,
	`{"s":"\"\\\/\b\f\n\r\t"}`, `{"s":"\u0041\u00e9\u20ac"}`, `{"s":"\ud83d\ude00"}`,
	`{"s":"\uD83D\uDE00"}`, `{"s":"\ud83d"}`, `{"s":"\ude00"}`, `{"s":"\ud83dx"}`,
	`{"s":"\ud83d\u0041"}`, `{"s":"\ud83d\ud83d\ude00"}`, `{"s":"\ude00\ud83d"}`, `{"s":"\ud83d\u"}`,
	`{"s":"\u12"}`, `{"s":"\u12G4"}`, `{"s":"\x"}`, `{"s":"\'"}`, `{"s":"\U0041"}`, `{"s":"\u0000"}`,
	"{\"s\":\"a\x01b\"}", "{\"s\":\"a\tb\"}", "{\"s\":\"\x7f\"}", `{"s":"é€😀"}`, "{\"s\":\"\xff\"}",
	"{\"s\":\"a\\n\xff\xfe\"}", "{\"s\":\"\xed\xa0\x80\"}", `{"s":"`, `{"s":"\`, `{"s":"\"}`,
	`{"\u0061":1,"a":2}`, `{"":""}`, `{"a" : true , "b":false,"c":null}`,
	`{"a":tru}`, `{"a":truex}`, `{"a":nul}`, `{"a":True}`, `{"a":1,}`, `[1,]`, `{,}`, `[,]`,
	`{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`, `{'a':1}`, `{"a":1}}`, `{"a":1}]`, `{"a":1} x`,
	`{"a":1} {}`, `{"a":1}` + " \n\t\r", `{"a":[1,2}`, `{"a":{"b":1]}`, `{`, `[`, ``, ` `, `"s"`,
	`null`, `true`, "{\"a\":1}\x00", "\v{}", "\u00a0{}", "\ufeff{}",
	`{"a":[` + strings.Repeat(`[`, 62) + strings.Repeat(`]`, 62) + `]}`,
	`{"a":[` + strings.Repeat(`[`, 63) + strings.Repeat(`]`, 63) + `]}`,
	`{"a":1} ` + strings.Repeat(`[`, 70),
}

func seed(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "*", "testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no channel testdata found")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range tricky {
		f.Add([]byte(s))
	}
}

// FuzzParseMatchesEncodingJSON checks the parser against encoding/json with
// UseNumber: the same accept/reject decision and the same tree; and Parse
// against its encoding/json form: the same reject, reason and message.
func FuzzParseMatchesEncodingJSON(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSame(t, b)
	})
}

func TestParseJSONTree(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`{}`, map[string]any{}},
		{`[]`, []any{}},
		{` [ {} , [ ] ] `, []any{map[string]any{}, []any{}}},
		{`{"a":1,"a":"x"}`, map[string]any{"a": "x"}},
		{`{"a":{"x":1},"a":{"y":2}}`, map[string]any{"a": map[string]any{"y": json.Number("2")}}},
		{`[-0,1e5,1E+2,0.5e-3,123456789012345678901234567890]`,
			[]any{json.Number("-0"), json.Number("1e5"), json.Number("1E+2"), json.Number("0.5e-3"),
				json.Number("123456789012345678901234567890")}},
		{`[true,false,null]`, []any{true, false, nil}},
		{`"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t"},
		{`"\u0041\u00e9\u20AC"`, "Aé€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\ufffd"},
		{`"\ude00"`, "\ufffd"},
		{`"\ud83dx"`, "\ufffdx"},
		{`"\ud83d\u0041"`, "\ufffdA"},
		{`"\ud83d\ud83d\ude00"`, "\ufffd😀"},
		{`"\ude00\ud83d"`, "\ufffd\ufffd"},
		{`"\u0000"`, "\x00"},
		{"\"a\xffb\"", "a\ufffdb"},
		{"\"\\n\xed\xa0\x80\"", "\n\ufffd\ufffd\ufffd"},
		{`"é€😀"`, "é€😀"},
	}
	for _, tt := range tests {
		got, ok := ourDecode([]byte(tt.in), false)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parse(%s) = %#v, %v; want %#v", tt.in, got, ok, tt.want)
		}
		checkSame(t, []byte(tt.in))
	}
}

func TestParseJSONRejects(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{`, `[`, `{"a":1,}`, `[1,]`, `{,}`, `[,]`, `{"a"}`, `{"a":}`, `{1:2}`, `{'a':1}`,
		`01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `-01`, `0x1`, `NaN`, `tru`, `truex`, `nul`, `True`,
		`"\x"`, `"\'"`, `"\u12"`, `"\u12G4"`, `"\U0041"`, "\"a\x01b\"", "\"a\tb\"", `"`, `"\"`,
		`{"a":1}}`, `1 2`, `[1]x`, "\v1", "\ufeff{}",
	} {
		if v, ok := ourDecode([]byte(in), true); ok {
			t.Errorf("parse(%q) = %#v, want a reject", in, v)
		}
		checkSame(t, []byte(in))
	}
}

func TestParseJSONDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`[`, n) + strings.Repeat(`]`, n))
	}
	// encoding/json's own limit, which bounds the recursion here.
	if _, ok := ourDecode(nest(jsonMaxDepth), true); !ok {
		t.Errorf("depth %d refused", jsonMaxDepth)
	}
	if _, ok := ourDecode(nest(jsonMaxDepth+1), true); ok {
		t.Errorf("depth %d accepted", jsonMaxDepth+1)
	}
	checkSame(t, nest(jsonMaxDepth))
	checkSame(t, nest(jsonMaxDepth+1))
	// A limit above encoding/json's still refuses what it refuses.
	obj := append(append([]byte(`{"a":`), nest(jsonMaxDepth)...), '}')
	lim := Limits{MaxDepth: 2 * jsonMaxDepth, MaxBytes: 1 << 20}
	_, err := Parse(canon.Web, obj, lim)
	_, want := stdParse(canon.Web, obj, lim)
	if reasonOf(err) != ReasonInvalidJSON || !reflect.DeepEqual(err, want) {
		t.Errorf("Parse(depth %d, %+v) = %v, want %v", jsonMaxDepth+1, lim, err, want)
	}
	if _, _, ok := parseJSON([]byte(`{"a":{"b":[]}}`), 2, true); ok {
		t.Error("parseJSON(depth 3, max 2) accepted")
	}
}

func TestParseTrailing(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1} x`:                          "message has data after its JSON object",
		`{"a":1} {}`:                         "message has data after its JSON object",
		`{"a":1}}`:                           "message has data after its JSON object",
		`{"a":1} ` + strings.Repeat(`[`, 70): "message is not valid JSON",
	} {
		_, err := Parse(canon.Web, []byte(in), Limits{})
		var r *Reject
		if !errors.As(err, &r) || r.Reason != ReasonInvalidJSON || r.Message != want {
			t.Errorf("Parse(%q) = %v, want invalid_json %q", in, err, want)
		}
	}
}

func TestParseJSONPooledScratchReleased(t *testing.T) {
	// A failed parse must not leave values behind in the pooled scratch.
	if _, _, ok := parseJSON([]byte(`{"a":["x","y",{"b":"z",`), 64, true); ok {
		t.Fatal("accepted a truncated object")
	}
	got, ok := ourDecode([]byte(`{"c":[1]}`), true)
	if want := map[string]any{"c": []any{json.Number("1")}}; !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("after a failure: %#v, want %#v", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "segment", "testdata", "web_order_completed.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("msg", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := Parse(canon.Web, raw, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := stdParse(canon.Web, raw, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
