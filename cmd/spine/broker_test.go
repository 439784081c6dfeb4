package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBrokerPersists produces to the embedded broker over TCP, restarts it
// on the same data directory, and reads the record back.
func TestBrokerPersists(t *testing.T) {
	dir, addr := t.TempDir(), e2eFreeAddr(t)
	log := slog.New(slog.DiscardHandler)
	b, err := startBroker(addr, dir, "spine.", 3, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "spine.web", Key: []byte("k"), Value: []byte(`{"type":"page"}`)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	b.Close()

	b, err = startBroker(addr, dir, "spine.", 3, log)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer b.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("spine.web"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal("record not found after restart")
		}
		var got []string
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) > 0 {
			if got[0] != string(rec.Value) {
				t.Fatalf("after restart read %q, want %q", got[0], rec.Value)
			}
			return
		}
	}
}
