package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// The dispatcher is open-loop: every request's due time follows the
// schedule from the phase's start, and it sends only in loading phases.
func TestDispatchOpenLoop(t *testing.T) {
	cfg := &lookupChildConfig{Rate: 1000, Workers: 1, Seed: 1, Budget: 50,
		IDs: []canon.Identifier{{Type: canon.Email, Value: "a@b.c"}}}
	var phase atomic.Int32
	phase.Store(phaseSaturate)
	jobs := make(chan lookupJob, 100)
	out := newSampleWriter(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dispatch(ctx, cfg, &phase, make(chan struct{}), jobs, out)
	if len(jobs) != 50 {
		t.Fatalf("sent %d requests, want the budget of 50", len(jobs))
	}
	first := <-jobs
	for i := 1; i < 50; i++ {
		j := <-jobs
		if want := first.due.Add(time.Duration(i) * time.Millisecond); !j.due.Equal(want) {
			t.Fatalf("request %d due %v after the first, want %v", i, j.due.Sub(first.due), want.Sub(first.due))
		}
		if j.phase != phaseSaturate {
			t.Fatalf("request %d in phase %d", i, j.phase)
		}
	}

	phase.Store(phaseCeiling)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	dispatch(ctx2, cfg, &phase, make(chan struct{}), jobs, out)
	if len(jobs) != 0 {
		t.Fatalf("sent %d requests outside the loading phases", len(jobs))
	}
}

func TestReadLookupSamples(t *testing.T) {
	b := &benchRun{}
	b.tl.start = time.Unix(100, 0)
	in := fmt.Sprintf("r %d 101000000000 2000000 3000000 200\nd %d\nr %d 102000000000 500000 500000 404\n",
		phaseSaturate, phasePaced, phasePaced)
	if err := b.readLookupSamples(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if got := b.lookups.service[phaseSaturate]; len(got) != 1 || got[0] != 2 {
		t.Fatalf("saturate service times %v, want [2]", got)
	}
	if got := b.lookups.notFound[phasePaced]; len(got) != 1 || got[0] != 0.5 {
		t.Fatalf("paced 404 times %v, want [0.5]", got)
	}
	if b.lookups.dropped.Load() != 1 {
		t.Fatalf("dropped %d, want 1", b.lookups.dropped.Load())
	}
	if err := b.readLookupSamples(strings.NewReader("r 1 x\n")); err == nil {
		t.Fatal("a malformed line was accepted")
	}
}

func TestBucketQuantile(t *testing.T) {
	bounds := []float64{.001, .01, .1, math.Inf(1)}
	cum := []uint64{90, 99, 100, 100}
	if q := bucketQuantile(bounds, cum, .5); q != 1 {
		t.Fatalf("p50 %v ms, want 1", q)
	}
	if q := bucketQuantile(bounds, cum, .99); q != 10 {
		t.Fatalf("p99 %v ms, want 10", q)
	}
	if q := bucketQuantile(bounds, []uint64{0, 0, 0, 0}, .99); q != 0 {
		t.Fatalf("empty p99 %v, want 0", q)
	}
}

// A worker's connection speaks HTTP/1.1 with net/http's server: it keeps
// the connection alive, reads sized and chunked bodies whole, dials again
// after the server closes the connection, and sends again when the server
// closed a kept connection while it was idle.
func TestLookupConn(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Query().Get("value") {
		case "big": // chunked: written in parts, flushed between them
			for range 8 {
				fmt.Fprint(w, strings.Repeat("x", 4096))
				w.(http.Flusher).Flush()
			}
		case "bye":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "{}")
		case "none":
			http.NotFound(w, r)
		case "+1 555&x=y\r\n": // came through escaping whole
			w.WriteHeader(http.StatusAccepted)
		default:
			fmt.Fprint(w, `{"id":"p"}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &lookupConn{addr: u.Host, auth: "Bearer tok"}
	defer c.close()
	for i, step := range []struct {
		value string
		code  int
		conns int32 // opened so far
		idle  bool  // the server drops its connections before the request
	}{
		{value: "a", code: 200, conns: 1}, {value: "big", code: 200, conns: 1},
		{value: "none", code: 404, conns: 1}, {value: "+1 555&x=y\r\n", code: 202, conns: 1},
		{value: "bye", code: 200, conns: 1}, {value: "a", code: 200, conns: 2},
		{value: "big", code: 200, conns: 2}, {value: "a", code: 200, conns: 3, idle: true},
	} {
		if step.idle {
			srv.CloseClientConnections()
		}
		code, err := c.get("/v1/profiles?" + url.Values{"type": {"email"}, "value": {step.value}}.Encode())
		if err != nil || code != step.code {
			t.Fatalf("step %d (%s): %d, %v; want %d", i, step.value, code, err, step.code)
		}
		if n := conns.Load(); n != step.conns {
			t.Fatalf("step %d (%s): %d connections opened, want %d", i, step.value, n, step.conns)
		}
	}
	bad := &lookupConn{addr: u.Host, auth: "Bearer other"}
	defer bad.close()
	if code, err := bad.get("/v1/profiles?type=email&value=a"); err != nil || code != 401 {
		t.Fatalf("wrong token: %d, %v; want 401", code, err)
	}
}

// BenchmarkSleepLateness measures how late the dispatcher's two ways of
// waiting for a request's due time wake: a Go timer (time.Sleep) and
// sleepExactly, against an open-loop schedule of one due time every
// 500 µs (the gap at 2,000 lookups/s). After a late wake the next wait is
// shorter, or none, as in the dispatcher. It runs at a normal priority,
// with the kernel's 50 µs timer slack; the bench's client runs at a
// real-time one, without.
//
//	go test -run '^$' -bench BenchmarkSleepLateness -benchtime 5000x ./cmd/spine/
func BenchmarkSleepLateness(b *testing.B) {
	for _, c := range []struct {
		name  string
		sleep func(time.Duration)
	}{{"time.Sleep", time.Sleep}, {"sleepExactly", sleepExactly}} {
		b.Run(c.name, func(b *testing.B) {
			var late []float64
			next := time.Now()
			for b.Loop() {
				next = next.Add(500 * time.Microsecond)
				if d := time.Until(next); d > 0 {
					c.sleep(d)
				}
				late = append(late, float64(time.Since(next).Microseconds()))
			}
			slices.Sort(late)
			q := func(f float64) float64 { return late[int(f*float64(len(late)-1))] }
			b.ReportMetric(q(0.5), "p50-late-µs")
			b.ReportMetric(q(0.99), "p99-late-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}
