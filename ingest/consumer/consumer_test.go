package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/schemas/canon"
)

const waitLimit = 30 * time.Second

// channelTopics are the six default channel topics.
func channelTopics() []string {
	ts := make([]string, len(canon.Channels))
	for i, ch := range canon.Channels {
		ts[i] = "spine." + string(ch)
	}
	return ts
}

// testDecoder is a small stand-in for the real channel decoders: a JSON
// object with a string "id" and an RFC 3339 "t"; "panic": true panics, and
// "oops": true returns an unclassified error that quotes the id.
func testDecoder(ch canon.Channel) func([]byte) (canon.Event, error) {
	return func(raw []byte) (canon.Event, error) {
		var m struct {
			ID    *string `json:"id"`
			T     string  `json:"t"`
			Panic bool    `json:"panic"`
			Oops  bool    `json:"oops"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return canon.Event{}, msg.Rejectf(ch, msg.ReasonInvalidJSON, "", "not a JSON object")
		}
		if m.Panic {
			panic("decoder bug on " + string(raw))
		}
		if m.ID == nil || *m.ID == "" {
			return canon.Event{}, msg.Rejectf(ch, msg.ReasonMissingField, "id", "required")
		}
		if m.Oops {
			return canon.Event{}, fmt.Errorf("cannot handle %q", *m.ID)
		}
		t, err := time.Parse(time.RFC3339, m.T)
		if err != nil {
			return canon.Event{}, msg.Rejectf(ch, msg.ReasonBadTimestamp, "t", "must be RFC 3339")
		}
		return canon.Event{
			Channel: ch, MessageID: *m.ID, Kind: canon.KindTrack, Time: t.UTC(),
			Identifiers: []canon.Observation{{
				Identifier: canon.Identifier{Type: canon.AnonymousID, Value: "anon-" + *m.ID},
				Trust:      canon.Observed,
			}},
		}, nil
	}
}

func testDecoders() map[canon.Channel]ingest.Decoder {
	ds := make(map[canon.Channel]ingest.Decoder)
	for _, ch := range canon.Channels {
		ds[ch] = testDecoder(ch)
	}
	return ds
}

func good(id string) []byte {
	return []byte(`{"id":"` + id + `","t":"2026-01-02T03:04:05Z"}`)
}

// goods returns n good records with ids prefix-0 .. prefix-(n-1).
func goods(prefix string, n int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = good(prefix + "-" + strconv.Itoa(i))
	}
	return vs
}

// fakeApplier is the engine side in memory. It checks what the engine
// would rely on: positions only move forward, and no event comes twice.
type fakeApplier struct {
	mu        sync.Mutex
	events    []canon.Event
	seen      map[string]bool
	positions map[canon.Partition]int64
	problems  []string
	failNext  int                                      // Apply fails this many times first
	hook      func(context.Context, canon.Batch) error // runs first in Apply, unlocked
	applies   int
	changed   chan struct{}
}

// hold makes app's Apply wait until the returned gate is closed: every
// call, or with firstOnly only the first.
func hold(app *fakeApplier, firstOnly bool) chan struct{} {
	gate := make(chan struct{})
	var held atomic.Bool
	app.hook = func(ctx context.Context, _ canon.Batch) error {
		if firstOnly && !held.CompareAndSwap(false, true) {
			return nil
		}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return gate
}

func newApplier() *fakeApplier {
	return &fakeApplier{seen: map[string]bool{}, positions: map[canon.Partition]int64{}, changed: make(chan struct{}, 1)}
}

func (a *fakeApplier) Apply(ctx context.Context, b canon.Batch) error {
	if a.hook != nil {
		if err := a.hook(ctx, b); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failNext > 0 {
		a.failNext--
		return errors.New("engine busy")
	}
	for p, o := range b.Positions {
		if old, ok := a.positions[p]; ok && o <= old {
			a.problems = append(a.problems, fmt.Sprintf("position of %v went from %d to %d", p, old, o))
		}
	}
	for _, e := range b.Events {
		k := string(e.Channel) + "/" + e.MessageID
		if a.seen[k] {
			a.problems = append(a.problems, "redelivered "+k)
		}
		a.seen[k] = true
	}
	a.events = append(a.events, b.Events...)
	maps.Copy(a.positions, b.Positions)
	a.applies++
	select {
	case a.changed <- struct{}{}:
	default:
	}
	return nil
}

func (a *fakeApplier) Positions(context.Context) (map[canon.Partition]int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.positions), nil
}

func (a *fakeApplier) snapshot() (events []canon.Event, pos map[canon.Partition]int64, problems []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]canon.Event(nil), a.events...), maps.Clone(a.positions), append([]string(nil), a.problems...)
}

// waitEvents waits until the applier holds n events, failing after
// waitLimit. It wakes on every Apply, so there is no sleeping.
func (a *fakeApplier) waitEvents(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		evs, _, _ := a.snapshot()
		if len(evs) >= n {
			return
		}
		select {
		case <-a.changed:
		case <-deadline.C:
			t.Fatalf("applier has %d events after %v, want %d", len(evs), waitLimit, n)
		case <-t.Context().Done():
			t.Fatal("test context done")
		}
	}
}

// check fails the test on any re-delivery or backwards position.
func (a *fakeApplier) check(t *testing.T) {
	t.Helper()
	_, _, problems := a.snapshot()
	for _, p := range problems {
		t.Error(p)
	}
}

// eventually polls cond until it holds or waitLimit passes. Only for
// conditions nothing signals (readiness, broker-side state).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, waitLimit)
		case <-t.Context().Done():
			t.Fatal("test context done")
		}
	}
}

func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.BackoffMin = 5 * time.Millisecond
	cfg.BackoffMax = 50 * time.Millisecond
	cfg.StopTimeout = 5 * time.Second
	return cfg
}

// running is a Consumer whose Run goroutine the test owns.
type running struct {
	*Consumer
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run, waits for it and closes the consumer; it returns Run's
// error. Calling it twice is fine.
func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err
	r.Close()
	return err
}

func start(t *testing.T, cfg Config, app Applier, reg prometheus.Registerer) *running {
	t.Helper()
	return startLogged(t, cfg, app, reg, nil)
}

func startLogged(t *testing.T, cfg Config, app Applier, reg prometheus.Registerer, log *slog.Logger) *running {
	t.Helper()
	if log == nil && os.Getenv("SPINE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(cfg, testDecoders(), app, log, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{Consumer: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	eventually(t, "consumer ready", c.Ready)
	return r
}

// wantPositions checks that the applier's positions are the end offsets
// of topics: every record, rejected ones included, is accounted for.
func wantPositions(t *testing.T, addr string, app *fakeApplier, topics ...string) {
	t.Helper()
	_, pos, _ := app.snapshot()
	for topic, parts := range kafkatest.EndOffsets(t, addr, topics...) {
		for p, end := range parts {
			got, ok := pos[canon.Partition{Topic: topic, Partition: p}]
			if end == 0 && !ok {
				continue
			}
			if got != end {
				t.Errorf("position of %s/%d = %d (stored %v), want end offset %d", topic, p, got, ok, end)
			}
		}
	}
}

func TestAllChannelsDecodedAndApplied(t *testing.T) {
	addr, _ := kafkatest.Cluster(t) // no topics: the consumer creates them
	cfg := testConfig(addr)
	cfg.CreateTopics = true
	cfg.Partitions = 3
	cfg.ApplyRecords = 4 // polls are cut into chunks; the applier checks their positions
	var backgrounds atomic.Int64
	cfg.Background = func() { backgrounds.Add(1) }
	app := newApplier()
	var biggest atomic.Int64
	app.hook = func(_ context.Context, b canon.Batch) error {
		if n := int64(len(b.Events)); n > biggest.Load() {
			biggest.Store(n)
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	start(t, cfg, app, reg)

	for _, ch := range canon.Channels {
		kafkatest.Produce(t, addr, "spine."+string(ch), goods(string(ch), 10)...)
	}
	app.waitEvents(t, 60)
	app.check(t)
	wantPositions(t, addr, app, channelTopics()...)
	if n := biggest.Load(); n > 4 {
		t.Errorf("an Apply carried %d events; ApplyRecords is 4", n)
	}
	if n := backgrounds.Load(); n < 60/4 {
		t.Errorf("Background ran %d times for at least %d chunks decoded", n, 60/4)
	}

	evs, pos, _ := app.snapshot()
	byChannel := map[canon.Channel]int{}
	for _, e := range evs {
		byChannel[e.Channel]++
	}
	for _, ch := range canon.Channels {
		if byChannel[ch] != 10 {
			t.Errorf("events of %s = %d, want 10", ch, byChannel[ch])
		}
		// Counted once Apply has returned, a moment after the applier saw it.
		eventually(t, "spine_ingest_events_total{"+string(ch)+"} = 10", func() bool {
			got, _ := metricValue(t, reg, "spine_ingest_events_total", map[string]string{"channel": string(ch)})
			return got == 10
		})
	}
	// Round-robin production spreads each topic over its 3 partitions.
	if len(pos) != 18 {
		t.Errorf("positions cover %d partitions, want 18: %v", len(pos), pos)
	}

	// Every topic Spine uses exists, and the profile stream is compacted.
	adm := kadm.NewClient(kafkatest.Client(t, addr))
	want := append(channelTopics(), "spine.dlq", "spine.profiles", "spine.identity")
	details, err := adm.ListTopics(t.Context(), want...)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	for _, topic := range want {
		if d, ok := details[topic]; !ok || d.Err != nil || len(d.Partitions) != 3 {
			t.Errorf("topic %s: %+v, want 3 partitions", topic, d)
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(t.Context(), "spine.profiles")
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	rc, err := cfgs.On("spine.profiles", nil)
	if err != nil {
		t.Fatalf("configs of spine.profiles: %v", err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Errorf("spine.profiles cleanup.policy = %q, want compact", policy)
	}
}

// metricValue reads one series from reg, as /metrics would expose it.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestRestartResumesAtStoredPositions(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	cfg := testConfig(addr)
	app := newApplier()

	first := start(t, cfg, app, nil)
	kafkatest.Produce(t, addr, "spine.web", goods("a", 30)...)
	app.waitEvents(t, 30)
	if err := first.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// Written while no consumer runs: the restart must pick these up, and
	// only these.
	kafkatest.Produce(t, addr, "spine.web", goods("b", 30)...)
	kafkatest.Produce(t, addr, "spine.pos", goods("c", 5)...)
	start(t, cfg, app, nil)
	app.waitEvents(t, 65)
	wantPositions(t, addr, app, "spine.web", "spine.pos")
	app.check(t) // no re-delivery, no position going back
	evs, _, _ := app.snapshot()
	if len(evs) != 65 {
		t.Errorf("applied %d events, want 65", len(evs))
	}
}

// The engine's positions are the truth even when Kafka has commits ahead
// of them (say the engine's state was restored from an older backup):
// the consumer must replay from the engine's positions.
func TestStoredPositionsWinOverKafkaCommits(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	cfg := testConfig(addr)
	kafkatest.Produce(t, addr, "spine.web", goods("a", 30)...)

	ahead := newApplier()
	r := start(t, cfg, ahead, nil)
	ahead.waitEvents(t, 30)
	// The monitoring commit is asynchronous: wait until Kafka has it, so
	// that the next consumer really has commits to ignore.
	adm := kadm.NewClient(kafkatest.Client(t, addr))
	eventually(t, "monitoring commit", func() bool {
		offs, err := adm.FetchOffsets(t.Context(), cfg.Group)
		if err != nil {
			return false
		}
		n := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { n += o.At })
		return n == 30
	})
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	behind := newApplier()
	behind.positions[canon.Partition{Topic: "spine.web", Partition: 0}] = 2 // 8 of 10 left there
	start(t, cfg, behind, nil)
	behind.waitEvents(t, 28)
	wantPositions(t, addr, behind, "spine.web")
	behind.check(t)
	evs, _, _ := behind.snapshot()
	if len(evs) != 28 {
		t.Errorf("replayed %d events, want 28 (30 minus the 2 before the stored position)", len(evs))
	}
}

func TestRejectsGoToDLQ(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	cfg := testConfig(addr)
	app := newApplier()
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	startLogged(t, cfg, app, reg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	bad := []struct {
		key, value   string
		reason       msg.Reason
		field, rule  string
		header       string // an original header, kept with a prefix
		secretInText string // must not appear in any header
	}{
		{key: "k1", value: `{not json`, reason: msg.ReasonInvalidJSON, rule: "not a JSON object"},
		{key: "k2", value: `{"t":"2026-01-02T03:04:05Z","email":"bob@shop.com"}`, reason: msg.ReasonMissingField,
			field: "id", rule: "required", header: "trace-1", secretInText: "bob@shop.com"},
		{key: "k3", value: `{"id":"p1","t":"2026-01-02T03:04:05Z","panic":true}`, reason: msg.ReasonInvalidValue,
			rule: "decoder failed on this message", secretInText: "p1"},
		{key: "k4", value: `{"id":"secret-id","t":"2026-01-02T03:04:05Z","oops":true}`, reason: msg.ReasonInvalidValue,
			rule: "decoder returned an unclassified error", secretInText: "secret-id"},
	}
	var recs []*kgo.Record
	for _, b := range bad {
		r := &kgo.Record{Topic: "spine.web", Key: []byte(b.key), Value: []byte(b.value)}
		if b.header != "" {
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte(b.header)}}
		}
		recs = append(recs, r)
	}
	recs = append(recs, &kgo.Record{Topic: "spine.web", Key: []byte("k5"), Value: good("fine")})
	kafkatest.ProduceRecords(t, addr, recs...)

	app.waitEvents(t, 1)
	dlq := kafkatest.Consume(t, addr, "spine.dlq", len(bad), waitLimit)
	byKey := map[string]*kgo.Record{}
	for _, r := range dlq {
		byKey[string(r.Key)] = r
	}
	src := kafkatest.Consume(t, addr, "spine.web", len(recs), waitLimit)
	srcByKey := map[string]*kgo.Record{}
	for _, r := range src {
		srcByKey[string(r.Key)] = r
	}
	for _, b := range bad {
		r, ok := byKey[b.key]
		if !ok {
			t.Errorf("no DLQ record with key %s", b.key)
			continue
		}
		if string(r.Value) != b.value {
			t.Errorf("DLQ value of %s = %q, want the original bytes %q", b.key, r.Value, b.value)
		}
		s := srcByKey[b.key]
		want := map[string]string{
			HeaderReason:    string(b.reason),
			HeaderChannel:   "web",
			HeaderTopic:     "spine.web",
			HeaderPartition: strconv.Itoa(int(s.Partition)),
			HeaderOffset:    strconv.FormatInt(s.Offset, 10),
			HeaderField:     b.field,
			HeaderMessage:   b.rule,
		}
		for k, v := range want {
			if got, ok := kafkatest.Header(r, k); !ok || got != v {
				t.Errorf("DLQ record %s: header %s = %q (present %v), want %q", b.key, k, got, ok, v)
			}
		}
		if b.header != "" {
			if got, _ := kafkatest.Header(r, "original.trace"); got != b.header {
				t.Errorf("DLQ record %s: original header = %q, want %q", b.key, got, b.header)
			}
		}
		for _, h := range r.Headers {
			if b.secretInText != "" && h.Key != "original.trace" && contains(string(h.Value), b.secretInText) {
				t.Errorf("DLQ record %s: header %s carries a value from the message", b.key, h.Key)
			}
		}
	}

	for _, b := range bad {
		if b.secretInText != "" && contains(logs.String(), b.secretInText) {
			t.Errorf("logs carry a value from message %s", b.key)
		}
	}
	if !contains(logs.String(), "decoder panicked") {
		t.Error("the decoder panic was not logged")
	}

	evs, _, _ := app.snapshot()
	if len(evs) != 1 || evs[0].MessageID != "fine" {
		t.Errorf("applied %v, want only the good event", evs)
	}
	// Positions cover the rejected records too.
	eventually(t, "positions at end", func() bool {
		_, pos, _ := app.snapshot()
		var n int64
		for _, o := range pos {
			n += o
		}
		return n == int64(len(recs))
	})
	wantPositions(t, addr, app, "spine.web")
	for reason, n := range map[msg.Reason]float64{msg.ReasonInvalidJSON: 1, msg.ReasonMissingField: 1, msg.ReasonInvalidValue: 2} {
		if got, _ := metricValue(t, reg, "spine_ingest_dlq_total", map[string]string{"channel": "web", "reason": string(reason)}); got != n {
			t.Errorf("spine_ingest_dlq_total{web,%s} = %v, want %v", reason, got, n)
		}
	}
	if got, _ := metricValue(t, reg, "spine_ingest_decode_panics_total", map[string]string{"channel": "web"}); got != 1 {
		t.Errorf("spine_ingest_decode_panics_total{web} = %v, want 1", got)
	}
	if got, _ := metricValue(t, reg, "spine_ingest_decode_seconds", map[string]string{"channel": "web"}); got != float64(len(recs)) {
		t.Errorf("spine_ingest_decode_seconds{web} count = %v, want %d", got, len(recs))
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestApplyErrorsAreRetried(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	cfg := testConfig(addr)
	app := newApplier()
	app.failNext = 3
	reg := prometheus.NewRegistry()
	start(t, cfg, app, reg)

	kafkatest.Produce(t, addr, "spine.ciam", goods("x", 20)...)
	app.waitEvents(t, 20)
	wantPositions(t, addr, app, "spine.ciam")
	app.check(t)
	if got, _ := metricValue(t, reg, "spine_consumer_apply_errors_total", nil); got != 3 {
		t.Errorf("spine_consumer_apply_errors_total = %v, want 3", got)
	}
	eventually(t, "spine_ingest_events_total{ciam} = 20", func() bool {
		got, _ := metricValue(t, reg, "spine_ingest_events_total", map[string]string{"channel": "ciam"})
		return got == 20
	})
}

func TestLagMetric(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	kafkatest.Produce(t, addr, "spine.iot", goods("d", 30)...) // 10 per partition
	cfg := testConfig(addr)
	cfg.MaxPollRecords = 2
	cfg.LagInterval = 50 * time.Millisecond
	app := newApplier()
	// Hold the first batch so the lag can be read before anything is applied.
	gate := hold(app, true)
	reg := prometheus.NewRegistry()
	start(t, cfg, app, reg)

	eventually(t, "lag > 0 reported", func() bool {
		for p := range 3 {
			if v, ok := metricValue(t, reg, "spine_consumer_lag_records",
				map[string]string{"topic": "spine.iot", "partition": strconv.Itoa(p)}); ok && v > 0 {
				return true
			}
		}
		return false
	})
	close(gate)
	app.waitEvents(t, 30)
	for p := range 3 {
		v, ok := metricValue(t, reg, "spine_consumer_lag_records", map[string]string{"topic": "spine.iot", "partition": strconv.Itoa(p)})
		if !ok || v != 0 {
			t.Errorf("lag of spine.iot/%d = %v (present %v), want 0 once consumed", p, v, ok)
		}
	}
	app.check(t)
}

// While the engine back-pressures ingest nothing is fetched; the lag must
// still grow on the dashboard, for every assigned partition, not freeze at
// what the last fetch saw.
func TestLagWhileBackPressured(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	kafkatest.Produce(t, addr, "spine.iot", goods("d", 30)...) // 10 per partition
	cfg := testConfig(addr)
	cfg.LagInterval = 50 * time.Millisecond
	app := newApplier()
	gate := hold(app, false) // the engine is stuck: nothing is applied
	reg := prometheus.NewRegistry()
	start(t, cfg, app, reg)

	lag := func(topic string) (sum float64, series int) {
		for p := range 3 {
			if v, ok := metricValue(t, reg, "spine_consumer_lag_records",
				map[string]string{"topic": topic, "partition": strconv.Itoa(p)}); ok {
				sum, series = sum+v, series+1
			}
		}
		return sum, series
	}
	eventually(t, "lag of spine.iot = 30", func() bool { v, _ := lag("spine.iot"); return v == 30 })
	kafkatest.Produce(t, addr, "spine.iot", goods("e", 30)...)
	eventually(t, "lag of spine.iot = 60 while stuck", func() bool { v, _ := lag("spine.iot"); return v == 60 })
	// A partition nothing was ever written to reports 0, not nothing.
	if v, n := lag("spine.web"); n != 3 || v != 0 {
		t.Errorf("spine.web lag = %v over %d series, want 0 over 3", v, n)
	}
	close(gate)
	app.waitEvents(t, 60)
	eventually(t, "lag of spine.iot = 0 once applied", func() bool { v, _ := lag("spine.iot"); return v == 0 })
	if v, _ := metricValue(t, reg, "spine_consumer_lag_errors_total", nil); v != 0 {
		t.Errorf("spine_consumer_lag_errors_total = %v", v)
	}
	app.check(t)
}

// failDLQProduce makes the broker refuse produce requests to spine.dlq
// while fail() is true, counting refusals.
func failDLQProduce(t *testing.T, addr string, c *kfake.Cluster, fail func() bool, refused *atomic.Int64) {
	t.Helper()
	details, err := kadm.NewClient(kafkatest.Client(t, addr)).ListTopics(t.Context(), "spine.dlq")
	if err != nil || details["spine.dlq"].Err != nil {
		t.Fatalf("ListTopics(spine.dlq): %v %v", err, details["spine.dlq"].Err)
	}
	dlqID := details["spine.dlq"].ID
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		// Produce v13 names topics by ID only.
		if !fail() || len(pr.Topics) == 0 || pr.Topics[0].Topic != "spine.dlq" && pr.Topics[0].TopicID != dlqID {
			return nil, nil, false
		}
		refused.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// While the DLQ cannot be written, the batch is held: nothing of it is
// applied, so no position moves past an unwritten dead letter.
func TestDLQOutageHoldsBatch(t *testing.T) {
	addr, cluster := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	var refused atomic.Int64
	failDLQProduce(t, addr, cluster, func() bool { return refused.Load() < 3 }, &refused)
	cfg := testConfig(addr)
	app := newApplier()
	app.hook = func(context.Context, canon.Batch) error {
		if n := refused.Load(); n < 3 {
			t.Errorf("Apply called after %d refused DLQ writes, want it only after the DLQ write succeeded", n)
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	start(t, cfg, app, reg)

	kafkatest.ProduceRecords(t, addr,
		&kgo.Record{Topic: "spine.support", Key: []byte("k"), Value: []byte("garbage")},
		&kgo.Record{Topic: "spine.support", Key: []byte("k"), Value: good("ok")})
	app.waitEvents(t, 1)
	dlq := kafkatest.Consume(t, addr, "spine.dlq", 1, waitLimit)
	if string(dlq[0].Value) != "garbage" {
		t.Errorf("DLQ value = %q, want the original bytes", dlq[0].Value)
	}
	if got, _ := metricValue(t, reg, "spine_consumer_dlq_errors_total", nil); got < 3 {
		t.Errorf("spine_consumer_dlq_errors_total = %v, want >= 3", got)
	}
	wantPositions(t, addr, app, "spine.support")
}

// Stopping while the DLQ is down abandons the batch after StopTimeout
// without applying it; the next run reads it again and loses nothing.
func TestStopWhileDLQDownReplaysAfterRestart(t *testing.T) {
	addr, cluster := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	var down atomic.Bool
	down.Store(true)
	var refused atomic.Int64
	failDLQProduce(t, addr, cluster, down.Load, &refused)
	cfg := testConfig(addr)
	cfg.StopTimeout = 100 * time.Millisecond
	app := newApplier()

	r := start(t, cfg, app, nil)
	kafkatest.ProduceRecords(t, addr,
		&kgo.Record{Topic: "spine.pos", Key: []byte("k"), Value: []byte("garbage")},
		&kgo.Record{Topic: "spine.pos", Key: []byte("k"), Value: good("ok")})
	eventually(t, "DLQ writes refused", func() bool { return refused.Load() >= 2 })
	err := r.stop()
	if err == nil || !errors.Is(err, errStopTimeout) {
		t.Errorf("Run = %v, want the stop timeout (batch not applied)", err)
	}
	if evs, pos, _ := app.snapshot(); len(evs) != 0 || len(pos) != 0 {
		t.Fatalf("applied %v / %v while the DLQ was down", evs, pos)
	}

	down.Store(false)
	start(t, cfg, app, nil)
	app.waitEvents(t, 1)
	wantPositions(t, addr, app, "spine.pos")
	dlq := kafkatest.Consume(t, addr, "spine.dlq", 1, waitLimit)
	if string(dlq[0].Value) != "garbage" {
		t.Errorf("DLQ value = %q, want the original bytes", dlq[0].Value)
	}
	app.check(t)
}

// Cancelling Run while Apply runs lets that Apply finish (soft stop).
func TestSoftStopFinishesApply(t *testing.T) {
	addr, _ := kafkatest.Cluster(t, append(channelTopics(), "spine.dlq")...)
	cfg := testConfig(addr)
	app := newApplier()
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	app.hook = func(ctx context.Context, _ canon.Batch) error {
		once.Do(func() { close(entered) })
		<-release
		return ctx.Err() // a cancelled Apply context would fail the batch
	}
	r := start(t, cfg, app, nil)
	kafkatest.Produce(t, addr, "spine.mobile", goods("m", 3)...)
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("Apply not called")
	}
	r.cancel()
	close(release)
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after a finished soft stop", err)
	}
	if evs, _, _ := app.snapshot(); len(evs) == 0 {
		t.Error("the in-flight batch was not applied")
	}
}

func TestUnknownTopicIsRejected(t *testing.T) {
	c, err := New(testConfig("127.0.0.1:1"), testDecoders(), newApplier(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "spine.other", Partitions: []kgo.FetchPartition{{
		Partition: 1, HighWatermark: 8,
		Records: []*kgo.Record{{Topic: "spine.other", Partition: 1, Offset: 7, Key: []byte("k"), Value: good("a")}},
	}}}}}}
	d := c.decodeChunk(split(fs, 10)[0])
	if len(d.events) != 0 || len(d.dlq) != 1 {
		t.Fatalf("decodeChunk = %d events, %d rejects; want 0, 1", len(d.events), len(d.dlq))
	}
	if got, _ := kafkatest.Header(d.dlq[0], HeaderReason); got != string(msg.ReasonUnknownTopic) {
		t.Errorf("reason = %q, want unknown_topic", got)
	}
	if got := d.positions[canon.Partition{Topic: "spine.other", Partition: 1}]; got != 8 {
		t.Errorf("position = %d, want 8", got)
	}
}

func TestSplitKeepsPartitionOrder(t *testing.T) {
	recs := func(topic string, p int32, from, n int64) []*kgo.Record {
		var out []*kgo.Record
		for o := from; o < from+n; o++ {
			out = append(out, &kgo.Record{Topic: topic, Partition: p, Offset: o})
		}
		return out
	}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{
		{Topic: "a", Partitions: []kgo.FetchPartition{{Partition: 0, Records: recs("a", 0, 10, 5)}, {Partition: 1, Records: recs("a", 1, 0, 2)}}},
		{Topic: "b", Partitions: []kgo.FetchPartition{{Partition: 0, Records: recs("b", 0, 3, 4)}}},
	}}}
	chunks := split(fs, 3)
	var got []string
	for _, c := range chunks {
		var s []string
		n := 0
		for _, p := range c {
			s = append(s, fmt.Sprintf("%s%d:%d-%d", p.topic, p.partition, p.recs[0].Offset, p.recs[len(p.recs)-1].Offset))
			n += len(p.recs)
		}
		if n > 3 {
			t.Errorf("chunk %v holds %d records, want at most 3", s, n)
		}
		got = append(got, strings.Join(s, ","))
	}
	want := []string{"a0:10-12", "a0:13-14,a1:0-0", "a1:1-1,b0:3-4", "b0:5-6"}
	if !slices.Equal(got, want) {
		t.Errorf("split = %q, want %q", got, want)
	}
	if len(split(kgo.Fetches{}, 3)) != 0 {
		t.Error("an empty poll gave chunks")
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	cfg := Config{TopicPrefix: "bad prefix", MaxPollRecords: -1, ApplyRecords: -1, CreateTopics: true, Conn: []kgo.Opt{nil}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, want := range []string{"Brokers", "TopicPrefix", "Group", "MaxPollRecords", "ApplyRecords", "MaxMessageBytes",
		"Partitions", "ReplicationFactor", "Conn[0]", "FetchMaxWait", "BackoffMin", "StopTimeout"} {
		if !contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want a line about %s", err, want)
		}
	}
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	if got := def.dlqTopic(); got != "spine.dlq" {
		t.Errorf("default DLQ topic = %q, want spine.dlq", got)
	}
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger shared by several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestConnOptionsReachTheClient runs the consumer against a broker that
// requires SASL: it gets in only with the credentials passed in Conn, and
// then both consumes and dead-letters through them.
func TestConnOptionsReachTheClient(t *testing.T) {
	addr, _ := kafkatest.ClusterWith(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "spine", "pw-256"))
	auth := kgo.SASL(scram.Auth{User: "spine", Pass: "pw-256"}.AsSha256Mechanism())
	cfg := testConfig(addr)
	cfg.CreateTopics, cfg.Partitions = true, 1
	cfg.Conn = []kgo.Opt{auth}
	app := newApplier()
	start(t, cfg, app, nil)

	cl := kafkatest.Client(t, addr, auth)
	if err := cl.ProduceSync(t.Context(),
		&kgo.Record{Topic: "spine.web", Value: good("w-1")},
		&kgo.Record{Topic: "spine.web", Value: []byte(`{"t":"2026-01-02T03:04:05Z"}`)},
	).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	app.waitEvents(t, 1)
	app.check(t)
	dlq := kafkatest.Consume(t, addr, "spine.dlq", 1, waitLimit, auth)
	if got, _ := kafkatest.Header(dlq[0], HeaderReason); got != string(msg.ReasonMissingField) {
		t.Errorf("dlq reason = %q, want missing_field", got)
	}
}

func TestClientOptions(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.FetchMaxWait = 123 * time.Millisecond
	cfg.ClientID = "spine-test"
	// Conn comes first: the consumer's own settings win over it.
	cfg.Conn = []kgo.Opt{kgo.ClientID("from-conn"), kgo.FetchMaxWait(time.Minute), kgo.DialTimeout(7 * time.Second)}
	c, err := New(cfg, testDecoders(), newApplier(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name string
		opt  any
		want any
	}{
		{"FetchMaxWait", kgo.FetchMaxWait, 123 * time.Millisecond},
		{"ClientID", kgo.ClientID, "spine-test"},
		{"DialTimeout (from Conn)", kgo.DialTimeout, 7 * time.Second},
	} {
		if got := c.cl.OptValue(tc.opt); got != tc.want {
			t.Errorf("client option %s = %v, want %v", tc.name, got, tc.want)
		}
	}
}
