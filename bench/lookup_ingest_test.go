package bench

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// BenchmarkLookupWhileIngesting times engine lookups that miss the caches
// (the store's caches are 1 MiB) while the writer applies batches of 1,000
// persons (4,000 events) to the same state: the part of a lookup's tail
// that the writer's commits cause, without HTTP, load generator and
// broker. It preloads 50,000 persons, then ingests 100,000 more while one
// goroutine looks up random known emails at 2,000 per second.
//
//	go test -run '^$' -bench BenchmarkLookupWhileIngesting -benchtime 1x ./bench/
//
// Metrics: lookup p50/p99/max in microseconds and events/s of the ingest.
func BenchmarkLookupWhileIngesting(b *testing.B) {
	const preload, ingest, step = 50_000, 100_000, 1000
	for b.Loop() {
		e, ctx, stop := runEngine(b, b.TempDir(), 1<<20)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		apply := func(from, to int) {
			events := make([]canon.Event, 0, (to-from)*eventsPerPerson)
			for i := from; i < to; i++ {
				events = append(events, person(i, t0)...)
			}
			if err := e.Apply(ctx, canon.Batch{Events: events}); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < preload; i += step {
			apply(i, i+step)
		}

		var lat []time.Duration
		halt := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			r := rand.New(rand.NewPCG(3, 4))
			tick := time.NewTicker(500 * time.Microsecond)
			defer tick.Stop()
			for {
				select {
				case <-halt:
					return
				case <-tick.C:
				}
				id := canon.Identifier{Type: canon.Email, Value: emailOf(r.IntN(preload))}
				start := time.Now()
				if _, err := e.Lookup(ctx, id); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(start))
			}
		})
		start := time.Now()
		for i := preload; i < preload+ingest; i += step {
			apply(i, i+step)
		}
		took := time.Since(start)
		close(halt)
		wg.Wait()
		stop()
		if len(lat) == 0 {
			b.Fatal("no lookups")
		}
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
		b.ReportMetric(q(0.5), "p50-µs")
		b.ReportMetric(q(0.99), "p99-µs")
		b.ReportMetric(q(1), "max-µs")
		b.ReportMetric(float64(ingest*eventsPerPerson)/took.Seconds(), "events/s")
		b.ReportMetric(0, "ns/op")
		b.Logf("%d lookups while ingesting %d events in %s", len(lat), ingest*eventsPerPerson, took.Round(time.Millisecond))
	}
}
