//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/ingest/consumer"
	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/schemas/canon"
)

var (
	crashSeed    = flag.Int64("crash.seed", 0, "seed of TestCrashRecoveryExact's stream, duplicates and kill schedule (0: random, logged)")
	crashPersons = flag.Int("crash.persons", 0, "persons TestCrashRecoveryExact simulates, about 29 messages each (0: 2500, or 150 with -short; env SPINE_CRASH_EVENTS sizes it by messages)")
	crashKills   = flag.Int("crash.kills", -1, "SIGKILLs TestCrashRecoveryExact deals before its final run (-1: 8, or 3 with -short)")
	crashEvict   = flag.Bool("crash.evict", false, "also remove a killed engine from the consumer group by hand; the engine is a static member (same instance id after a restart), so it does not need that")
)

// Sizing of TestCrashRecoveryExact. gen emits about 29 messages a person.
const (
	crashMsgsPerPerson = 29
	crashDupRate       = 0.05 // share of messages delivered twice
	crashDupWindow     = 2000 // a duplicate follows its original by up to this many messages
)

// TestCrashRecoveryExact runs the spine command as a child process, SIGKILLs
// it again and again at random points while it consumes a generated stream
// with duplicate deliveries, lets a last run catch up and stops it cleanly,
// then opens the state and holds it to the generator's ground truth (DESIGN
// §7, exactly-once effect):
//   - every person's identifiers resolve to one profile that holds exactly
//     those identifiers, and no two persons share a profile;
//   - its counts and sums, first and last seen, level and consent are the
//     truth's exactly, so no event was lost and none counted twice;
//   - there are as many profiles as persons with identifiers plus orphan
//     devices, and as many events in them as unique messages;
//   - the engine's positions are the partitions' end offsets, and the DLQ
//     holds nothing but the test's end markers.
//
// The stream, the duplicates and the kill schedule follow -crash.seed; when
// a kill lands relative to the child's batches depends on timing, so a
// replay repeats the schedule, not the exact interleaving. With -artifacts
// the state directory and every child's log are kept.
func TestCrashRecoveryExact(t *testing.T) {
	persons, kills := crashSize(t)
	seed := *crashSeed
	if seed == 0 {
		seed = rand.Int64N(math.MaxInt64-1) + 1
	}
	t.Logf("seed %d: replay with go test -run 'TestCrashRecoveryExact$' -count=1 ./cmd/spine -crash.seed=%d -crash.persons=%d -crash.kills=%d -crash.evict=%t",
		seed, seed, persons, kills, *crashEvict)

	cfg := gen.DefaultConfig()
	cfg.Persons, cfg.Seed, cfg.Hard = persons, seed, false
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	truth := g.Truth()
	if tt := truth.Totals; tt.Duplicates+tt.Malformed+tt.JunkOnly != 0 {
		t.Fatalf("gen without hard cases emits duplicates, malformed or junk-only messages: %+v", tt)
	}

	addr, _ := kafkatest.Cluster(t, allTopics("spine.")...)
	dir := t.ArtifactDir()
	data := filepath.Join(dir, "state")
	// Keyed records go to the partition of their key's hash, as gen.Produce
	// sends them, so a person's events of a channel stay in order and a
	// duplicate lands in its original's partition.
	prod := kafkatest.Client(t, addr, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	f := &crashFeed{
		g:     g,
		rng:   rand.New(rand.NewPCG(uint64(seed), 1)),
		total: int(truth.Totals.Messages),
		parts: kills + 1,
		due:   map[int][]*kgo.Record{},
	}
	killRNG := rand.New(rand.NewPCG(uint64(seed), 2))
	start := time.Now()

	// Each child but the last is killed; each gets a new part of the stream,
	// produced while it runs, so that it always has work when it is killed.
	// Every other child reads batches of twice the events the engine commits
	// in one transaction, so that a kill can also fall between two
	// transactions of one batch: a prefix of the batch stored, its
	// positions not.
	bigBatch := 2 * engine.DefaultConfig("").MaxTxnEvents
	adm := kadm.NewClient(kafkatest.Client(t, addr))
	var stats crashStats
	for i := range kills {
		produced := produceAsync(t.Context(), prod, f.part(i))
		c := startSpineChild(t, i, addr, data, dir, []int{500, bigBatch}[i%2])
		stats.add(killChild(t, c, i, kills, f.total/f.parts, killRNG))
		if err := <-produced; err != nil {
			t.Fatalf("produce part %d: %v", i, err)
		}
		if *crashEvict {
			if err := evictMembers(t.Context(), adm, prod); err != nil {
				t.Fatalf("evict the killed engine from its group: %v", err)
			}
		}
	}

	// The last part, the duplicates still due, and one record past the end
	// of every channel partition. The end record is not JSON, so it goes to
	// the DLQ and changes no profile; it is there so that every partition
	// has a record for the last run to consume, and so a lag gauge that
	// says 0 for every partition means the whole stream was read.
	last := f.part(kills)
	if err := <-produceAsync(t.Context(), prod, last); err != nil {
		t.Fatalf("produce last part: %v", err)
	}
	ends := produceEndMarkers(t, addr)
	markers := len(ends)
	t.Logf("stream: %d persons, %d messages, %d of them delivered twice (%d records)",
		persons, f.total, f.dups, f.total+f.dups)

	c := startSpineChild(t, kills, addr, data, dir, 500)
	finishChild(t, c, ends)
	stats.runs++
	t.Logf("crash loop and catch-up: %s", time.Since(start).Round(time.Millisecond))

	verifyState(t, data, ends, truth, stats)

	// The stream has no bad input, and the markers are read only by the
	// last run, which is not killed: the DLQ holds the markers, once each.
	dlq := int64(0)
	for _, off := range kafkatest.EndOffsets(t, addr, "spine.dlq")["spine.dlq"] {
		dlq += off
	}
	if dlq != int64(markers) {
		t.Errorf("spine.dlq holds %d records, want the %d end markers", dlq, markers)
	}
}

// crashSize returns the persons and kills of this run from the flags,
// SPINE_CRASH_EVENTS and -short.
func crashSize(t *testing.T) (persons, kills int) {
	persons, kills = 2500, 8
	if testing.Short() {
		persons, kills = 150, 3
	}
	if s := os.Getenv("SPINE_CRASH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SPINE_CRASH_EVENTS=%q: want a positive number of messages", s)
		}
		persons = max(1, n/crashMsgsPerPerson)
	}
	if *crashPersons > 0 {
		persons = *crashPersons
	}
	if *crashKills >= 0 {
		kills = *crashKills
	}
	return persons, kills
}

// crashFeed cuts the generated stream into parts and adds the duplicate
// deliveries: a copy of a random crashDupRate of the messages, same key,
// same bytes, a little later in the stream, so that some duplicates share
// their original's batch and others come after a crash and a restart.
type crashFeed struct {
	g     *gen.Generator
	rng   *rand.Rand
	total int // messages in the stream, duplicates not counted
	parts int
	next  int // index of the next message to take from g
	dups  int // duplicates added so far
	due   map[int][]*kgo.Record
}

// part returns the records of part i of parts; the last part also holds
// every duplicate not yet sent.
func (f *crashFeed) part(i int) []*kgo.Record {
	end := f.total * (i + 1) / f.parts
	var recs []*kgo.Record
	for ; f.next < end; f.next++ {
		m, ok := f.g.Next()
		if !ok {
			panic("gen: stream shorter than its truth says")
		}
		r := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
		recs = append(recs, r)
		if f.rng.Float64() < crashDupRate {
			at := f.next + 1 + f.rng.IntN(crashDupWindow)
			f.due[at] = append(f.due[at], &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value})
			f.dups++
		}
		recs = append(recs, f.due[f.next]...)
		delete(f.due, f.next)
	}
	if i == f.parts-1 {
		for _, at := range slices.Sorted(maps.Keys(f.due)) {
			recs = append(recs, f.due[at]...)
		}
		clear(f.due)
	}
	return recs
}

// produceAsync writes recs in the background and reports once they are all
// acknowledged.
func produceAsync(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		done <- cl.ProduceSync(ctx, recs...).FirstErr()
	}()
	return done
}

// produceEndMarkers writes one non-JSON record to every partition of every
// channel topic, after everything else, and returns the end offsets of the
// channel topics (markers included).
func produceEndMarkers(t *testing.T, addr string) map[canon.Partition]int64 {
	t.Helper()
	cl := kafkatest.Client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var topics []string
	var recs []*kgo.Record
	for _, ch := range canon.Channels {
		topic := "spine." + string(ch)
		topics = append(topics, topic)
		for p := range int32(kafkatest.Partitions) {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("crash test: end of stream")})
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce end markers: %v", err)
	}
	ends := map[canon.Partition]int64{}
	for topic, parts := range kafkatest.EndOffsets(t, addr, topics...) {
		for p, off := range parts {
			ends[canon.Partition{Topic: topic, Partition: p}] = off
		}
	}
	if len(ends) != len(recs) {
		t.Fatalf("end offsets of %d partitions, want %d", len(ends), len(recs))
	}
	return ends
}

// crashStats is what the killed children reported before they died.
type crashStats struct {
	kills, runs         int
	batches             float64 // batches applied by killed children, as last scraped
	events, dupsSkipped float64
}

func (s *crashStats) add(o crashStats) {
	s.kills += o.kills
	s.runs += o.runs
	s.batches += o.batches
	s.events += o.events
	s.dupsSkipped += o.dupsSkipped
}

// killChild picks a random point in child i's life and SIGKILLs it there:
//   - mostly ("running") once it has applied a random number of events, up
//     to about one part of the stream, plus up to 100 ms: batches are
//     applied back to back, so the kill lands inside one more often than not;
//   - sometimes ("startup") up to 200 ms after its API came up, while the
//     consumer joins the group and seeks to the engine's positions;
//   - sometimes ("boot") up to 500 ms after exec, before the API is up:
//     while Badger opens and replays what the previous kill left.
//
// The first kill is always a running one.
func killChild(t *testing.T, c *spineChild, i, kills, partSize int, rng *rand.Rand) crashStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), crashTimeout(t))
	defer cancel()
	started := time.Now()
	var m promSeries
	var err error
	mode, r := "running", rng.IntN(8)
	switch {
	case i > 0 && r == 0:
		mode = "boot"
	case i > 0 && r <= 2:
		mode = "startup"
	}
	var delay time.Duration
	switch mode {
	case "boot":
		delay = time.Duration(rng.Int64N(int64(500 * time.Millisecond)))
	case "startup":
		delay = time.Duration(rng.Int64N(int64(200 * time.Millisecond)))
		m, err = c.waitMetrics(ctx, "serving /metrics", func(promSeries) bool { return true })
	case "running":
		target := 1 + rng.IntN(max(1, partSize*9/10))
		mode = fmt.Sprintf("running, after %d events", target)
		delay = time.Duration(rng.Int64N(int64(100 * time.Millisecond)))
		m, err = c.waitMetrics(ctx, fmt.Sprintf("%d events applied or skipped", target), func(m promSeries) bool {
			return m.sum("spine_engine_events_total")+m.sum("spine_engine_duplicates_total") >= float64(target)
		})
	}
	if err != nil {
		c.fail(t, err)
	}
	select {
	case <-time.After(delay): // not a wait for anything: the fault's timing
	case <-c.done:
		c.fail(t, errors.New("exited before it was killed"))
	}
	// One last look at its counters, then the kill: what it did after this
	// scrape is missing from the counts logged, not from the state.
	if mode != "boot" {
		if last, err := c.scrape(ctx); err == nil {
			m = last
		}
	}
	c.kill()
	s := crashStats{kills: 1, runs: 1,
		batches:     m.sum("spine_consumer_batches_total"),
		events:      m.sum("spine_engine_events_total"),
		dupsSkipped: m.sum("spine_engine_duplicates_total"),
	}
	t.Logf("kill %d/%d (%s, +%v, batches of %d): SIGKILL %s after exec; it had applied at least %.0f batches, %.0f events and skipped %.0f duplicates",
		i+1, kills, mode, delay.Round(time.Millisecond), c.maxPoll, time.Since(started).Round(time.Millisecond),
		s.batches, s.events, s.dupsSkipped)
	return s
}

// evictMembers removes every member from the engine's consumer group. A
// SIGKILLed engine stays a member until its session times out (45 s, kgo's
// default), and the classic group protocol holds a restarted engine's
// assignment until then: each restart would idle 45 s before consuming.
// Removing the dead member is what an operator does with
// kafka-consumer-groups --delete-members; it lets many kills fit in a short
// test, and changes nothing the new member sees but the timing.
func evictMembers(ctx context.Context, adm *kadm.Client, cl *kgo.Client) error {
	group := consumer.DefaultConfig().Group
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	g := gs[group]
	if g.Err != nil {
		return fmt.Errorf("describe group: %w", g.Err)
	}
	if len(g.Members) == 0 {
		return nil
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range g.Members {
		rm := kmsg.NewLeaveGroupRequestMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		req.Members = append(req.Members, rm)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("leave group: %w", err)
	}
	errs := []error{kerr.ErrorForCode(resp.ErrorCode)}
	for _, m := range resp.Members {
		errs = append(errs, kerr.ErrorForCode(m.ErrorCode))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("leave group: %w", err)
	}
	return nil
}

// finishChild waits until the child has read every channel partition to its
// end, then stops it with SIGTERM and expects a clean exit.
func finishChild(t *testing.T, c *spineChild, ends map[canon.Partition]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), crashTimeout(t))
	defer cancel()
	started := time.Now()
	m, err := c.waitMetrics(ctx, "consumer lag 0 on every channel partition", func(m promSeries) bool {
		for p := range ends {
			lag, ok := m.get("spine_consumer_lag_records", "topic", p.Topic, "partition", strconv.Itoa(int(p.Partition)))
			if !ok || lag != 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		c.fail(t, err)
	}
	t.Logf("final run caught up in %s: %.0f batches, %.0f events applied, %.0f duplicates skipped",
		time.Since(started).Round(time.Millisecond), m.sum("spine_consumer_batches_total"),
		m.sum("spine_engine_events_total"), m.sum("spine_engine_duplicates_total"))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.fail(t, fmt.Errorf("SIGTERM: %w", err))
	}
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		c.fail(t, errors.New("still running a minute after SIGTERM"))
	}
	if c.err != nil {
		c.fail(t, fmt.Errorf("graceful stop: %w", c.err))
	}
}

// crashTimeout bounds a wait on a child: generous, but inside the test's own
// deadline, so that a stall fails with the child's log rather than a panic.
func crashTimeout(t *testing.T) time.Duration {
	d := 10 * time.Minute
	if dl, ok := t.Deadline(); ok {
		d = min(d, time.Until(dl)-30*time.Second)
	}
	return max(d, time.Minute)
}

// verifyState opens the state the children left and checks it against the
// ground truth.
func verifyState(t *testing.T, data string, ends map[canon.Partition]int64, truth gen.Truth, stats crashStats) {
	t.Helper()
	cfg := engine.DefaultConfig(data)
	cfg.Store.CacheBytes = 16 << 20
	e, err := engine.Open(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("open the state after the crashes: %v", err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("close state: %v", err)
		}
	}()
	ctx := t.Context()

	pos, err := e.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if got, ok := pos[p]; !ok || got != end {
			t.Errorf("engine position of %s/%d = %d (stored: %t), want the end offset %d", p.Topic, p.Partition, got, ok, end)
		}
	}
	if len(pos) != len(ends) {
		t.Errorf("engine has positions for %d partitions, want the %d channel partitions: %v", len(pos), len(ends), pos)
	}

	v := &truthVerifier{t: t, e: e, owner: map[string]string{}}
	want := 0
	for _, p := range truth.Persons {
		if len(p.Identifiers) > 0 {
			v.check(ctx, fmt.Sprintf("person %d", p.Person), p)
			want++
		}
	}
	for i, p := range truth.Orphans {
		v.check(ctx, fmt.Sprintf("orphan %d", i), p)
		want++
	}

	var profiles, events int64
	err = e.EachProfile(ctx, func(p *canon.Profile) error {
		profiles++
		n := int64(0)
		for _, c := range p.Computed.EventsByChannel {
			n += c
		}
		events += n
		if _, ok := v.owner[p.ID]; !ok {
			v.errorf("profile %s (%d identifiers, %d events) belongs to no person", p.ID, len(p.Identifiers), n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v.flush()
	// The totals are reported whatever the count of mismatches above.
	if profiles != int64(want) {
		t.Errorf("%d profiles, want %d (persons with identifiers plus orphan devices)", profiles, want)
	}
	if events != truth.Totals.Accepted {
		t.Errorf("%d events in profiles, want %d (%+d): events lost or counted twice", events, truth.Totals.Accepted, events-truth.Totals.Accepted)
	}
	t.Logf("%d SIGKILLs and %d runs; state holds %d profiles and %d events (truth: %d and %d); killed children applied at least %.0f events in %.0f batches before dying",
		stats.kills, stats.runs, profiles, events, want, truth.Totals.Accepted, stats.events, stats.batches)
}

// truthVerifier compares profiles with the truth and keeps the report short.
type truthVerifier struct {
	t      *testing.T
	e      *engine.Engine
	owner  map[string]string // profile id -> person it was matched to
	errs   int
	hidden int
}

const maxMismatchesReported = 25

func (v *truthVerifier) errorf(format string, args ...any) {
	v.t.Helper()
	if v.errs++; v.errs > maxMismatchesReported {
		v.hidden++
		return
	}
	v.t.Errorf(format, args...)
}

func (v *truthVerifier) flush() {
	if v.hidden > 0 {
		v.t.Errorf("... and %d more mismatches", v.hidden)
	}
}

// check verifies one person: all their identifiers resolve to one profile,
// which holds exactly those identifiers and exactly their values, and which
// no other person was matched to.
func (v *truthVerifier) check(ctx context.Context, who string, want gen.PersonTruth) {
	v.t.Helper()
	var prof canon.Profile
	for i, id := range want.Identifiers {
		p, err := v.e.Lookup(ctx, id)
		if err != nil {
			v.errorf("%s: identifier %d of %d (%s %q): %v", who, i+1, len(want.Identifiers), id.Type, id.Value, err)
			return
		}
		if i == 0 {
			prof = p
		} else if p.ID != prof.ID {
			v.errorf("%s: identifier %d (%s %q) is in profile %s, identifier 1 (%s %q) in %s: split",
				who, i+1, id.Type, id.Value, p.ID, want.Identifiers[0].Type, want.Identifiers[0].Value, prof.ID)
			return
		}
	}
	if other, ok := v.owner[prof.ID]; ok {
		v.errorf("%s and %s share profile %s: merged", other, who, prof.ID)
		return
	}
	v.owner[prof.ID] = who
	var ids []canon.Identifier
	for _, i := range prof.Identifiers {
		ids = append(ids, i.Identifier())
	}
	slices.SortFunc(ids, cmpIdentifier)
	wantIDs := slices.SortedFunc(slices.Values(want.Identifiers), cmpIdentifier)
	if !slices.Equal(ids, wantIDs) {
		v.errorf("%s: profile %s identifiers = %v, want %v", who, prof.ID, ids, wantIDs)
	}
	if diff := diffCrashValues(crashValuesOf(prof), crashTruthValues(want)); diff != "" {
		v.errorf("%s: profile %s: %s", who, prof.ID, diff)
	}
}

func cmpIdentifier(a, b canon.Identifier) int {
	return strings.Compare(a.Key(), b.Key())
}

// crashValues are what the crash test holds to the truth: the counts and sums,
// which a lost or a doubled event changes, and first and last seen, identity
// level and consent, which a lost event can change. Consent compares values
// only: the latest by event time wins, so redelivery cannot move it.
type crashValues struct {
	EventsByChannel map[canon.Channel]int64
	OrderCount      int64
	TotalSpend      canon.Amounts
	ReturnTotal     canon.Amounts
	RefundCount     int64
	RefundTotal     canon.Amounts
	TicketsOpened   int64
	CSATSum         int64
	CSATCount       int64
	FirstSeen       time.Time
	LastSeen        time.Time
	Level           canon.Level
	Consent         map[string]bool
}

func crashValuesOf(p canon.Profile) crashValues {
	c := p.Computed
	cons := map[string]bool{}
	for k, v := range p.Consent {
		cons[k] = v.Value
	}
	return crashValues{Level: p.Level, Consent: cons,
		EventsByChannel: nonZeroEntries(c.EventsByChannel), OrderCount: c.OrderCount,
		TotalSpend: nonZeroEntries(c.TotalSpend), ReturnTotal: nonZeroEntries(c.ReturnTotal),
		RefundCount: c.RefundCount, RefundTotal: nonZeroEntries(c.RefundTotal),
		TicketsOpened: c.TicketsOpened, CSATSum: c.CSATSum, CSATCount: c.CSATCount,
		FirstSeen: c.FirstSeen.UTC(), LastSeen: c.LastSeen.UTC(),
	}
}

func crashTruthValues(p gen.PersonTruth) crashValues {
	cons := map[string]bool{}
	maps.Copy(cons, p.Consent)
	return crashValues{Level: p.Level, Consent: cons,
		EventsByChannel: nonZeroEntries(p.EventsByChannel), OrderCount: p.OrderCount,
		TotalSpend: nonZeroEntries(p.TotalSpend), ReturnTotal: nonZeroEntries(p.ReturnTotal),
		RefundCount: p.RefundCount, RefundTotal: nonZeroEntries(p.RefundTotal),
		TicketsOpened: p.TicketsOpened, CSATSum: p.CSATSum, CSATCount: p.CSATCount,
		FirstSeen: p.FirstSeen.UTC(), LastSeen: p.LastSeen.UTC(),
	}
}

// nonZeroEntries drops zero entries, so that a channel or currency counted zero
// times compares equal to one never mentioned.
func nonZeroEntries[M ~map[K]int64, K comparable](m M) map[K]int64 {
	out := map[K]int64{}
	for k, n := range m {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}

// diffCrashValues names every field of got that differs from want.
func diffCrashValues(got, want crashValues) string {
	var b strings.Builder
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "%s = %v, want %v; ", gv.Type().Field(i).Name, g, w)
		}
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// spineChild is one spine process run from the test binary (see TestMain).
type spineChild struct {
	cmd     *exec.Cmd
	n       int    // its number: child-NN.log
	http    string // its API address
	files   string // the state directory's files when it started
	maxPoll int    // --max-poll-records
	log     string // file holding its stdout and stderr
	done    chan struct{}
	err     error // what Wait returned; read after done is closed
}

// startSpineChild runs `spine run` on the broker at addr and the state in data,
// its output going to a log file in dir. It is killed when the test ends.
func startSpineChild(t *testing.T, n int, addr, data, dir string, maxPoll int) *spineChild {
	t.Helper()
	c := &spineChild{
		n: n, http: freeLoopbackAddr(t), files: stateFiles(data), maxPoll: maxPoll,
		log:  filepath.Join(dir, fmt.Sprintf("child-%02d.log", n)),
		done: make(chan struct{}),
	}
	out, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child has its own descriptor
	c.cmd = exec.Command(os.Args[0], "--", "run",
		"--brokers", addr, "--data", data, "--http", c.http, "--tokens", "t:read",
		"--max-poll-records", strconv.Itoa(maxPoll), "--cache-mb", "16")
	c.cmd.Env = spineChildEnv()
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child %d: %v", n, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}

// spineChildEnv is the test's environment for a child, minus any SPINE_
// setting that would change how it runs (a ClickHouse address, say), plus
// the switch that makes the test binary act as spine.
func spineChildEnv() []string {
	env := []string{childEnv + "=1"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SPINE_") && !strings.HasPrefix(kv, "SPINE_LOG_LEVEL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// kill SIGKILLs the child, if it still runs, and reaps it.
func (c *spineChild) kill() {
	_ = c.cmd.Process.Kill() // fails only if it already exited
	<-c.done
}

// fail kills the child and ends the test with err and the tail of the
// child's log.
func (c *spineChild) fail(t *testing.T, err error) {
	t.Helper()
	c.kill()
	t.Fatalf("child %d: %v (exit: %v)\nstate files when it started: %s\nlast lines of %s:\n%s",
		c.n, err, c.err, c.files, c.log, logTail(c.log, 30))
}

// stateFiles lists the files of the state directory with their sizes, for
// failure reports: a file Badger created but was killed before sizing shows
// as 0 bytes, for one.
func stateFiles(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "%s (%d bytes) ", e.Name(), fi.Size())
		}
	}
	return b.String()
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitMetrics polls the child's /metrics until ok accepts them, the child
// exits, or ctx ends.
func (c *spineChild) waitMetrics(ctx context.Context, what string, ok func(promSeries) bool) (promSeries, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		m, err := c.scrape(ctx)
		if err == nil && ok(m) {
			return m, nil
		}
		lastErr = err
		select {
		case <-tick.C:
		case <-c.done:
			return nil, fmt.Errorf("exited while waiting for %s", what)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w (last scrape error: %v)", what, ctx.Err(), lastErr)
		}
	}
}

// scrape reads the child's /metrics.
func (c *spineChild) scrape(ctx context.Context) (promSeries, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.http+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parsePromText(resp.Body)
}

// promSeries is a Prometheus text exposition: series (name{labels}) to value.
type promSeries map[string]float64

func parsePromText(r io.Reader) (promSeries, error) {
	m := promSeries{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: bad value in %q", line)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds up every series of a metric, whatever its labels.
func (m promSeries) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// get returns the series of name whose labels include the given pairs.
func (m promSeries) get(name string, labels ...string) (float64, bool) {
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, name+"{")
		if !ok {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(","+rest, ","+labels[i]+`="`+labels[i+1]+`"`) {
				match = false
				break
			}
		}
		if match {
			return v, true
		}
	}
	return 0, false
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
