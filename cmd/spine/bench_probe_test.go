package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spinecdp/spine/bench"
	"github.com/spinecdp/spine/ingest/kafkatest"
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
// queues, so the probes behind it are looked up; ClickHouse's cursor moves
// past it; an answer for it popped off no other probe; and it counts as
// not sent, not as unseen, for the engine, the replica and ClickHouse.
func TestLostProbe(t *testing.T) {
	b := &benchRun{replica: &replicaChild{}, wh: &bench.Warehouse{}}
	b.probes.replica = map[int32][]*probe{}
	a := &probe{id: "a", partition: 0, phase: phasePaced}
	c := &probe{id: "c", partition: 0, phase: phasePaced}
	d := &probe{id: "d", partition: 1, phase: phasePaced}
	e := &probe{id: "e", partition: 0, phase: phasePaced}
	for _, p := range []*probe{a, c, d, e} {
		b.probes.add(p)
	}
	a.seen, a.seenRepl, a.seenCH = a.sent.Add(time.Millisecond), a.sent.Add(time.Millisecond), a.sent.Add(time.Millisecond)
	b.probes.pending[0], b.probes.replica[0] = b.probes.pending[0][1:], b.probes.replica[0][1:]

	b.probes.lose(c)
	if q := b.probes.pending[0]; len(q) != 1 || q[0] != e {
		t.Fatalf("pending of partition 0 = %v, want [e]", q)
	}
	if q := b.probes.replica[0]; len(q) != 1 || q[0] != e {
		t.Fatalf("replica queue of partition 0 = %v, want [e]", q)
	}
	if b.probes.chNext != 2 {
		t.Fatalf("chNext = %d, want 2 (past a, in ClickHouse, and c, lost)", b.probes.chNext)
	}
	if next := b.probes.seenByReplica(c, time.Now()); next != nil || !c.seenRepl.IsZero() {
		t.Fatalf("an answer for the lost probe: next %v, stamped %v; want nothing done", next, c.seenRepl)
	}
	if q := b.probes.replica[0]; len(q) != 1 || q[0] != e {
		t.Fatalf("replica queue after the answer = %v, want [e] untouched", q)
	}
	b.probes.lose(a) // timed already: the broker kept it
	if a.lost {
		t.Fatal("a probe already seen was marked lost")
	}

	for _, p := range []*probe{d, e} {
		p.seen, p.seenRepl, p.seenCH = p.sent.Add(time.Millisecond), p.sent.Add(time.Millisecond), p.sent.Add(time.Millisecond)
	}
	res := &results{Probe: map[string]latency{}}
	b.collect(res)
	for name, got := range map[string]latency{"engine": res.Probe["paced"], "replica": res.ProbeReplica["paced"], "clickhouse": res.ProbeCH["paced"]} {
		if got.N != 3 || got.Unseen != 0 || got.Lost != 1 {
			t.Errorf("%s: n=%d unseen=%d lost=%d, want 3, 0, 1", name, got.N, got.Unseen, got.Lost)
		}
	}
}

// TestProduceCorpusPhaseEnd: the end of a phase stops the producing but
// fails no record already handed to the client, nor another loop's record
// buffered behind them (a probe). The broker holds the first produce
// request while the phase ends, so the records behind it are buffered.
func TestProduceCorpusPhaseEnd(t *testing.T) {
	addr, c := kafkatest.Cluster(t, "spine.web")
	release := make(chan struct{})
	held := make(chan struct{})
	var once sync.Once
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		once.Do(func() {
			close(held)
			c.SleepControl(func() { <-release })
		})
		return nil, nil, false
	})
	cl := kafkatest.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	corp := &corpus{topics: []string{"spine.web"}}
	for i := range 3000 {
		key, val := fmt.Sprintf("k%d", i), fmt.Sprintf(`{"n":%d}`, i)
		r := corpusRec{keyOff: len(corp.buf), keyLen: int32(len(key))}
		corp.buf = append(corp.buf, key...)
		r.valOff, r.valLen = len(corp.buf), int32(len(val))
		corp.buf = append(corp.buf, val...)
		corp.recs = append(corp.recs, r)
	}
	stop, end := context.WithCancel(t.Context())
	type result struct {
		n   int
		err error
	}
	out := make(chan result, 1)
	go func() {
		// 2,000 a second: records keep coming while the first request is held.
		n, err := produceCorpus(stop, t.Context(), cl, corp, kafkatest.Partitions, 2000)
		out <- result{n, err}
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no produce request reached the broker")
	}
	time.Sleep(100 * time.Millisecond)
	probeErr := make(chan error, 1)
	for p := range int32(kafkatest.Partitions) {
		cl.Produce(t.Context(), &kgo.Record{Topic: "spine.web", Partition: p, Value: []byte("probe")}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case probeErr <- err:
				default:
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	end() // the phase ends with records and probes buffered
	time.Sleep(100 * time.Millisecond)
	close(release)
	var r result
	select {
	case r = <-out:
	case <-time.After(30 * time.Second):
		t.Fatal("produceCorpus did not return")
	}
	if err := cl.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-probeErr:
		t.Errorf("a probe buffered behind the phase's records failed: %v", err)
	default:
	}
	if !errors.Is(r.err, context.Canceled) || r.n == 0 || r.n == len(corp.recs) {
		t.Fatalf("produceCorpus = %d, %v; want part of the corpus and the phase's end (context.Canceled)", r.n, r.err)
	}
	var stored int64
	for _, p := range kafkatest.EndOffsets(t, addr, "spine.web")["spine.web"] {
		stored += p
	}
	if want := int64(r.n + kafkatest.Partitions); stored != want {
		t.Errorf("the broker holds %d records, want %d acknowledged and %d probes", stored, r.n, kafkatest.Partitions)
	}
}
