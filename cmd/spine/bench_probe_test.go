package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestReplicaProbeQueue: with a replica, each probe also waits in its
// partition's replica queue; answering the head hands on the next of that
// partition, and waitProbes counts the queue until it is empty.
func TestReplicaProbeQueue(t *testing.T) {
	b := &benchRun{}
	b.probes.replica = map[int32][]*probe{}
	p0a, p0b, p1a := &probe{id: "a", partition: 0}, &probe{id: "b", partition: 0}, &probe{id: "c", partition: 1}
	for _, p := range []*probe{p0a, p0b, p1a} {
		b.probes.add(p)
		p.seen = time.Now() // engine-visible: only the replica's queue is left
		b.probes.pending[p.partition] = nil
	}
	ids := func(ps []*probe) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.id)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(b.probes.replicaHeads()); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("heads = %v, want the oldest of each partition [a c]", got)
	}
	now := time.Now()
	if next := b.probes.seenByReplica(p0a, now); next != p0b {
		t.Fatalf("after a: next = %v, want b", next)
	}
	if !p0a.seenRepl.Equal(now) || !p0b.seenRepl.IsZero() {
		t.Errorf("seenRepl a %v b %v, want a stamped and b not", p0a.seenRepl, p0b.seenRepl)
	}
	if got := ids(b.probes.replicaHeads()); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("heads = %v, want [b c]", got)
	}

	// waitProbes waits for the replica's queue too, at most its limit.
	ctx := context.Background()
	start := time.Now()
	b.waitProbes(ctx, 50*time.Millisecond)
	if time.Since(start) < 50*time.Millisecond {
		t.Error("waitProbes returned with probes the replica has not answered")
	}
	if next := b.probes.seenByReplica(p0b, now); next != nil {
		t.Errorf("after b: next = %v, want none", next)
	}
	b.probes.seenByReplica(p1a, now)
	done := make(chan struct{})
	go func() { b.waitProbes(ctx, 10*time.Second); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waitProbes still waiting with every probe answered")
	}
}

// TestLostProbe: a probe whose produce failed leaves its partition's
// queues, so the probes behind it are looked up, and it counts as not
// sent rather than unseen; ClickHouse's cursor moves past it.
func TestLostProbe(t *testing.T) {
	b := &benchRun{}
	b.probes.replica = map[int32][]*probe{}
	a, c, d := &probe{id: "a", partition: 0, phase: phasePaced}, &probe{id: "c", partition: 0, phase: phasePaced}, &probe{id: "d", partition: 1, phase: phasePaced}
	for _, p := range []*probe{a, c, d} {
		b.probes.add(p)
	}
	b.probes.lose(a)
	if q := b.probes.pending[0]; len(q) != 1 || q[0] != c {
		t.Fatalf("pending of partition 0 = %v, want [c]", q)
	}
	if q := b.probes.replica[0]; len(q) != 1 || q[0] != c {
		t.Fatalf("replica queue of partition 0 = %v, want [c]", q)
	}
	if b.probes.chNext != 1 {
		t.Fatalf("chNext = %d, want 1 (past the lost probe)", b.probes.chNext)
	}
	for _, p := range []*probe{c, d} {
		p.seen, p.seenRepl = p.sent.Add(time.Millisecond), p.sent.Add(time.Millisecond)
	}
	res := &results{Probe: map[string]latency{}}
	b.collect(res)
	got := res.Probe["paced"]
	if got.N != 2 || got.Unseen != 0 || got.Lost != 1 {
		t.Fatalf("paced probes: n=%d unseen=%d lost=%d, want 2, 0, 1", got.N, got.Unseen, got.Lost)
	}
}
