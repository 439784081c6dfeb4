package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

func ev(ch canon.Channel, id string, kind canon.Kind, at int, ids ...canon.Observation) canon.Event {
	return canon.Event{Channel: ch, MessageID: id, Kind: kind, Time: t0.Add(time.Duration(at) * time.Minute), Identifiers: ids}
}

func obs(t canon.IDType, v string) canon.Observation {
	return canon.Observation{Identifier: canon.Identifier{Type: t, Value: v}, Trust: canon.Asserted}
}

// open starts an engine on dir and stops it at cleanup.
func open(t *testing.T, dir string, sinks ...string) *engine.Engine {
	t.Helper()
	e, stop := start(t, dir, sinks...)
	t.Cleanup(stop)
	return e
}

// start starts an engine on dir; stop stops and closes it.
func start(t *testing.T, dir string, sinks ...string) (*engine.Engine, func()) {
	t.Helper()
	cfg := engine.DefaultConfig(dir)
	cfg.Store.SyncWrites = false
	cfg.Sinks = sinks
	return startCfg(t, cfg, nil)
}

// startCfg starts an engine with cfg; stop stops and closes it, once.
func startCfg(t *testing.T, cfg engine.Config, log *slog.Logger) (*engine.Engine, func()) {
	t.Helper()
	return startReg(t, cfg, log, nil)
}

// startReg is startCfg with the engine's metrics registered in reg.
func startReg(t *testing.T, cfg engine.Config, log *slog.Logger, reg prometheus.Registerer) (*engine.Engine, func()) {
	t.Helper()
	e, err := engine.Open(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	return e, sync.OnceFunc(func() {
		cancel()
		<-done
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
}

func lookup(t *testing.T, e *engine.Engine, typ canon.IDType, v string) canon.Profile {
	t.Helper()
	p, err := e.Lookup(t.Context(), canon.Identifier{Type: typ, Value: v})
	if err != nil {
		t.Fatalf("Lookup(%s:%s): %v", typ, v, err)
	}
	return p
}

func TestStitchAndCount(t *testing.T) {
	e := open(t, t.TempDir())
	order := ev(canon.Web, "m3", canon.KindOrder, 3, obs(canon.AnonymousID, "a1"))
	order.Amount = &canon.Money{Currency: "EUR", Micros: 12_500_000}
	batch := canon.Batch{Events: []canon.Event{
		ev(canon.Web, "m1", canon.KindPage, 1, obs(canon.AnonymousID, "a1")),
		ev(canon.Mobile, "m2", canon.KindScreen, 2, obs(canon.DeviceID, "d1")),
		order,
		// Sign-up on the web links the cookie; login on mobile links the device.
		ev(canon.Web, "m4", canon.KindIdentify, 4, obs(canon.AnonymousID, "a1"), obs(canon.UserID, "u1"), obs(canon.Email, "bob@shop.io")),
		ev(canon.Mobile, "m5", canon.KindLogin, 5, obs(canon.DeviceID, "d1"), obs(canon.UserID, "u1")),
	}, Positions: map[canon.Partition]int64{{Topic: "spine.web", Partition: 0}: 42}}
	if err := e.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	p := lookup(t, e, canon.DeviceID, "d1")
	if q := lookup(t, e, canon.AnonymousID, "a1"); q.ID != p.ID {
		t.Fatalf("cookie and device in different profiles: %s, %s", q.ID, p.ID)
	}
	c := p.Computed
	if c.EventsByChannel[canon.Web] != 3 || c.EventsByChannel[canon.Mobile] != 2 || c.OrderCount != 1 || c.TotalSpend["EUR"] != 12_500_000 {
		t.Errorf("computed = %+v", c)
	}
	if p.Level != canon.Registered || c.LifecycleStage != canon.StageCustomer {
		t.Errorf("level %s, stage %s", p.Level, c.LifecycleStage)
	}
	if len(p.MergedFrom) != 1 {
		t.Errorf("merged_from = %v, want the absorbed profile", p.MergedFrom)
	}
	// The absorbed id answers with the survivor.
	q, err := e.Profile(t.Context(), p.MergedFrom[0])
	if err != nil || q.ID != p.ID {
		t.Errorf("Profile(absorbed) = %s, %v; want %s", q.ID, err, p.ID)
	}
	// A replayed batch changes nothing.
	if err := e.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if again := lookup(t, e, canon.UserID, "u1"); again.Computed.OrderCount != 1 || again.Computed.EventsByChannel[canon.Web] != 3 {
		t.Errorf("replay changed counters: %+v", again.Computed)
	}
	pos, err := e.Positions(t.Context())
	if err != nil || pos[canon.Partition{Topic: "spine.web"}] != 42 {
		t.Errorf("Positions = %v, %v", pos, err)
	}
	if _, err := e.Lookup(t.Context(), canon.Identifier{Type: canon.Email, Value: "nobody@shop.io"}); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("unknown identifier: err = %v, want ErrNotFound", err)
	}
}

func TestSharedTabletNeverMergesTwoCustomers(t *testing.T) {
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {1, 2, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			e := open(t, t.TempDir())
			all := []canon.Event{
				ev(canon.Mobile, "x1", canon.KindLogin, 1, obs(canon.DeviceID, "tablet"), obs(canon.UserID, "alice")),
				ev(canon.Mobile, "x2", canon.KindLogin, 2, obs(canon.DeviceID, "tablet"), obs(canon.UserID, "bob")),
				ev(canon.Mobile, "x3", canon.KindScreen, 3, obs(canon.UserID, "bob")),
			}
			var b canon.Batch
			for _, i := range order {
				b.Events = append(b.Events, all[i])
			}
			if err := e.Apply(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			a, bob := lookup(t, e, canon.UserID, "alice"), lookup(t, e, canon.UserID, "bob")
			if a.ID == bob.ID {
				t.Fatal("two registered customers merged through a shared tablet")
			}
			if n := a.Computed.EventsByChannel[canon.Mobile] + bob.Computed.EventsByChannel[canon.Mobile]; n != 3 {
				t.Errorf("events counted %d times, want 3", n)
			}
		})
	}
}

func TestRestartResumes(t *testing.T) {
	dir := t.TempDir()
	e, stop := start(t, dir)
	b := canon.Batch{
		Events:    []canon.Event{ev(canon.Web, "r1", canon.KindPage, 1, obs(canon.AnonymousID, "a9"))},
		Positions: map[canon.Partition]int64{{Topic: "spine.web", Partition: 3}: 7},
	}
	if err := e.Apply(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	stop()
	e, stop = start(t, dir)
	defer stop()
	pos, err := e.Positions(t.Context())
	if err != nil || pos[canon.Partition{Topic: "spine.web", Partition: 3}] != 7 {
		t.Fatalf("Positions after restart = %v, %v", pos, err)
	}
	// The dedup window survives the restart too.
	if err := e.Apply(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if p := lookup(t, e, canon.AnonymousID, "a9"); p.Computed.EventsByChannel[canon.Web] != 1 {
		t.Errorf("events after restart and replay = %d, want 1", p.Computed.EventsByChannel[canon.Web])
	}
}

func TestChangeLogReadAckAndBackpressure(t *testing.T) {
	e := open(t, t.TempDir(), "test")
	var events []canon.Event
	for i := range 3 {
		events = append(events, ev(canon.Web, fmt.Sprint("c", i), canon.KindPage, i, obs(canon.AnonymousID, fmt.Sprint("anon", i))))
	}
	if err := e.Apply(t.Context(), canon.Batch{Events: events}); err != nil {
		t.Fatal(err)
	}
	got, err := e.Read(t.Context(), "test", 1000)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[canon.ChangeKind]int{}
	for i, c := range got {
		kinds[c.Kind]++
		if i > 0 && c.Seq != got[i-1].Seq+1 {
			t.Fatalf("seq not dense: %d after %d", c.Seq, got[i-1].Seq)
		}
	}
	if kinds[canon.ChangeEvent] != 3 || kinds[canon.ChangeProfile] != 3 || kinds[canon.ChangeMapping] != 3 {
		t.Errorf("change kinds = %v", kinds)
	}
	if err := e.Ack(t.Context(), "test", got[len(got)-1].Seq); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if more, err := e.Read(ctx, "test", 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read after full ack = %d changes, %v; want to block", len(more), err)
	}
	if err := e.Ack(t.Context(), "test", got[len(got)-1].Seq+100); err == nil {
		t.Error("ack past the newest change was accepted")
	}
}

// An ack is stored with the next transaction or when the writer stops, not
// in a commit of its own; a restart resumes the sink where it acked.
func TestAckSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	run := func(fn func(e *engine.Engine)) {
		e, stop := start(t, dir, "test")
		fn(e)
		stop()
	}
	apply := func(e *engine.Engine, id string) {
		if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{ev(canon.Web, id, canon.KindPage, 1, obs(canon.AnonymousID, id))}}); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func(e *engine.Engine) []canon.Change {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		got, err := e.Read(ctx, "test", 1000)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		return got
	}
	var acked uint64
	run(func(e *engine.Engine) {
		apply(e, "r1")
		got := readAll(e)
		acked = got[len(got)-1].Seq
		if err := e.Ack(t.Context(), "test", acked); err != nil {
			t.Fatal(err)
		}
		apply(e, "r2") // stores the cursor with its transaction
		got = readAll(e)
		if err := e.Ack(t.Context(), "test", got[len(got)-1].Seq); err != nil {
			t.Fatal(err)
		}
		acked = got[len(got)-1].Seq // stored when the writer stops
	})
	run(func(e *engine.Engine) {
		if got := readAll(e); len(got) != 0 {
			t.Errorf("after a restart the sink reads %d changes again (first seq %d); it acked up to %d", len(got), got[0].Seq, acked)
		}
		// Acknowledged records leave the stored log (an erased person's
		// data with them) soon after the ack, with no transaction to carry it.
		apply(e, "r3")
		got := readAll(e)
		if err := e.Ack(t.Context(), "test", got[len(got)-1].Seq); err != nil {
			t.Fatal(err)
		}
		waitLogTrimmed(t, e)
	})
}

// A log longer than one trim's worth (20,000 records) goes entirely after a
// single ack, without waiting for more acks or the writer's 5 s tick.
func TestLongLogTrimmedAfterOneAck(t *testing.T) {
	e := open(t, t.TempDir(), "test")
	for b := range 8 { // 3 change records per new visitor: 24,000 records
		var events []canon.Event
		for i := range 1000 {
			n := b*1000 + i
			events = append(events, ev(canon.Web, fmt.Sprint("t", n), canon.KindPage, n, obs(canon.AnonymousID, fmt.Sprint("tv", n))))
		}
		if err := e.Apply(t.Context(), canon.Batch{Events: events}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.Read(t.Context(), "test", 30000)
	if err != nil || len(got) < 24000 {
		t.Fatalf("Read = %d records, %v; want all 24,000", len(got), err)
	}
	if err := e.Ack(t.Context(), "test", got[len(got)-1].Seq); err != nil {
		t.Fatal(err)
	}
	waitLogTrimmed(t, e)
}

// waitLogTrimmed waits until the stored change log is empty, for less than
// the writer's 5 s tick: the trim must follow the acks, not the tick.
func waitLogTrimmed(t *testing.T, e *engine.Engine) {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	for {
		n, err := e.StoredLog()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged change records still stored", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBackpressureBlocksApply(t *testing.T) {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	cfg.Sinks = []string{"slow"}
	cfg.MaxBacklog = 1000
	e, err := engine.Open(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done; e.Close() }()
	var events []canon.Event
	for i := range 400 { // 3 changes each: past the bound
		events = append(events, ev(canon.Web, fmt.Sprint("b", i), canon.KindPage, i, obs(canon.AnonymousID, fmt.Sprint("bp", i))))
	}
	if err := e.Apply(t.Context(), canon.Batch{Events: events}); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer stop()
	next := canon.Batch{Events: []canon.Event{ev(canon.Web, "late", canon.KindPage, 0, obs(canon.AnonymousID, "late"))}}
	if err := e.Apply(short, next); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply over the backlog bound = %v, want it to block", err)
	}
	// Once the sink catches up, ingestion resumes.
	for {
		got, err := e.Read(t.Context(), "slow", 5000)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Ack(t.Context(), "slow", got[len(got)-1].Seq); err != nil {
			t.Fatal(err)
		}
		if e.Stats().Backlog == 0 {
			break
		}
	}
	if err := e.Apply(t.Context(), next); err != nil {
		t.Fatalf("Apply after the sink caught up: %v", err)
	}
}

func TestAccountChangesEmitted(t *testing.T) {
	e := open(t, t.TempDir(), "test")
	g := ev(canon.Web, "g1", canon.KindGroup, 1, obs(canon.UserID, "u1"))
	g.GroupID, g.GroupTraits = "acct-1", map[string]any{"name": "Acme"}
	if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{g}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.Read(t.Context(), "test", 100)
	if err != nil {
		t.Fatal(err)
	}
	var acct *canon.Account
	for _, c := range got {
		if c.Kind == canon.ChangeAccount {
			acct = c.Account
		}
	}
	p := lookup(t, e, canon.UserID, "u1")
	if acct == nil || acct.ID != "acct-1" || acct.Traits["name"] != "Acme" || len(acct.Members) != 1 || acct.Members[0] != p.ID || acct.Version == 0 {
		t.Errorf("account change = %+v", acct)
	}
}

// TestLookupJSON: the stored JSON a lookup answers with says what Lookup
// says, from the cache after a commit and from Badger after a restart,
// for an identifier and for an absorbed profile id; unknown ones are
// ErrNotFound.
func TestLookupJSON(t *testing.T) {
	dir := t.TempDir()
	check := func(e *engine.Engine, when string) {
		t.Helper()
		want := lookup(t, e, canon.Email, "p@x.io")
		for name, get := range map[string]func() ([]byte, error){
			"LookupJSON": func() ([]byte, error) {
				return e.LookupJSON(t.Context(), canon.Identifier{Type: canon.Email, Value: "p@x.io"})
			},
			"ProfileJSON(absorbed)": func() ([]byte, error) { return e.ProfileJSON(t.Context(), want.MergedFrom[0]) },
		} {
			b, err := get()
			if err != nil {
				t.Fatalf("%s %s: %v", name, when, err)
			}
			var got canon.Profile
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s %s: %v in %s", name, when, err, b)
			}
			// Compared as JSON with sorted keys: the stored bytes keep map
			// members in no set order.
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("%s %s =\n%s\nwant\n%s", name, when, g, w)
			}
		}
		if _, err := e.LookupJSON(t.Context(), canon.Identifier{Type: canon.Email, Value: "nobody@x.io"}); !errors.Is(err, canon.ErrNotFound) {
			t.Errorf("LookupJSON(unknown) %s = %v, want ErrNotFound", when, err)
		}
		if _, err := e.ProfileJSON(t.Context(), "prf_nobody"); !errors.Is(err, canon.ErrNotFound) {
			t.Errorf("ProfileJSON(unknown) %s = %v, want ErrNotFound", when, err)
		}
	}
	e, stop := start(t, dir)
	order := ev(canon.Web, "j2", canon.KindOrder, 2, obs(canon.AnonymousID, "a1"))
	order.Amount = &canon.Money{Currency: "EUR", Micros: 2_500_000}
	if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{
		ev(canon.Web, "j1", canon.KindIdentify, 1, obs(canon.Email, "p@x.io")),
		order,
		ev(canon.Web, "j3", canon.KindIdentify, 3, obs(canon.Email, "p@x.io"), obs(canon.AnonymousID, "a1")),
	}}); err != nil {
		t.Fatal(err)
	}
	check(e, "after the commit")
	stop()
	e, stop = start(t, dir)
	defer stop()
	check(e, "after a restart")
}

// TestQueuedBatchFailureStopsEngine: a batch queued through Pipelined that
// the writer cannot apply (one event bigger than a transaction may be)
// stops Run with the error instead of being skipped, so that no later
// batch stores positions past it; Sync answers that the engine stopped.
// (A decoder never yields a value JSON cannot hold; the test makes one.)
func TestQueuedBatchFailureStopsEngine(t *testing.T) {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	e, err := engine.Open(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(t.Context()) }()
	bad := ev(canon.Web, "m1", canon.KindPage, 1, obs(canon.AnonymousID, "a1"))
	bad.Props = map[string]any{"ratio": math.NaN()}
	if err := e.Pipelined().Apply(t.Context(), canon.Batch{Events: []canon.Event{bad}}); err != nil {
		t.Fatalf("queueing: %v", err)
	}
	select {
	case err := <-runErr:
		if err == nil || !strings.Contains(err.Error(), "queued batch") {
			t.Fatalf("Run returned %v, want the queued batch's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after a queued batch failed")
	}
	if err := e.Sync(t.Context()); err == nil {
		t.Fatal("Sync succeeded on a stopped engine")
	}
}

// The state directory's size is in Engine.Disk and in spine_engine_state_bytes
// from the first commit on, not only once Badger refreshes its own figures
// a minute later.
func TestStateBytesReported(t *testing.T) {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	reg := prometheus.NewRegistry()
	e, stop := startReg(t, cfg, nil, reg)
	t.Cleanup(stop)
	batch := canon.Batch{Events: []canon.Event{ev(canon.Web, "m1", canon.KindPage, 1, obs(canon.AnonymousID, "a1"))},
		Positions: map[canon.Partition]int64{{Topic: "spine.web", Partition: 0}: 1}}
	if err := e.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	d := e.Disk()
	if d.VLog <= 0 || d.WAL <= 0 || d.Total() != d.LSM+d.VLog+d.WAL+d.Other {
		t.Errorf("Disk() = %+v, want a value log and a WAL on disk", d)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() == "spine_engine_state_bytes" {
			for _, m := range f.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	if len(got) != 4 || got["value_log"] <= 0 || got["wal"] <= 0 {
		t.Errorf("spine_engine_state_bytes = %v, want tables, value_log, wal and other, the value log and WAL above 0", got)
	}
}

// Config.Background runs first in each goroutine of the engine's own work:
// the writer, the value-log collector and the helper that encodes half of
// a large commit's profiles.
func TestBackgroundRunsInEveryWorker(t *testing.T) {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	var mu sync.Mutex
	callers := map[string]int{}
	cfg.Background = func() {
		pcs := make([]uintptr, 2)
		frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
		f, _ := frames.Next()
		if strings.HasSuffix(f.Function, ".background") {
			f, _ = frames.Next()
		}
		name := f.Function[strings.LastIndexByte(f.Function, '/')+1:]
		if i := strings.Index(name, ".func"); i > 0 {
			name = name[:i] + ".func" // a closure, whichever number
		}
		mu.Lock()
		callers[name]++
		mu.Unlock()
	}
	e, stop := startCfg(t, cfg, nil)
	t.Cleanup(stop)
	// 100 new profiles in one commit: enough for the encoding helper.
	var batch canon.Batch
	for i := range 100 {
		batch.Events = append(batch.Events, ev(canon.Web, fmt.Sprint("m", i), canon.KindPage, i+1, obs(canon.AnonymousID, fmt.Sprint("a", i))))
	}
	batch.Positions = map[canon.Partition]int64{{Topic: "spine.web", Partition: 0}: 100}
	if err := e.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	want := []string{"engine.(*Engine).Run", "engine.(*Engine).Run.func", "store.encodeStates.func"}
	if runtime.GOMAXPROCS(0) < 2 {
		want = want[:2] // one P: the writer encodes every profile itself
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return callers[w] > 0 })
		got := maps.Clone(callers)
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Background not run by %v; run by %v", missing, got)
		}
	}
}

// readAllChanges returns what a sink can read now.
func readAllChanges(t *testing.T, e *engine.Engine, sink string) []canon.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	got, err := e.Read(ctx, sink, 1<<20)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	return got
}

// A sink left out of one run (spine run without --clickhouse) finds every
// record it had not acknowledged when it comes back: the log is trimmed
// behind the configured sinks only as far as the absent one's cursor.
func TestAbsentSinkKeepsItsRecords(t *testing.T) {
	dir := t.TempDir()
	page := func(e *engine.Engine, id string) {
		t.Helper()
		if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{ev(canon.Web, id, canon.KindPage, 1, obs(canon.AnonymousID, id))}}); err != nil {
			t.Fatal(err)
		}
	}
	e, stop := start(t, dir, "kafka", "clickhouse")
	page(e, "r1")
	stop()

	e, stop = start(t, dir, "kafka")
	page(e, "r2")
	got := readAllChanges(t, e, "kafka")
	last := got[len(got)-1].Seq
	if err := e.Ack(t.Context(), "kafka", last); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // an ack is stored, and the log trimmed, within 50 ms
	stop()

	e, stop = start(t, dir, "kafka", "clickhouse")
	defer stop()
	if ch := readAllChanges(t, e, "clickhouse"); uint64(len(ch)) != last || ch[0].Seq != 1 {
		t.Fatalf("clickhouse reads %d records from seq %d, want all %d", len(ch), ch[0].Seq, last)
	}
}

// A sink absent for longer than MaxBacklog records holds the log back no
// further; when it returns, the records it missed are reported (log and
// spine_sink_missed_changes), not skipped in silence.
func TestAbsentSinkBeyondBacklogIsReported(t *testing.T) {
	cfg := backlogConfig(t)
	e, stop := startCfg(t, cfg, nil)
	if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{ev(canon.Web, "r0", canon.KindPage, 1, obs(canon.AnonymousID, "r0"))}}); err != nil {
		t.Fatal(err)
	}
	stop()

	cfg.Sinks = []string{"kafka"}
	e, stop = startCfg(t, cfg, nil)
	pastBacklog(t, e, "kafka")
	stop()

	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	cfg.Sinks = []string{"kafka", "clickhouse"}
	e, stop = startReg(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	defer stop()
	missed := gaugeOf(t, reg, "spine_sink_missed_changes", "clickhouse")
	if missed <= 0 || !strings.Contains(logs.String(), "sink missed change records") {
		t.Fatalf("missed %v; log: %s", missed, logs.String())
	}
	ch := readAllChanges(t, e, "clickhouse")
	if len(ch) == 0 || ch[0].Seq != uint64(missed)+1 {
		t.Fatalf("clickhouse reads from seq %d after missing %v", ch[0].Seq, missed)
	}
	// It lagged MaxBacklog at the most when the log was trimmed past it.
	if last := ch[len(ch)-1].Seq; last-uint64(missed) > cfg.MaxBacklog+uint64(1000) {
		t.Errorf("the log kept %d records for it, MaxBacklog is %d", last-uint64(missed), cfg.MaxBacklog)
	}
}

// backlogConfig is a config for two sinks, kafka and clickhouse, and the
// smallest MaxBacklog.
func backlogConfig(t *testing.T) engine.Config {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	cfg.MaxBacklog = 1000
	cfg.Sinks = []string{"kafka", "clickhouse"}
	return cfg
}

// pastBacklog applies more than MaxBacklog records' worth of events, sink
// reading and acknowledging all along, and returns what it read, once the
// acks are stored and the log trimmed behind them.
func pastBacklog(t *testing.T, e *engine.Engine, sink string) []canon.Change {
	t.Helper()
	var read []canon.Change
	for i := range 8 {
		events := make([]canon.Event, 200)
		for j := range events {
			n := fmt.Sprint("r", i, "-", j)
			events[j] = ev(canon.Web, n, canon.KindPage, 1, obs(canon.AnonymousID, n))
		}
		apply(t, e, events...)
		got := readAllChanges(t, e, sink)
		read = append(read, got...)
		if err := e.Ack(t.Context(), sink, got[len(got)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // an ack is stored, and the log trimmed, within 50 ms
	return read
}

// An erasure made while a sink was away, and trimmed from the log before
// it came back, still reaches it: the trim keeps erasures (the erase
// record and the identifiers' removals) for sinks that have not read
// them, and the returning sink reads them first; a new sink does not.
// Once every sink has read them, they go.
func TestAbsentSinkGetsErasuresTrimmedMeanwhile(t *testing.T) {
	cfg := backlogConfig(t)
	e, stop := startCfg(t, cfg, nil)
	apply(t, e, ev(canon.Web, "x1", canon.KindPage, 1, obs(canon.Email, "xavier@mail.io")))
	x := lookup(t, e, canon.Email, "xavier@mail.io")
	var acked uint64
	for _, s := range cfg.Sinks {
		got := readAllChanges(t, e, s)
		acked = got[len(got)-1].Seq
		if err := e.Ack(t.Context(), s, acked); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	stop()

	// ClickHouse is away: Xavier is erased, and more than MaxBacklog
	// records later the log is trimmed past the erasure.
	erasure := eraseWhileAway(t, cfg, x.ID)
	if erasure == 0 {
		t.Fatal("the erasure made no change record")
	}

	reg := prometheus.NewRegistry()
	cfg.Sinks = []string{"kafka", "clickhouse", "fresh"}
	e, stop = startReg(t, cfg, nil, reg)
	trimmed := acked + uint64(gaugeOf(t, reg, "spine_sink_missed_changes", "clickhouse"))
	if trimmed <= erasure {
		t.Fatalf("the log was trimmed to %d, not past the erasure at %d", trimmed, erasure)
	}
	// A new sink's destination holds nobody: it starts after the trim.
	if fresh := readAllChanges(t, e, "fresh"); len(fresh) == 0 || fresh[0].Seq != trimmed+1 {
		t.Fatalf("a new sink reads %d records, want them from %d", len(fresh), trimmed+1)
	}
	// ClickHouse reads the erasure first, a record at a time here: the identifier's
	// removal, the erase record, the profile's deletion, the receipt.
	var first []canon.Change
	for len(first) < 10 {
		got, err := e.Read(t.Context(), "clickhouse", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Seq > trimmed {
			break
		}
		first = append(first, got[0])
		if err := e.Ack(t.Context(), "clickhouse", got[0].Seq); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	for _, c := range first {
		kinds = append(kinds, string(c.Kind))
	}
	if !slices.Equal(kinds, []string{"mapping", "erase", "delete", "log"}) ||
		first[0].Mapping.Identifier.Value != "xavier@mail.io" || first[0].Mapping.ProfileID != "" ||
		first[1].Seq != erasure || !slices.Contains(first[1].Erase.ProfileIDs, x.ID) ||
		first[2].Delete.ProfileID != x.ID || first[3].Log.Type != canon.LogErase {
		t.Fatalf("clickhouse's first reads: %+v, want the removal of xavier@mail.io, the erasure %d of %s, its deletion and receipt", first, erasure, x.ID)
	}
	rest := readAllChanges(t, e, "clickhouse")
	if len(rest) == 0 || rest[0].Seq != trimmed+1 {
		t.Fatalf("after the erasure clickhouse reads %d records, want them from %d", len(rest), trimmed+1)
	}
	for _, s := range []string{"clickhouse", "fresh"} {
		if err := e.Ack(t.Context(), s, rest[len(rest)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	stop()

	// Every sink read it: it is kept no longer.
	if high := keptErasures(t, cfg); high != 0 {
		t.Errorf("erasures up to %d still kept after every sink read them", high)
	}
}

// eraseWhileAway runs the engine of cfg with the kafka sink alone (the
// clickhouse sink away), erases profile pid, and applies past MaxBacklog,
// so that the log is trimmed past the erasure. It returns the erasure's
// seq, 0 if it made no erase record.
func eraseWhileAway(t *testing.T, cfg engine.Config, pid string) uint64 {
	t.Helper()
	cfg.Sinks = []string{"kafka"}
	e, stop := startCfg(t, cfg, quietLog)
	defer stop()
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: pid})
	var erasure uint64
	for _, c := range pastBacklog(t, e, "kafka") {
		if c.Kind == canon.ChangeErase {
			erasure = c.Seq
		}
	}
	return erasure
}

// keptErasures opens the stopped engine's state and returns the highest
// seq of the erasures a trim kept (store.Reader.HeldRange), 0 when none.
func keptErasures(t *testing.T, cfg engine.Config) uint64 {
	t.Helper()
	st, err := store.Open(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var high uint64
	if err := st.View(func(r *store.Reader) (err error) {
		_, high, err = r.HeldRange()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return high
}

// A sink forgotten (spine run --forget-sinks) holds nothing back any more:
// the erasures kept for it go, and configured again later it is a new sink.
func TestForgottenSinkHoldsNothing(t *testing.T) {
	cfg := backlogConfig(t)
	e, stop := startCfg(t, cfg, nil)
	apply(t, e, ev(canon.Web, "x1", canon.KindPage, 1, obs(canon.Email, "xavier@mail.io")))
	x := lookup(t, e, canon.Email, "xavier@mail.io")
	stop()

	eraseWhileAway(t, cfg, x.ID)
	if keptErasures(t, cfg) == 0 {
		t.Fatal("no erasure kept for clickhouse while it is away")
	}

	cfg.Sinks, cfg.ForgetSinks = []string{"kafka"}, []string{"clickhouse"}
	e, stop = startCfg(t, cfg, nil)
	apply(t, e, ev(canon.Web, "y1", canon.KindPage, 1, obs(canon.AnonymousID, "y1")))
	stop()
	if h := keptErasures(t, cfg); h != 0 {
		t.Fatalf("erasures up to %d still kept for a forgotten sink", h)
	}

	var logs bytes.Buffer
	cfg.ForgetSinks, cfg.Sinks = nil, []string{"kafka", "clickhouse"}
	e, stop = startCfg(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	defer stop()
	if !strings.Contains(logs.String(), "new sink") {
		t.Errorf("clickhouse, forgotten, is not new when configured again; log: %s", logs.String())
	}
	bad := backlogConfig(t)
	bad.ForgetSinks = []string{"clickhouse"}
	if err := bad.Validate(); err == nil {
		t.Error("a sink both configured and forgotten passed validation")
	}
}

// gaugeOf returns the value of the gauge name labelled with value in reg.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no gauge %s{%s}", name, value)
	return 0
}

// The pseudonym key is created once, kept in the state, and the same after
// a restart, so the identity log's pseudonyms correlate across runs.
func TestPseudonymKeyIsKept(t *testing.T) {
	dir := t.TempDir()
	e, stop := start(t, dir)
	k1 := e.PseudonymKey()
	stop()
	e, stop = start(t, dir)
	defer stop()
	if k2 := e.PseudonymKey(); len(k1) < 16 || !bytes.Equal(k1, k2) {
		t.Fatalf("pseudonym key %x, after a restart %x", k1, k2)
	}
	other, stopOther := start(t, t.TempDir())
	defer stopOther()
	if bytes.Equal(other.PseudonymKey(), k1) {
		t.Error("two states share a pseudonym key")
	}
}

// TestNumbersBeyondFloat64: traits and group traits with numbers a float64
// cannot hold, kept exact as the ingest parser builds them (json.Number),
// are applied, read back from Badger after a restart, and do not fail the
// account's next group event.
func TestNumbersBeyondFloat64(t *testing.T) {
	dir := t.TempDir()
	e, stop := start(t, dir)
	id := ev(canon.Web, "i1", canon.KindIdentify, 1, obs(canon.UserID, "u1"))
	id.Traits = map[string]any{"score": json.Number("1e400"), "ratio": json.Number("0.10000000000000000001")}
	g1 := ev(canon.Web, "g1", canon.KindGroup, 2, obs(canon.UserID, "u1"))
	g1.GroupID, g1.GroupTraits = "acme", map[string]any{"employees": json.Number("1e400")}
	if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{id, g1}}); err != nil {
		t.Fatal(err)
	}
	g2 := ev(canon.Web, "g2", canon.KindGroup, 3, obs(canon.UserID, "u1"))
	g2.GroupID, g2.GroupTraits = "acme", map[string]any{"name": "Acme"}
	if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{g2}}); err != nil {
		t.Fatalf("the account's next group event: %v", err)
	}
	stop()

	e = open(t, dir) // caches empty: the profile is read from Badger
	p := lookup(t, e, canon.UserID, "u1")
	if p.Traits["score"] != json.Number("1e400") || p.Traits["ratio"] != json.Number("0.10000000000000000001") {
		t.Errorf("traits read back: %#v", p.Traits)
	}
	if p.Computed.EventsByChannel[canon.Web] != 3 {
		t.Errorf("events by channel %v, want 3 web events", p.Computed.EventsByChannel)
	}
}
