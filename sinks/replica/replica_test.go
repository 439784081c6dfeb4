package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/kafka"
)

// waitLimit bounds every wait: reading a few dozen records from a local
// broker takes milliseconds; the bound only turns a hang into a failure.
const waitLimit = 15 * time.Second

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newSink is the engine's Kafka sink on addr: the replica is tested
// against the records the engine really publishes.
func newSink(t *testing.T, addr string) *kafka.Sink {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.PseudonymKey = []byte("pseudonym-key-for-tests-0123456789")
	s, err := kafka.New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("sink Close: %v", err)
		}
	})
	return s
}

func write(t *testing.T, s *kafka.Sink, batch ...canon.Change) {
	t.Helper()
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("sink Write: %v", err)
	}
}

// profileChange is a profile change whose JSON (Raw, which the sink
// publishes as is) is profileRecord's.
func profileChange(seq uint64, pid string, ids []canon.Identifier, merged ...string) canon.Change {
	raw := profileRecord(pid, seq, ids, merged...)
	p := &canon.Profile{ID: pid, Version: seq, MergedFrom: merged}
	return canon.Change{Seq: seq, Kind: canon.ChangeProfile, Profile: p, Raw: raw}
}

func absorbed(seq uint64, pid, survivor string) canon.Change {
	return canon.Change{Seq: seq, Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: pid, Reason: "absorbed", Survivor: survivor}}
}

func erased(seq uint64, pids ...string) canon.Change {
	return canon.Change{Seq: seq, Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: pids, Hashes: []string{"h"}}}
}

func email(i int) canon.Identifier {
	return canon.Identifier{Type: canon.Email, Value: fmt.Sprintf("u%02d@shop.io", i)}
}

// replicaHarness is a replica under test, its registry and the way to stop
// it.
type replicaHarness struct {
	*Replica
	reg  *prometheus.Registry
	stop func() error // cancels Run and returns what it returned
}

// startReplica builds a replica on addr and runs it until the test ends
// (or stop). mod may change the config first.
func startReplica(t *testing.T, addr string, mod func(*Config)) *replicaHarness {
	t.Helper()
	h := newReplica(t, addr, mod)
	h.start(t)
	return h
}

// start runs the replica until the test ends or stop is called.
func (h *replicaHarness) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var stopped bool
	var runErr error
	h.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitLimit):
				t.Fatalf("Run did not return within %v of its context's end", waitLimit)
			}
		}
		return runErr
	}
	t.Cleanup(func() { _ = h.stop() }) // before Close: Cleanups run last first
}

func newReplica(t *testing.T, addr string, mod func(*Config)) *replicaHarness {
	t.Helper()
	cfg := DefaultConfig([]string{addr})
	cfg.FetchMaxWait = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := New(cfg, log, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(r.Close)
	return &replicaHarness{Replica: r, reg: reg}
}

// metric returns the samples of name in the registry, by their labels
// ("k=v,k=v"; "" for none).
func (h *replicaHarness) metric(t *testing.T, name string) map[string]float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(ls)
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[strings.Join(ls, ",")] = v
		}
	}
	return out
}

// TestReplicaFollowsTheStream: a replica reads what the engine's sink
// published before it started, is ready only once it has, answers lookups
// with the bytes published, follows later merges and erasures, counts
// what it read, and stops cleanly.
func TestReplicaFollowsTheStream(t *testing.T) {
	// Two brokers, so that the fetches from one can be held while the
	// other's partitions are read.
	addr, c := kafkatest.ClusterWith(t, kfake.NumBrokers(2), kfake.SeedTopics(kafkatest.Partitions, "spine.profiles", "spine.identity"))
	for p := range int32(kafkatest.Partitions) {
		if err := c.MoveTopicPartition("spine.profiles", p, min(p, 1)); err != nil {
			t.Fatal(err)
		}
	}
	sink := newSink(t, addr)

	// Before the replica starts: 24 people, p00 absorbs p01, p02 is
	// erased; and two records that are not profiles.
	var batch []canon.Change
	for i := range 24 {
		batch = append(batch, profileChange(uint64(i+1), fmt.Sprintf("p%02d", i), ids(email(i))))
	}
	p00 := profileChange(25, "p00", ids(email(0), email(1)), "p01")
	batch = append(batch, p00, absorbed(26, "p01", "p00"), erased(27, "p02"))
	write(t, sink, batch...)
	kafkatest.ProduceRecords(t, addr,
		&kgo.Record{Topic: "spine.profiles", Key: []byte("junk"), Value: []byte("{"), Headers: []kgo.RecordHeader{{Key: kafka.HeaderSeq, Value: []byte("28")}}},
		&kgo.Record{Topic: "spine.profiles", Key: []byte("p77"), Value: profileRecord("p78", 29, ids(ph1))},
	)

	// The records on the partitions of one broker (partition 0's), held,
	// and on the other's, read first.
	ends := kafkatest.EndOffsets(t, addr, "spine.profiles")["spine.profiles"]
	held := c.LeaderFor("spine.profiles", 0)
	var heldRecs, freeRecs float64
	filled := 0 // partitions holding records
	for p, end := range ends {
		if c.LeaderFor("spine.profiles", p) == held {
			heldRecs += float64(end)
		} else {
			freeRecs += float64(end)
		}
		if end > 0 {
			filled++
		}
	}
	if heldRecs == 0 || freeRecs == 0 {
		t.Fatalf("fixture: %v records on broker %d's partitions, %v on the other's; want some on both", heldRecs, held, freeRecs)
	}
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if c.CurrentNode() == held {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false // then answered as usual
	})

	h := newReplica(t, addr, nil)
	if h.Ready() {
		t.Fatal("Ready() before Run")
	}
	h.start(t)
	taken := func() float64 {
		n := h.metric(t, "spine_replica_bad_records_total")[""]
		for _, v := range h.metric(t, "spine_replica_records_total") {
			n += v
		}
		return n
	}
	// Run is past its start, reading the stream: it must not be ready
	// while one broker's partitions are unread.
	waitFor(t, "the records of the broker not held", func() bool { return taken() == freeRecs })
	if h.Ready() {
		t.Fatalf("Ready() with the records of broker %d's partitions unread", held)
	}
	close(release)
	waitFor(t, "Ready()", h.Ready)
	// Ready is set once every record present at start is read: when it
	// is seen true, all of them must be in the index.
	if got := taken(); got != heldRecs+freeRecs {
		t.Errorf("records read when ready = %v, want all %v", got, heldRecs+freeRecs)
	}
	if got, want := h.Index().Size(), (Size{Profiles: 22, Identifiers: 23, Aliases: 1}); got.Profiles != want.Profiles || got.Identifiers != want.Identifiers || got.Aliases != want.Aliases {
		t.Fatalf("Size() when ready = %+v, want %+v", got, want)
	}
	ctx := t.Context()
	for i := 3; i < 24; i++ {
		p, err := h.Lookup(ctx, email(i))
		if err != nil || p.ID != fmt.Sprintf("p%02d", i) || p.Version != uint64(i+1) {
			t.Errorf("Lookup(%s) = %s v%d, %v; want p%02d v%d", email(i).Value, p.ID, p.Version, err, i, i+1)
		}
	}
	for _, id := range []canon.Identifier{email(0), email(1)} {
		if b, err := h.LookupJSON(ctx, id); err != nil || !bytes.Equal(b, p00.Raw) {
			t.Errorf("LookupJSON(%s) = %s, %v; want the survivor's record as published", id.Value, b, err)
		}
	}
	if b, err := h.ProfileJSON(ctx, "p01"); err != nil || !bytes.Equal(b, p00.Raw) {
		t.Errorf("ProfileJSON(p01) = %s, %v; want its survivor p00's record", b, err)
	}
	if _, err := h.Lookup(ctx, email(2)); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("Lookup of the erased p02's email = %v, want canon.ErrNotFound", err)
	}
	if _, err := h.Profile(ctx, "p02"); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("Profile(p02) after its erasure = %v, want canon.ErrNotFound", err)
	}
	if _, err := h.Profile(ctx, "p77"); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("Profile(p77), a record whose profile_id is another's = %v, want canon.ErrNotFound", err)
	}

	wantMetrics := func(profiles, tombstones float64, live, identifiers float64) {
		t.Helper()
		for name, want := range map[string]map[string]float64{
			"spine_replica_records_total":     {"kind=profile": profiles, "kind=tombstone": tombstones},
			"spine_replica_bad_records_total": {"": 2},
			"spine_replica_profiles":          {"": live},
			"spine_replica_identifiers":       {"": identifiers},
			"spine_replica_bytes":             {"": float64(h.Index().Size().Bytes)},
		} {
			got := h.metric(t, name)
			for labels, v := range want {
				if got[labels] != v {
					t.Errorf("%s{%s} = %v, want %v (all: %v)", name, labels, got[labels], v, got)
				}
			}
		}
	}
	wantMetrics(25, 2, 22, 23)
	lag := h.metric(t, "spine_replica_lag_records")
	if len(lag) != filled {
		t.Errorf("spine_replica_lag_records has %d partitions (%v), want the %d that hold records", len(lag), lag, filled)
	}
	for p, v := range lag {
		if v != 0 {
			t.Errorf("spine_replica_lag_records{%s} = %v once ready, want 0", p, v)
		}
	}

	// Later: p04 absorbs p03, p00 (with p01) is erased, p30 arrives. The
	// records are on different partitions: wait for all of them.
	p04 := profileChange(31, "p04", ids(email(4), email(3)), "p03")
	write(t, sink, absorbed(30, "p03", "p04"), p04, erased(32, "p00", "p01"), profileChange(33, "p30", ids(email(30))))
	waitFor(t, "the later changes", func() bool {
		b, err := h.LookupJSON(ctx, email(3))
		_, err0 := h.LookupJSON(ctx, email(0))
		_, err30 := h.LookupJSON(ctx, email(30))
		b3, err3 := h.ProfileJSON(ctx, "p03") // p03's own record, until its tombstone
		return err == nil && bytes.Equal(b, p04.Raw) && errors.Is(err0, canon.ErrNotFound) && err30 == nil &&
			err3 == nil && bytes.Equal(b3, p04.Raw)
	})
	for _, pid := range []string{"p00", "p01"} {
		if _, err := h.ProfileJSON(ctx, pid); !errors.Is(err, canon.ErrNotFound) {
			t.Errorf("ProfileJSON(%s) after the erasure = %v, want canon.ErrNotFound", pid, err)
		}
	}
	if _, err := h.LookupJSON(ctx, email(1)); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("LookupJSON of the erased p00's second email = %v, want canon.ErrNotFound", err)
	}
	// p03's, p00's and p01's tombstones (the erasure's of an absorbed id
	// included) are read too.
	waitFor(t, "every tombstone counted", func() bool {
		return h.metric(t, "spine_replica_records_total")["kind=tombstone"] == 5
	})
	wantMetrics(27, 5, 21, 22)

	if err := h.stop(); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}

// TestReplicaReadyOnEmptyStream: with no record to read, the replica is
// ready as soon as it has seen that.
func TestReplicaReadyOnEmptyStream(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, "spine.profiles")
	h := newReplica(t, addr, nil)
	if h.Ready() {
		t.Fatal("Ready() before Run")
	}
	h.start(t)
	waitFor(t, "Ready() on an empty stream", h.Ready)
	if got := h.Index().Size(); got != (Size{}) {
		t.Errorf("Size() = %+v, want empty", got)
	}
}

// TestReplicaReadyWithAnEmptiedPartition: a partition whose records are
// all gone (deleted, or expired tombstones) still has an end offset above
// 0; the replica must not wait to read up to it.
func TestReplicaReadyWithAnEmptiedPartition(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
	var batch []canon.Change
	for i := range 12 {
		batch = append(batch, profileChange(uint64(i+1), fmt.Sprintf("p%02d", i), ids(email(i))))
	}
	write(t, newSink(t, addr), batch...)
	ends := kafkatest.EndOffsets(t, addr, "spine.profiles")["spine.profiles"]
	var emptied kadm.Offsets
	var left int64
	for _, p := range slices.Sorted(maps.Keys(ends)) {
		if ends[p] > 0 && len(emptied) == 0 {
			emptied.Add(kadm.Offset{Topic: "spine.profiles", Partition: p, At: ends[p]})
		} else {
			left += ends[p]
		}
	}
	if left == 0 {
		t.Fatalf("fixture: every record on one partition (%v)", ends)
	}
	res, err := kadm.NewClient(kafkatest.Client(t, addr)).DeleteRecords(t.Context(), emptied)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}

	h := startReplica(t, addr, nil)
	waitFor(t, "Ready() with an emptied partition", h.Ready)
	if got := h.Index().Size().Profiles; int64(got) != left {
		t.Errorf("profiles when ready = %d, want the %d left on the other partitions", got, left)
	}
}

// TestReplicaWaitsForTheTopic: started before the engine created the
// profile stream, the replica waits for it, not ready, and reads it once
// it exists. Run returns nil when cancelled while waiting.
func TestReplicaWaitsForTheTopic(t *testing.T) {
	addr, _ := kafkatest.Cluster(t) // no topics, no auto-creation

	h := startReplica(t, addr, nil)
	if h.Ready() {
		t.Fatal("Ready() without a profile stream")
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run cancelled while waiting for the topic = %v, want nil", err)
	}
	if h.Ready() {
		t.Error("Ready() without a profile stream")
	}

	h = startReplica(t, addr, nil)
	adm := kadm.NewClient(kafkatest.Client(t, addr))
	if _, err := adm.CreateTopic(t.Context(), 2, 1, nil, "spine.profiles"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	write(t, newSink(t, addr), profileChange(1, "p1", ids(em1)))
	waitFor(t, "Ready() once the topic exists", h.Ready)
	waitFor(t, "the record produced once the topic exists", func() bool {
		_, err := h.LookupJSON(t.Context(), em1)
		return err == nil
	})
}

// TestReplicaStopsWhenFull: past its memory bound the replica stops with
// ErrFull rather than serve a copy that no longer follows the stream.
func TestReplicaStopsWhenFull(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
	write(t, newSink(t, addr), profileChange(1, "p1", ids(em1)), profileChange(2, "p2", ids(em2)))

	h := newReplica(t, addr, func(c *Config) { c.MaxBytes = 64 })
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	err := h.Run(ctx)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Run with a tiny bound = %v, want ErrFull", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Run returned only when its context ended")
	}
	if h.Ready() {
		t.Error("Ready() after stopping on ErrFull with records unread")
	}
	if got := h.Index().Size(); got != (Size{}) {
		t.Errorf("Size() = %+v, want nothing taken", got)
	}
	if got := h.metric(t, "spine_replica_records_total"); got["kind=profile"] != 0 {
		t.Errorf("spine_replica_records_total = %v, want no record counted as taken", got)
	}
}

// TestReplicaNewRefuses: New checks its config, and metrics registered twice.
func TestReplicaNewRefuses(t *testing.T) {
	good := DefaultConfig([]string{"127.0.0.1:1"})
	for name, mod := range map[string]func(*Config){
		"no brokers":         func(c *Config) { c.Brokers = nil },
		"no topic":           func(c *Config) { c.Topic = "" },
		"a negative bound":   func(c *Config) { c.MaxBytes = -1 },
		"metrics registered": nil,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			reg := prometheus.NewRegistry()
			if mod != nil {
				mod(&cfg)
			} else {
				r, err := New(cfg, slog.New(slog.DiscardHandler), reg)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
			}
			if r, err := New(cfg, slog.New(slog.DiscardHandler), reg); err == nil {
				r.Close()
				t.Errorf("New = nil error, want one")
			}
		})
	}
}

// TestReplicaUnreadyWhenCutOff: a replica that has not applied what was
// published StaleAfter ago, or cannot list the stream's end offsets for
// that long, may be missing an erasure, so it reports not ready until it
// follows the stream again. Held fetches alone, with nothing new to read,
// miss nothing.
func TestReplicaUnreadyWhenCutOff(t *testing.T) {
	addr, c := kafkatest.Cluster(t, "spine.profiles", "spine.identity")
	sink := newSink(t, addr)
	write(t, sink, profileChange(1, "p00", ids(email(0))), profileChange(2, "p01", ids(email(1))))
	var holdFetch, holdList atomic.Bool
	release := make(chan struct{})
	hold := func(flag *atomic.Bool) func(kmsg.Request) (kmsg.Response, error, bool) {
		return func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if flag.Load() {
				c.SleepControl(func() { <-release })
			}
			return nil, nil, false // then answered as usual
		}
	}
	c.ControlKey(int16(kmsg.Fetch), hold(&holdFetch))
	c.ControlKey(int16(kmsg.ListOffsets), hold(&holdList))
	// Long enough that a loaded machine does not delay a listing past it.
	const stale = time.Second
	h := startReplica(t, addr, func(c *Config) { c.StaleAfter = stale })
	waitFor(t, "Ready() once read", h.Ready)

	holdFetch.Store(true)
	time.Sleep(2 * stale) // nothing new: still ready
	if !h.Ready() {
		t.Fatal("not Ready() with fetches held and nothing new to read")
	}
	write(t, sink, erased(3, "p01"))
	waitFor(t, "not Ready() with an erasure it cannot fetch", func() bool { return !h.Ready() })
	if _, err := h.Index().ProfileJSON("p01"); err != nil {
		t.Fatalf("fixture: the erasure reached the index while fetches were held: %v", err)
	}
	// Not ready, it does not answer with what it holds: p01 is erased.
	for _, id := range []string{"p00", "p01"} {
		if _, err := h.ProfileJSON(t.Context(), id); !errors.Is(err, canon.ErrUnavailable) {
			t.Errorf("ProfileJSON(%s) while not following the stream = %v, want ErrUnavailable", id, err)
		}
	}
	if _, err := h.LookupJSON(t.Context(), email(1)); !errors.Is(err, canon.ErrUnavailable) {
		t.Errorf("LookupJSON while not following the stream = %v, want ErrUnavailable", err)
	}
	if !h.CaughtUp() {
		t.Error("CaughtUp() = false once the stream was read, while cut off") // --serve-stale's /readyz
	}
	h.cfg.ServeStale = true // as --serve-stale: what it holds, erased or not
	if _, err := h.ProfileJSON(t.Context(), "p01"); err != nil {
		t.Errorf("ProfileJSON(p01) with ServeStale = %v, want the stale profile", err)
	}
	h.cfg.ServeStale = false
	holdFetch.Store(false)
	close(release)
	waitFor(t, "Ready() once the erasure is applied", h.Ready)
	if _, err := h.Index().ProfileJSON("p01"); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("p01 after the erasure = %v, want not found", err)
	}

	release = make(chan struct{})
	holdList.Store(true)
	waitFor(t, "not Ready() when end offsets cannot be listed", func() bool { return !h.Ready() })
	holdList.Store(false)
	close(release)
	waitFor(t, "Ready() once listings answer again", h.Ready)
}
