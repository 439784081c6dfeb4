package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The client measures every request it sends to a live server, and the
// summary orders its quantiles.
func TestLoadAgainstServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler()}
	go srv.Serve(ln)
	defer srv.Close()

	lat, err := load(ln.Addr().String(), 300*time.Millisecond, 400, 4)
	if err != nil {
		t.Fatal(err)
	}
	// 400 req/s for 0.3 s: about 120, each connection sending on its own.
	if len(lat) < 20 || len(lat) > 130 {
		t.Fatalf("%d requests measured, want about 120", len(lat))
	}
	s := summary(lat)
	if !strings.HasPrefix(s, "n=") || !strings.Contains(s, "p99=") {
		t.Fatalf("summary %q", s)
	}
	if got := summary([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}); got != "n=3 p50=2.00ms p99=2.00ms p999=2.00ms max=3.00ms" {
		t.Fatalf("summary of 1, 2, 3 ms: %q", got)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"server"}, {"client", "x"}, {"mmap", "f"}, {"nope", "x"}} {
		if err := run(args, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
