package main

import (
	"context"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

// The HTTP lookup load run while ingesting.

type lookupJob struct {
	due time.Time
	id  canon.Identifier
}

type lookupStats struct {
	mu      sync.Mutex
	service map[int32][]float64 // by phase
	sched   map[int32][]float64
	codes   map[string]int
	dropped atomic.Int64
}

func (s *lookupStats) add(phase int32, service, sched float64, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.service == nil {
		s.service, s.sched, s.codes = map[int32][]float64{}, map[int32][]float64{}, map[string]int{}
	}
	s.service[phase] = append(s.service[phase], service)
	s.sched[phase] = append(s.sched[phase], sched)
	s.codes[code]++
}

// lookupIDs are the identifiers the load asks for: every person's.
func lookupIDs(t gen.Truth) []canon.Identifier {
	var out []canon.Identifier
	for _, p := range t.Persons {
		out = append(out, p.Identifiers...)
	}
	return out
}

// lookupLoad sends lookups open-loop at cfg.lookupRate a second, in ticks
// of 10 ms, to a pool of workers over keep-alive connections. A request
// that finds every worker busy waits in a queue (its wait counts in the
// scheduled latency); one that finds the queue full is dropped and
// counted. The load is bounded by the run's duration limit and pauses
// outside the ingesting phases.
func (b *benchRun) lookupLoad(ctx context.Context, ids []canon.Identifier) {
	if len(ids) == 0 {
		return
	}
	const workers, tick = 32, 10 * time.Millisecond
	jobs := make(chan lookupJob, 2*b.cfg.lookupRate)
	tr := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://" + b.o.HTTP + "/v1/profiles?"
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				ph := b.phase.Load()
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", base+url.Values{"type": {string(j.id.Type)}, "value": {j.id.Value}}.Encode(), nil)
				req.Header.Set("Authorization", "Bearer "+b.token)
				resp, err := hc.Do(req)
				code := "error"
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = strconv.Itoa(resp.StatusCode)
				} else if ctx.Err() != nil {
					continue
				}
				end := time.Now()
				svc, sch := float64(end.Sub(start))/1e6, float64(end.Sub(j.due))/1e6
				b.lookups.add(ph, svc, sch, code)
				b.tl.addLookup(end, svc)
			}
		})
	}
	defer func() { close(jobs); wg.Wait() }()
	rng := mrand.New(mrand.NewPCG(uint64(b.cfg.seed), 7))
	perTick := float64(b.cfg.lookupRate) * tick.Seconds()
	budget := int64(float64(b.cfg.lookupRate) * b.cfg.limit.Seconds())
	t := time.NewTicker(tick)
	defer t.Stop()
	carry := 0.0
	var sent int64
	for sent < budget {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if !b.loading() {
				carry = 0
				continue
			}
			carry += perTick
			for ; carry >= 1; carry-- {
				select {
				case jobs <- lookupJob{due: now, id: ids[rng.IntN(len(ids))]}:
					sent++
				default:
					b.lookups.dropped.Add(1)
				}
			}
		}
	}
}
