package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

func TestDecoders(t *testing.T) {
	decs := Decoders(normalize.Default(), msg.DefaultLimits())
	for _, ch := range canon.Channels {
		dec, ok := decs[ch]
		if !ok {
			t.Fatalf("Decoders() has no decoder for %s", ch)
		}
		_, err := dec([]byte(`[]`))
		var r *msg.Reject
		if !errors.As(err, &r) || r.Channel != ch || r.Reason != msg.ReasonNotObject {
			t.Errorf("%s decoder: Decode([]) = %v, want not_object on its channel", ch, err)
		}
	}
	small := Decoders(normalize.Default(), msg.Limits{MaxBytes: 10})
	if _, err := small[canon.Web]([]byte(`{"type":"identify"}`)); err == nil || !strings.HasPrefix(err.Error(), string(msg.ReasonOversize)) {
		t.Errorf("MaxBytes 10: Decode = %v, want oversize", err)
	}
}

// The consumer decodes chunks side by side: one decoder table, shared by
// goroutines, must give each message the event it gives it alone.
func TestDecodersConcurrent(t *testing.T) {
	decs := Decoders(normalize.Default(), msg.DefaultLimits())
	type input struct {
		ch   canon.Channel
		body []byte
		want string
	}
	var inputs []input
	for _, ch := range canon.Channels {
		dir := map[canon.Channel]string{canon.Web: "segment", canon.Mobile: "segment"}[ch]
		if dir == "" {
			dir = string(ch)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.json"))
		for _, f := range files {
			if prefix := strings.SplitN(filepath.Base(f), "_", 2)[0]; dir == "segment" && prefix != string(ch) {
				continue
			}
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, input{ch: ch, body: body, want: decodeString(decs[ch], body)})
		}
	}
	if len(inputs) < 12 {
		t.Fatalf("found %d fixtures, want every channel's", len(inputs))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 50 {
				in := inputs[(g*7+round)%len(inputs)]
				if got := decodeString(decs[in.ch], in.body); got != in.want {
					t.Errorf("%s message decoded alongside others:\n got %s\nwant %s", in.ch, got, in.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func decodeString(dec Decoder, body []byte) string {
	ev, err := dec(body)
	if err != nil {
		return "error: " + err.Error()
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func TestTopics(t *testing.T) {
	for _, tt := range []struct{ prefix, topic string }{
		{"spine", "spine.web"}, {"spine.", "spine.web"}, {"acme.prod", "acme.prod.web"}, {"", "web"},
	} {
		if got := Topic(tt.prefix, canon.Web); got != tt.topic {
			t.Errorf("Topic(%q, web) = %q, want %q", tt.prefix, got, tt.topic)
		}
		if ch, err := ChannelOf(tt.prefix, tt.topic); err != nil || ch != canon.Web {
			t.Errorf("ChannelOf(%q, %q) = %v, %v", tt.prefix, tt.topic, ch, err)
		}
	}
	want := []string{"spine.web", "spine.mobile", "spine.iot", "spine.pos", "spine.support", "spine.ciam"}
	topics := Topics(DefaultTopicPrefix)
	if len(topics) != len(want) {
		t.Errorf("Topics() = %v", topics)
	}
	for _, tp := range want {
		if _, ok := topics[tp]; !ok {
			t.Errorf("Topics() lacks %s", tp)
		}
	}
	_, err := ChannelOf("spine", "spine.dlq")
	var r *msg.Reject
	if !errors.As(err, &r) || r.Reason != msg.ReasonUnknownTopic {
		t.Errorf("ChannelOf(spine.dlq) = %v, want unknown_topic", err)
	}
}

// The schema tests hold schemas/json and the decoders to one contract:
// golden inputs use only fields their channel's schema lists, every field
// the schema requires is required by the decoder, every event name the
// schema lists is known to the decoder, and decoded events use only fields
// the canonical-event schema lists.

type schema struct {
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
}

func loadSchema(t *testing.T, name string) schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "schemas", "json", name+".schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s.schema.json: %v", name, err)
	}
	return s
}

// inputs returns the golden input files of channel ch, decoded.
func inputs(t *testing.T, ch canon.Channel) map[string]map[string]any {
	t.Helper()
	pattern := filepath.Join(string(ch), "testdata", "*.json")
	if ch == canon.Web || ch == canon.Mobile {
		pattern = filepath.Join("segment", "testdata", string(ch)+"_*.json")
	}
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		t.Fatalf("no golden inputs match %s", pattern)
	}
	out := make(map[string]map[string]any)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = m
	}
	return out
}

// eventField is the field that names a channel's event.
func eventField(ch canon.Channel) string {
	switch ch {
	case canon.Web, canon.Mobile, canon.POS:
		return "type"
	}
	return "event"
}

func TestSchemasMatchDecoders(t *testing.T) {
	decs := Decoders(normalize.Default(), msg.DefaultLimits())
	for _, ch := range canon.Channels {
		t.Run(string(ch), func(t *testing.T) {
			s := loadSchema(t, string(ch))
			dec := decs[ch]
			for file, in := range inputs(t, ch) {
				for k := range in {
					if _, ok := s.Properties[k]; !ok {
						t.Errorf("%s: field %q is not in %s.schema.json", file, k, ch)
					}
				}
				if _, err := dec(encode(t, in)); err != nil {
					continue // a golden reject: nothing to remove
				}
				for _, req := range s.Required {
					without := clone(in)
					delete(without, req)
					if _, err := dec(encode(t, without)); err == nil {
						t.Errorf("%s: decoder accepts it without %q, which %s.schema.json requires", file, req, ch)
					}
				}
			}
			var ev struct {
				Enum []string `json:"enum"`
			}
			if err := json.Unmarshal(s.Properties[eventField(ch)], &ev); err != nil || len(ev.Enum) == 0 {
				t.Fatalf("%s.schema.json: %s has no enum: %v", ch, eventField(ch), err)
			}
			for _, in := range inputs(t, ch) {
				for _, name := range ev.Enum {
					m := clone(in)
					m[eventField(ch)] = name
					_, err := dec(encode(t, m))
					var r *msg.Reject
					if errors.As(err, &r) && r.Reason == msg.ReasonUnknownEvent {
						t.Errorf("schema lists %s %q, the decoder does not know it", eventField(ch), name)
					}
				}
				break
			}
		})
	}
}

func TestGoldenEventsMatchCanonicalSchema(t *testing.T) {
	s := loadSchema(t, "canonical-event")
	var kinds struct {
		Enum []canon.Kind `json:"enum"`
	}
	if err := json.Unmarshal(s.Properties["kind"], &kinds); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("*", "testdata", "*.golden"))
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(raw), "reject: ") {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for k := range ev {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: field %q is not in canonical-event.schema.json", f, k)
			}
		}
		kind, _ := ev["kind"].(string)
		found := false
		for _, k := range kinds.Enum {
			found = found || string(k) == kind
		}
		if !found {
			t.Errorf("%s: kind %q is not in canonical-event.schema.json", f, kind)
		}
	}
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
