package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/schemas/canon"
)

// Latency probes: events timed from produce to visible in the engine and in ClickHouse.

type probe struct {
	id        string
	partition int32
	phase     int32
	sent      time.Time
	seen      time.Time // lookup-visible
	seenCH    time.Time // in the events table
	seenRepl  time.Time // answered by the lookup replica
	lost      bool      // its produce failed: never sent, so never timed
}

// probeSet holds every probe; per partition the unseen ones are a FIFO,
// because the engine applies a partition in order: once the head is
// visible, the next may be, and not before.
type probeSet struct {
	mu      sync.Mutex
	all     []*probe
	pending map[int32][]*probe // not lookup-visible yet
	// replica holds, per partition, the probes the lookup replica has not
	// answered yet (nil without a replica).
	replica map[int32][]*probe
	chNext  int // index into all of the oldest probe not yet in ClickHouse
}

func (s *probeSet) add(p *probe) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[int32][]*probe{}
	}
	s.all = append(s.all, p)
	s.pending[p.partition] = append(s.pending[p.partition], p)
	if s.replica != nil {
		s.replica[p.partition] = append(s.replica[p.partition], p)
	}
}

// lose takes a probe whose produce failed out of the queues: it would
// never be seen, and would hold back the probes behind it in its
// partition's queue. It counts as lost, not as unseen.
func (s *probeSet) lose(p *probe) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.seen.IsZero() {
		return // timed already: the broker kept it whatever the client says
	}
	p.lost = true
	drop := func(q []*probe) []*probe {
		return slices.DeleteFunc(q, func(x *probe) bool { return x == p })
	}
	s.pending[p.partition] = drop(s.pending[p.partition])
	if s.replica != nil {
		s.replica[p.partition] = drop(s.replica[p.partition])
	}
	s.advanceCH()
}

// advanceCH moves chNext past the probes ClickHouse holds or that were
// never sent. The caller holds mu.
func (s *probeSet) advanceCH() {
	for s.chNext < len(s.all) && (!s.all[s.chNext].seenCH.IsZero() || s.all[s.chNext].lost) {
		s.chNext++
	}
}

// replicaHeads returns the oldest probe of each partition the replica has
// not answered: the replica reads a partition of the profile stream in
// order, and the probes' profiles land on any of its partitions, so
// this is where to look first, not a guarantee of order.
func (s *probeSet) replicaHeads() []*probe {
	s.mu.Lock()
	defer s.mu.Unlock()
	heads := make([]*probe, 0, len(s.replica))
	for _, q := range s.replica {
		if len(q) > 0 {
			heads = append(heads, q[0])
		}
	}
	return heads
}

// seenByReplica marks the head probe h answered at now and returns the
// next of its partition, if any.
func (s *probeSet) seenByReplica(h *probe, now time.Time) *probe {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.replica[h.partition]
	if len(q) == 0 || q[0] != h {
		return nil // taken out as lost meanwhile (see lose)
	}
	h.seenRepl = now
	q = q[1:]
	s.replica[h.partition] = q
	if len(q) > 0 {
		return q[0]
	}
	return nil
}

func (s *probeSet) visibleCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.all {
		if !p.seen.IsZero() {
			n++
		}
	}
	return n
}

func probeJSON(id string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"type":"track","messageId":"%s","timestamp":"%s","anonymousId":"%s","event":"Bench Probe","properties":{"probe":true}}`,
		id, at.UTC().Format(time.RFC3339Nano), id)
}

func (b *benchRun) produceProbes(ctx context.Context, cl *kgo.Client) {
	if b.cfg.probeRate <= 0 {
		return
	}
	topic := b.o.TopicPrefix + string(canon.Web)
	n := 0
	every(ctx, time.Second/time.Duration(b.cfg.probeRate), func() {
		ph := b.phase.Load()
		if !ingesting(ph) {
			return
		}
		n++
		pr := &probe{id: fmt.Sprintf("bp-%s-%d", b.runID, n), partition: int32(n % b.o.Partitions), phase: ph}
		pr.sent = time.Now()
		b.probes.add(pr)
		rec := &kgo.Record{Topic: topic, Partition: pr.partition, Key: []byte(pr.id), Value: probeJSON(pr.id, pr.sent)}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				b.probes.lose(pr)
			}
		})
	})
}

// watchProbes polls engine.Lookup for the oldest unseen probe of every
// partition every millisecond.
func (b *benchRun) watchProbes(ctx context.Context) {
	every(ctx, time.Millisecond, func() {
		b.probes.mu.Lock()
		heads := make([]*probe, 0, len(b.probes.pending))
		for _, q := range b.probes.pending {
			if len(q) > 0 {
				heads = append(heads, q[0])
			}
		}
		b.probes.mu.Unlock()
		for _, h := range heads {
			for h != nil {
				if _, err := b.p.engine.Lookup(ctx, canon.Identifier{Type: canon.AnonymousID, Value: h.id}); err != nil {
					break
				}
				now := time.Now()
				b.probes.mu.Lock()
				q := b.probes.pending[h.partition]
				if len(q) == 0 || q[0] != h {
					// Taken out as lost meanwhile: its produce reported
					// a failure, though the broker kept it.
					b.probes.mu.Unlock()
					break
				}
				h.seen = now
				q = q[1:]
				b.probes.pending[h.partition] = q
				var nxt *probe
				if len(q) > 0 {
					nxt = q[0]
				}
				b.probes.mu.Unlock()
				b.tl.addProbe(now, float64(now.Sub(h.sent))/1e6)
				h = nxt
			}
		}
	})
}

// waitProbes waits, at most limit, until every probe is lookup-visible,
// answered by the replica if there is one and, with ClickHouse, in the
// events table.
func (b *benchRun) waitProbes(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b.probes.mu.Lock()
		left := 0
		for _, q := range b.probes.pending {
			left += len(q)
		}
		for _, q := range b.probes.replica {
			left += len(q)
		}
		if b.wh != nil {
			left += len(b.probes.all) - b.probes.chNext
		}
		b.probes.mu.Unlock()
		if left == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchProbesCH asks ClickHouse every 100 ms which of the oldest unseen
// probes the events table holds.
func (b *benchRun) watchProbesCH(ctx context.Context) {
	every(ctx, 100*time.Millisecond, func() {
		b.probes.mu.Lock()
		var ask []*probe
		for _, p := range b.probes.all[b.probes.chNext:] {
			if p.seenCH.IsZero() && !p.lost {
				ask = append(ask, p)
			}
			if len(ask) == 1000 {
				break
			}
		}
		b.probes.mu.Unlock()
		if len(ask) == 0 {
			return
		}
		ids := make([]string, len(ask))
		byID := map[string]*probe{}
		for i, p := range ask {
			ids[i] = p.id
			byID[p.id] = p
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := b.wh.Present(qctx, b.o.CHDatabase, canon.Web, ids)
		cancel()
		if err != nil {
			return // the sink may not have created the table yet
		}
		now := time.Now()
		b.probes.mu.Lock()
		for _, id := range got {
			byID[id].seenCH = now
		}
		b.probes.advanceCH()
		b.probes.mu.Unlock()
	})
}
