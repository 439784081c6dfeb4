// Package msgtest holds the test harness every channel decoder uses: table
// cases that name the expected reject reason and field, golden files
// (testdata/*.json decoded to testdata/*.golden, refreshed with -update), and
// fuzz seeding from testdata. It is the stdlib-only form of pebble's
// data-driven tests.
package msgtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/schemas/canon"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the decoders' output")

// Decode is a channel decoder.
type Decode func(raw []byte) (canon.Event, error)

// Case is one table case. With Reason empty the message must decode, and
// Check (if set) inspects the event; otherwise it must be refused with
// Reason on Field.
type Case struct {
	Name   string
	In     string
	Reason msg.Reason
	Field  string
	Check  func(t *testing.T, ev canon.Event)
}

// Run runs cases against dec.
func Run(t *testing.T, dec Decode, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			ev, err := dec([]byte(c.In))
			if c.Reason == "" {
				if err != nil {
					t.Fatalf("Decode(%s) = %v, want an event", c.Name, err)
				}
				if err := ev.Validate(); err != nil {
					t.Fatalf("Decode(%s) returned an invalid event: %v", c.Name, err)
				}
				if c.Check != nil {
					c.Check(t, ev)
				}
				return
			}
			var r *msg.Reject
			if !errors.As(err, &r) {
				t.Fatalf("Decode(%s) = %v, want *msg.Reject %s on %q", c.Name, err, c.Reason, c.Field)
			}
			if r.Reason != c.Reason || r.Field != c.Field {
				t.Errorf("Decode(%s) = %s on %q, want %s on %q (%v)", c.Name, r.Reason, r.Field, c.Reason, c.Field, r)
			}
		})
	}
}

// Inputs returns the testdata/*.json files of the package under test.
func Inputs(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.json: %v", err)
	}
	return files
}

// Golden decodes every testdata/*.json file with the decoder that decoderFor
// returns for its name, and compares the result (the event as indented
// JSON, or the reject) with testdata/*.golden. With -update it rewrites the
// golden files instead.
func Golden(t *testing.T, decoderFor func(file string) Decode) {
	t.Helper()
	for _, in := range Inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := Render(decoderFor(filepath.Base(in)), raw)
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Decode(%s) differs from %s (run with -update after checking):\ngot:\n%s\nwant:\n%s", in, golden, got, want)
			}
		})
	}
}

// Render is the golden form of one decode: the event as indented JSON, or
// "reject: " and the error.
func Render(dec Decode, raw []byte) []byte {
	ev, err := dec(raw)
	if err != nil {
		return []byte("reject: " + err.Error() + "\n")
	}
	out, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return []byte("marshal: " + err.Error() + "\n")
	}
	return append(out, '\n')
}

// Seed adds every testdata/*.json file to f's corpus.
func Seed(f *testing.F) {
	f.Helper()
	for _, in := range Inputs(f) {
		raw, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
}

// Check is the fuzz property of every decoder: it never panics (the fuzzer
// catches that), an accepted event belongs to ch and passes Validate, and a
// refusal is a *msg.Reject with a reason.
func Check(t *testing.T, ch canon.Channel, dec Decode, raw []byte) {
	t.Helper()
	ev, err := dec(raw)
	if err != nil {
		var r *msg.Reject
		if !errors.As(err, &r) || r.Reason == "" {
			t.Fatalf("Decode error %T %v, want *msg.Reject with a reason", err, err)
		}
		return
	}
	if ev.Channel != ch {
		t.Fatalf("Decode channel = %s, want %s", ev.Channel, ch)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("Decode accepted an event that fails Validate: %v", err)
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("accepted event does not marshal: %v", err)
	}
}

// Fuzz seeds f from testdata and fuzzes dec with Check.
func Fuzz(f *testing.F, ch canon.Channel, dec Decode) {
	f.Helper()
	Seed(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		Check(t, ch, dec, raw)
	})
}
