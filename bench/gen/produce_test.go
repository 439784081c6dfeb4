package gen

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduce(t *testing.T) {
	topics := []string{"spine.web", "spine.mobile", "spine.iot", "spine.pos", "spine.support", "spine.ciam"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	g, err := New(hardConfig(200))
	if err != nil {
		t.Fatal(err)
	}
	want := g.Truth().Totals.Messages
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var calls, last int
	n, err := Produce(ctx, c.ListenAddrs(), g, 0, func(sent int) { calls++; last = sent })
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	if int64(n) != want || last != n || calls == 0 {
		t.Fatalf("Produce acked %d (last progress %d after %d calls), want %d", n, last, calls, want)
	}

	// Read everything back: the count matches, and each key's records sit in
	// one partition in the generator's order.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	type tk struct{ topic, key string }
	part := map[tk]int32{}
	var got int64
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			k := tk{r.Topic, string(r.Key)}
			if p, ok := part[k]; ok && p != r.Partition {
				t.Errorf("key %s of %s in partitions %d and %d", r.Key, r.Topic, p, r.Partition)
			}
			part[k] = r.Partition
		})
	}
}

func TestProduceRate(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := DefaultConfig()
	cfg.Persons = 20
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	total := g.Truth().Totals.Messages
	rate := int(total) * 2 // about half a second
	start := time.Now()
	n, err := Produce(t.Context(), c.ListenAddrs(), g, rate, nil)
	if err != nil || int64(n) != total {
		t.Fatalf("Produce = %d, %v; want %d", n, err, total)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("%d messages at %d/s took %s", n, rate, d)
	}
}

func TestProduceCancel(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	g, err := New(hardConfig(1000))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = Produce(ctx, c.ListenAddrs(), g, 100, nil)
	if err == nil {
		t.Fatal("Produce after cancel returned nil error")
	}
}
