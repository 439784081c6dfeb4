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
