package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks"
)

const waitLimit = 30 * time.Second

var testKey = []byte("pseudonym-key-for-tests-0123456789")

func newSink(t *testing.T, addr string, mod func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.PseudonymKey = testKey
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func profile(id string, version uint64) *canon.Profile {
	return &canon.Profile{ID: id, Level: canon.Registered, Version: version,
		Traits: map[string]any{"first_name": "Ada"}, UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestWriteProfilesTombstonesAndIdentityLog(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
	s := newSink(t, addr, nil)
	if s.Name() != "kafka" {
		t.Errorf("Name() = %q, want kafka", s.Name())
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	batch := []canon.Change{
		{Seq: 1, Kind: canon.ChangeProfile, At: at, Profile: profile("p1", 1)},
		{Seq: 2, Kind: canon.ChangeProfile, At: at, Profile: profile("p2", 1)},
		{Seq: 3, Kind: canon.ChangeEvent, At: at, Event: &canon.EventRecord{ProfileID: "p1"}}, // not for this sink
		{Seq: 4, Kind: canon.ChangeLog, At: at, Log: &canon.LogRecord{Type: canon.LogMerge, ProfileID: "p1", Others: []string{"p2"}}},
		{Seq: 5, Kind: canon.ChangeDelete, At: at, Delete: &canon.Deletion{ProfileID: "p2", Reason: "absorbed", Survivor: "p1"}},
		{Seq: 6, Kind: canon.ChangeProfile, At: at, Profile: profile("p1", 2)},
		{Seq: 7, Kind: canon.ChangeErase, At: at, Erase: &canon.Erasure{ProfileIDs: []string{"p1", "p2"}, Hashes: []string{"h1"}, At: at}},
		{Seq: 8, Kind: canon.ChangeProfile, At: at, Superseded: true}, // read back after a newer version: skipped
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}

	// Profiles: p1 v1, p2 v1, p2 tombstone, p1 v2, p1 tombstone, p2 tombstone.
	recs := kafkatest.Consume(t, addr, "spine.profiles", 6, waitLimit)
	byKey := map[string][]*kgo.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
	}
	describe := func(rs []*kgo.Record) []string {
		var out []string
		for _, r := range rs {
			if r.Value == nil {
				out = append(out, "tombstone")
				continue
			}
			var p canon.Profile
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatalf("profile JSON: %v", err)
			}
			if p.ID != string(r.Key) {
				t.Errorf("record keyed %s holds profile %s", r.Key, p.ID)
			}
			out = append(out, "v"+string(rune('0'+p.Version)))
		}
		return out
	}
	for key, want := range map[string]string{"p1": "v1 v2 tombstone", "p2": "v1 tombstone tombstone"} {
		if got := strings.Join(describe(byKey[key]), " "); got != want {
			t.Errorf("spine.profiles records of %s = %s, want %s", key, got, want)
		}
	}

	ids := kafkatest.Consume(t, addr, "spine.identity", 2, waitLimit)
	var kinds []string
	for _, r := range ids {
		var c canon.Change
		if err := json.Unmarshal(r.Value, &c); err != nil {
			t.Fatalf("identity JSON: %v", err)
		}
		if string(r.Key) != "p1" {
			t.Errorf("identity record keyed %q, want p1", r.Key)
		}
		if seq, _ := kafkatest.Header(r, HeaderSeq); seq == "" {
			t.Error("identity record without a seq header")
		}
		kinds = append(kinds, string(c.Kind))
		switch c.Kind {
		case canon.ChangeLog:
			if c.Log == nil || c.Log.Type != canon.LogMerge || c.Seq != 4 {
				t.Errorf("log record = %+v, want the merge of seq 4", c)
			}
		case canon.ChangeErase:
			if c.Erase == nil || len(c.Erase.ProfileIDs) != 2 || c.Seq != 7 {
				t.Errorf("erase record = %+v, want seq 7 for p1 and p2", c)
			}
		}
	}
	if got := strings.Join(kinds, " "); got != "log erase" {
		t.Errorf("spine.identity kinds = %s, want log erase", got)
	}
}

func TestWriteErrorsAreClassified(t *testing.T) {
	t.Run("missing topic is retryable", func(t *testing.T) {
		addr, _ := kafkatest.Cluster(t) // no topics, no auto-creation
		s := newSink(t, addr, func(c *Config) { c.DeliveryTimeout = time.Second })
		err := s.Write(t.Context(), []canon.Change{{Seq: 1, Kind: canon.ChangeProfile, Profile: profile("p1", 1)}})
		if err == nil || !sinks.IsRetryable(err) {
			t.Errorf("Write = %v, want a retryable error", err)
		}
	})
	t.Run("oversize record is not retryable", func(t *testing.T) {
		addr, _ := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
		s := newSink(t, addr, func(c *Config) { c.MaxMessageBytes = 512 })
		p := profile("p1", 1)
		p.Traits["bio"] = strings.Repeat("x", 2048)
		err := s.Write(t.Context(), []canon.Change{{Seq: 1, Kind: canon.ChangeProfile, Profile: p}})
		if err == nil || sinks.IsRetryable(err) {
			t.Errorf("Write = %v, want a non-retryable error", err)
		}
	})
	t.Run("contract violation is not retryable", func(t *testing.T) {
		addr, _ := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
		s := newSink(t, addr, nil)
		err := s.Write(t.Context(), []canon.Change{{Seq: 9, Kind: canon.ChangeErase, Erase: &canon.Erasure{}}})
		if err == nil || sinks.IsRetryable(err) {
			t.Errorf("Write = %v, want a non-retryable error", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{TopicPrefix: "a b", Conn: []kgo.Opt{kgo.ClientID("x"), nil}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, want := range []string{"Brokers", "TopicPrefix", "MaxMessageBytes", "DeliveryTimeout", "Conn[1]", "PseudonymKey"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want a line about %s", err, want)
		}
	}
	def := DefaultConfig()
	def.PseudonymKey = testKey
	if err := def.Validate(); err != nil {
		t.Errorf("DefaultConfig() with a key: Validate() = %v", err)
	}
}

// TestConnOptionsReachTheClient writes to a broker that requires SASL: the
// sink gets in only with the credentials passed in Conn.
func TestConnOptionsReachTheClient(t *testing.T) {
	addr, _ := kafkatest.ClusterWith(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "spine", "pw"),
		kfake.SeedTopics(1, "spine.profiles", "spine.identity"))
	auth := kgo.SASL(plain.Auth{User: "spine", Pass: "pw"}.AsMechanism())
	batch := []canon.Change{{Seq: 1, Kind: canon.ChangeProfile, Profile: profile("p1", 1)}}

	without := newSink(t, addr, func(c *Config) { c.DeliveryTimeout = time.Second })
	if err := without.Write(t.Context(), batch); err == nil {
		t.Error("Write without credentials = nil, want an error")
	}
	with := newSink(t, addr, func(c *Config) { c.Conn = []kgo.Opt{auth} })
	if err := with.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write with credentials: %v", err)
	}
	recs := kafkatest.Consume(t, addr, "spine.profiles", 1, waitLimit, auth)
	if string(recs[0].Key) != "p1" {
		t.Errorf("record key = %q, want p1", recs[0].Key)
	}
}

// TestIdentityLogCarriesNoValues: spine.identity cannot be erased, so an
// identifier in a log record is written as a pseudonym.
func TestIdentityLogCarriesNoValues(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
	s := newSink(t, addr, nil)
	id := canon.Identifier{Type: canon.Email, Value: "erin@mail.io"}
	c := canon.Change{Seq: 1, Kind: canon.ChangeLog, Log: &canon.LogRecord{Type: canon.LogMerge, ProfileID: "p-1", Others: []string{"p-2"}, Identifier: &id}}
	if err := s.Write(t.Context(), []canon.Change{c}); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Consume(t, addr, "spine.identity", 1, waitLimit)
	if v := string(recs[0].Value); strings.Contains(v, "erin@mail.io") || !strings.Contains(v, id.Pseudonym(testKey).Value) {
		t.Errorf("identity record = %s: want the pseudonym, not the value", v)
	}
	// The pseudonym is keyed: hashing candidate values without the key
	// does not find it, and another key gives another pseudonym.
	p := id.Pseudonym(testKey).Value
	unkeyed := sha256.Sum256([]byte("spine-pseudonym:" + id.Key()))
	if strings.Contains(p, hex.EncodeToString(unkeyed[:16])) || p == id.Pseudonym([]byte("another-key-0123456789")).Value || p != id.Pseudonym(testKey).Value {
		t.Errorf("pseudonym %s is not a stable keyed hash", p)
	}
	if c.Log.Identifier.Value != "erin@mail.io" {
		t.Error("Write modified the shared change record")
	}
}

// TestProfileRecordUsesTheEngineJSON checks that a profile change carrying
// its stored JSON is written as those bytes, and one without is encoded.
func TestProfileRecordUsesTheEngineJSON(t *testing.T) {
	s := &Sink{cfg: DefaultConfig()}
	raw := []byte(`{"profile_id":"p-1","version":3,"traits":{"first_name":"Ada"}}`)
	recs, err := s.appendRecords(nil, &canon.Change{Seq: 1, Kind: canon.ChangeProfile, Profile: profile("p-1", 3), Raw: raw})
	if err != nil || len(recs) != 1 || string(recs[0].Value) != string(raw) {
		t.Fatalf("with Raw: %v, %d records", err, len(recs))
	}
	recs, err = s.appendRecords(nil, &canon.Change{Seq: 2, Kind: canon.ChangeProfile, Profile: profile("p-1", 4)})
	if err != nil || len(recs) != 1 {
		t.Fatalf("without Raw: %v, %d records", err, len(recs))
	}
	var p canon.Profile
	if err := json.Unmarshal(recs[0].Value, &p); err != nil || p.ID != "p-1" || p.Version != 4 {
		t.Errorf("without Raw: %s decodes to %+v, %v", recs[0].Value, p, err)
	}
}
