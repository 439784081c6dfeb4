package bench

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/httpapi"
)

// typedOnly hides engine.API's stored-JSON lookups, so the server encodes
// every profile it answers with.
type typedOnly struct{ httpapi.Profiles }

// BenchmarkLookupHTTP answers lookups of known emails over HTTP on
// loopback, from the caches of an engine holding 20,000 persons, one
// request at a time, after each person was looked up once: with the
// profile's JSON kept from that first lookup (stored-json, what spine
// runs) and with the profile encoded for each request (encoded). Both run
// in one process, so their ratio holds on a noisy machine.
//
//	go test -run '^$' -bench BenchmarkLookupHTTP -benchtime 20000x ./bench/
//
// Metrics: CPU microseconds per lookup (server and client together, from
// getrusage) and the lookup's p50/p99 in microseconds.
func BenchmarkLookupHTTP(b *testing.B) {
	const persons = 20_000
	e, ctx, stop := runEngine(b, b.TempDir(), 256<<20)
	defer stop()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < persons; i += 1000 {
		var events []canon.Event
		for j := i; j < i+1000; j++ {
			events = append(events, person(j, t0)...)
		}
		if err := e.Apply(ctx, canon.Batch{Events: events}); err != nil {
			b.Fatal(err)
		}
	}
	norm, err := normalize.New(normalize.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name     string
		profiles httpapi.Profiles
	}{
		{"stored-json", engine.API{Engine: e}},
		{"encoded", typedOnly{engine.API{Engine: e}}},
	} {
		b.Run(v.name, func(b *testing.B) {
			cfg := httpapi.DefaultConfig()
			cfg.Tokens = []httpapi.Token{{Name: "bench", Secret: "bench-secret", Scopes: []httpapi.Scope{httpapi.ScopeRead}}}
			cfg.RateLimit = httpapi.RateLimit{} // off: the benchmark is the only client
			reg := prometheus.NewRegistry()
			api, err := httpapi.New(cfg, v.profiles, norm, nil, reg, reg)
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(api.Handler())
			defer srv.Close()
			client := srv.Client()
			r := rand.New(rand.NewPCG(5, 6))
			get := func(i int) time.Duration {
				q := url.Values{"type": {"email"}, "value": {emailOf(i)}}
				req, err := http.NewRequestWithContext(context.Background(), "GET", srv.URL+"/v1/profiles?"+q.Encode(), nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer bench-secret")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				if resp.StatusCode != 200 {
					b.Fatalf("lookup: %d", resp.StatusCode)
				}
				return took
			}
			for i := range persons { // every profile looked up once: its JSON is kept
				get(i)
			}
			lat := make([]time.Duration, 0, b.N)
			cpu0 := cpuTime()
			for b.Loop() {
				lat = append(lat, get(r.IntN(persons)))
			}
			cpu := cpuTime() - cpu0
			slices.Sort(lat)
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/lookup")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
