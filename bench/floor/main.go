// Command floor measures what a machine allows any lookup server, apart
// from Spine: the latency of a trivial HTTP server answering a fixed
// profile-sized body, and the stalls of writing a fresh memory-mapped
// file, as Badger writes its value log. Run it beside a load (spine
// bench) to see how much of a lookup's tail the machine itself adds.
//
//	go run ./bench/floor server 127.0.0.1:18080
//	go run ./bench/floor client 127.0.0.1:18080 8s      # 2,000 req/s over 32 keep-alive connections
//	go run ./bench/floor mmap /var/tmp/floor.dat none   # or random: MADV_RANDOM on the mapping
//
// Prefix a mode with `chrt -f 10` to run it at a real-time priority.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: floor server ADDR | client ADDR DURATION | mmap FILE none|random")
	}
	switch args[0] {
	case "server":
		return http.ListenAndServe(args[1], handler())
	case "client":
		if len(args) < 3 {
			return fmt.Errorf("client needs ADDR DURATION")
		}
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		lat, err := load(args[1], d, 2000, 32)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, summary(lat))
		return nil
	case "mmap":
		if len(args) < 3 {
			return fmt.Errorf("mmap needs FILE none|random")
		}
		return mmapWrite(args[1], args[2], out)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// handler answers every request with a fixed JSON body of about 1 KB, the
// size of a lookup's answer.
func handler() http.Handler {
	body := []byte(`{"profile_id":"p-1","traits":{"email":"a@example.org"},"padding":"` + strings.Repeat("x", 900) + `"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// load sends rate requests a second for d over conns keep-alive
// connections, each on its own goroutine at an even share of the rate, and
// returns each request's time from send to the last byte read.
func load(addr string, d time.Duration, rate, conns int) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	interval := time.Second * time.Duration(conns) / time.Duration(rate)
	end := time.Now().Add(d)
	for w := range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			next := time.Now().Add(interval * time.Duration(w) / time.Duration(conns))
			for time.Now().Before(end) {
				time.Sleep(time.Until(next))
				start := time.Now()
				if _, err := io.WriteString(c, "GET /v1/profiles HTTP/1.1\r\nHost: floor\r\n\r\n"); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				took := time.Since(start)
				mu.Lock()
				lat = append(lat, took)
				mu.Unlock()
				next = next.Add(interval)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return lat, errs[0]
	}
	return lat, nil
}

// summary formats the count and the p50, p99, p99.9 and max of d.
func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "n=0"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000 }
	return fmt.Sprintf("n=%d p50=%.2fms p99=%.2fms p999=%.2fms max=%.2fms", len(s), q(.5), q(.99), q(.999), q(1))
}
