package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/schemas/canon"
)

// resolveIDs is how many identifiers the resolution benchmarks load
// (BenchmarkResolution, BenchmarkGraphResolve); set SPINE_BENCH_IDS=10000000
// for the 10M figure. It is at least 16, so each quarter holds a person.
func resolveIDs() int {
	if n, err := strconv.Atoi(os.Getenv("SPINE_BENCH_IDS")); err == nil && n > 0 {
		return max(n, 16)
	}
	return 1_000_000
}

// Each synthetic person has idsPerPerson identifiers, eventsPerPerson events
// and obsPerPerson identifier observations (one resolution each).
const (
	idsPerPerson    = 4
	eventsPerPerson = 4
	obsPerPerson    = 7
)

// person returns the events of one synthetic customer: an anonymous visit
// (a new profile), an app opened on a phone before login (a second new
// profile), a sign-up linking cookie, user id and email (two identifiers
// join the first profile), and a mobile login naming the device and the
// user id, which merges the device's profile into the user's (a union
// that relabels one identifier).
func person(i int, t0 time.Time) []canon.Event {
	o := func(t canon.IDType, v string) canon.Observation {
		return canon.Observation{Identifier: canon.Identifier{Type: t, Value: v}, Trust: canon.Asserted}
	}
	anon, user, email, dev := o(canon.AnonymousID, fmt.Sprint("a-", i)), o(canon.UserID, fmt.Sprint("u-", i)),
		o(canon.Email, emailOf(i)), o(canon.DeviceID, fmt.Sprint("d-", i))
	at := t0.Add(time.Duration(i) * time.Millisecond)
	return []canon.Event{
		{Channel: canon.Web, MessageID: fmt.Sprint("w1-", i), Kind: canon.KindPage, Time: at, Identifiers: []canon.Observation{anon}},
		{Channel: canon.Mobile, MessageID: fmt.Sprint("m1-", i), Kind: canon.KindScreen, Time: at.Add(time.Second), Identifiers: []canon.Observation{dev}},
		{Channel: canon.Web, MessageID: fmt.Sprint("w2-", i), Kind: canon.KindIdentify, Time: at.Add(time.Minute), Identifiers: []canon.Observation{anon, user, email}},
		{Channel: canon.Mobile, MessageID: fmt.Sprint("m2-", i), Kind: canon.KindLogin, Time: at.Add(time.Hour), Identifiers: []canon.Observation{dev, user}},
	}
}

func emailOf(i int) string { return fmt.Sprintf("p%d@shop.io", i) }

// lookupCount is how many random lookups by identifier the benchmarks time.
const lookupCount = 200_000

// BenchmarkResolution loads SPINE_BENCH_IDS identifiers (default 1M) through
// the whole engine (engine.Apply: dedup, resolution, profile fold, event
// storage, change records, commit; no sinks), in batches of 1,000 persons,
// then looks up random emails (engine.Lookup: identifier to profile).
//
// Metrics: ids/s is distinct identifiers per second of load, resolutions/s
// identifier observations resolved per second (7 per person), events/s,
// lookups/s. Load time is the time in Apply only: event generation and the
// memory checkpoints are left out. Memory (heapB/id, liveB/id, anonB/id,
// rssB/id) is the growth per identifier over the second half of the load,
// measured at checkpoints with the load paused and Badger settled, as
// described in resolve_measure_test.go; the log lists the absolute figures
// at each checkpoint. diskB/id is the state directory's allocated bytes
// after the engine is closed, apparentB/id its file sizes. With
// SPINE_BENCH_CPUPROFILE=file the last quarter of the load is CPU-profiled,
// and with SPINE_BENCH_HEAPPROFILE=prefix a heap profile is written at
// each checkpoint (prefix.1 to prefix.4).
//
//	SPINE_BENCH_IDS=1000000 go test -run '^$' -bench BenchmarkResolution -benchtime 1x -cpu 1 -v ./bench/
//
// -cpu 1 (GOMAXPROCS=1) measures one core, Badger's background work and
// the collector included, at the spine binary's collector target
// (engine.GCPercent; GOGC, when set, wins); -v shows the checkpoint
// table, which go test otherwise cuts.
func BenchmarkResolution(b *testing.B) {
	n := resolveIDs()
	persons := n / idsPerPerson
	for b.Loop() {
		dir := b.TempDir()
		e, ctx, stop := runEngine(b, dir, 64<<20)

		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		const step = 1000 // persons per Apply: 4,000 events, like a consumer poll
		events := make([]canon.Event, 0, step*eventsPerPerson)
		load, pts := loadMeasured(b, dir, persons, step, idsPerPerson, func(from, to int) (time.Duration, error) {
			events = events[:0]
			for i := from; i < to; i++ {
				events = append(events, person(i, t0)...)
			}
			start := time.Now()
			err := e.Apply(ctx, canon.Batch{Events: events})
			return time.Since(start), err
		})

		r := rand.New(rand.NewPCG(1, 2))
		ls := time.Now()
		for range lookupCount {
			if _, err := e.Lookup(ctx, canon.Identifier{Type: canon.Email, Value: emailOf(r.IntN(persons))}); err != nil {
				b.Fatal(err)
			}
		}
		lookupRate := lookupCount / time.Since(ls).Seconds()
		st := e.Stats()
		stop()
		b.StopTimer()
		disk, err := diskUsage(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		ids := persons * idsPerPerson
		b.ReportMetric(float64(ids)/load.Seconds(), "ids/s")
		b.ReportMetric(float64(persons*obsPerPerson)/load.Seconds(), "resolutions/s")
		b.ReportMetric(float64(persons*eventsPerPerson)/load.Seconds(), "events/s")
		b.ReportMetric(lookupRate, "lookups/s")
		b.ReportMetric(0, "ns/op") // one op is the whole load
		reportMemory(b, pts)
		reportDisk(b, disk, ids)
		b.Logf("GOMAXPROCS %d; %d identifiers in %d profiles (%d merges); load %s",
			runtime.GOMAXPROCS(0), ids, st.Profiles, st.Merges, load.Round(time.Millisecond))
	}
}

// runEngine opens an engine on dir without fsync and with caches of
// cacheBytes, and runs it until stop, which also closes it. The benchmark
// runs at the binary's collector target from here on (engineGC).
func runEngine(b *testing.B, dir string, cacheBytes int64) (e *engine.Engine, ctx context.Context, stop func()) {
	b.Helper()
	engineGC(b)
	cfg := engine.DefaultConfig(dir)
	cfg.Store.SyncWrites = false
	cfg.Store.CacheBytes = cacheBytes
	e, err := engine.Open(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	return e, ctx, func() {
		cancel()
		<-done
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// engineGC runs the benchmark at the collector's target the spine binary
// sets (engine.GCPercent) rather than Go's default, so that the figures
// are the engine's as it runs; GOGC, when set, wins, as in the binary.
func engineGC(b *testing.B) {
	if os.Getenv("GOGC") != "" {
		return
	}
	old := debug.SetGCPercent(engine.GCPercent)
	b.Cleanup(func() { debug.SetGCPercent(old) })
}
