package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/schemas/canon"
)

// resolveIDs is how many identifiers the resolution benchmark loads; set
// SPINE_BENCH_IDS=10000000 for the 10M figure.
func resolveIDs() int {
	if n, err := strconv.Atoi(os.Getenv("SPINE_BENCH_IDS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// person returns the events of one synthetic customer: an anonymous visit,
// a sign-up linking cookie, user id and email, and a mobile login linking a
// device: four identifiers, two merges' worth of resolution.
func person(i int, t0 time.Time) []canon.Event {
	o := func(t canon.IDType, v string) canon.Observation {
		return canon.Observation{Identifier: canon.Identifier{Type: t, Value: v}, Trust: canon.Asserted}
	}
	anon, user, email, dev := o(canon.AnonymousID, fmt.Sprint("a-", i)), o(canon.UserID, fmt.Sprint("u-", i)),
		o(canon.Email, fmt.Sprintf("p%d@shop.io", i)), o(canon.DeviceID, fmt.Sprint("d-", i))
	at := t0.Add(time.Duration(i) * time.Millisecond)
	return []canon.Event{
		{Channel: canon.Web, MessageID: fmt.Sprint("w1-", i), Kind: canon.KindPage, Time: at, Identifiers: []canon.Observation{anon}},
		{Channel: canon.Web, MessageID: fmt.Sprint("w2-", i), Kind: canon.KindIdentify, Time: at.Add(time.Minute), Identifiers: []canon.Observation{anon, user, email}},
		{Channel: canon.Mobile, MessageID: fmt.Sprint("m1-", i), Kind: canon.KindLogin, Time: at.Add(time.Hour), Identifiers: []canon.Observation{dev, user}},
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkResolution loads N identifiers through the engine (resolution,
// profile fold and commit, no sinks) and reports identifier resolutions/s,
// lookups/s by identifier over the loaded graph, heap bytes per identifier
// (the slope between the half-way point and the end, so fixed costs such as
// Badger's memtables and the bounded caches drop out) and disk bytes per
// identifier. Run with -benchtime=1x; GOMAXPROCS=1 measures one core.
func BenchmarkResolution(b *testing.B) {
	n := resolveIDs()
	persons := n / 4
	for b.Loop() {
		dir := b.TempDir()
		cfg := engine.DefaultConfig(dir)
		cfg.Store.SyncWrites = false
		cfg.Store.CacheBytes = 64 << 20
		e, err := engine.Open(cfg, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(ctx) }()

		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		const batch = 1250 // persons per Apply: 3,750 events, like a consumer poll
		var half uint64
		start := time.Now()
		for p := 0; p < persons; p += batch {
			var events []canon.Event
			for i := p; i < min(p+batch, persons); i++ {
				events = append(events, person(i, t0)...)
			}
			if err := e.Apply(ctx, canon.Batch{Events: events}); err != nil {
				b.Fatal(err)
			}
			if half == 0 && p >= persons/2 {
				half = heapInuse()
			}
		}
		load := time.Since(start)
		end := heapInuse()

		r := rand.New(rand.NewPCG(1, 2))
		const lookups = 200_000
		ls := time.Now()
		for range lookups {
			i := r.IntN(persons)
			if _, err := e.Lookup(ctx, canon.Identifier{Type: canon.Email, Value: fmt.Sprintf("p%d@shop.io", i)}); err != nil {
				b.Fatal(err)
			}
		}
		lookupRate := lookups / time.Since(ls).Seconds()
		st := e.Stats()
		cancel()
		<-done
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}

		ids := float64(persons * 4)
		b.ReportMetric(ids/load.Seconds(), "ids/s")
		b.ReportMetric(float64(persons*3)/load.Seconds(), "events/s")
		b.ReportMetric(lookupRate, "lookups/s")
		b.ReportMetric((float64(end)-float64(half))/(ids/2), "heapB/id")
		b.ReportMetric(float64(st.DiskLSM+st.DiskVLog)/ids, "diskB/id")
		b.Logf("%d identifiers in %d profiles; load %s; heap %d MiB at half, %d MiB at end; disk %d MiB",
			persons*4, st.Profiles, load.Round(time.Millisecond), half>>20, end>>20, (st.DiskLSM+st.DiskVLog)>>20)
	}
}
