package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // --pprof
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/bench"
	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// spine bench: one process runs the engine with its sinks and API, the
// generator's traffic and the measurements, and prints the figures
// bench/RESULTS.md records. The embedded broker and the HTTP lookup load
// run in child processes (this binary again), as Kafka and the API's
// clients run outside the engine in a deployment: in the engine's process
// they would share its heap and its Go scheduler, and the lookup figures
// would time them as much as the API.
//
// The run has phases, each marked on the timeline plot:
//
//  1. saturate: the generated stream (pre-rendered to memory, so the load
//     generator's own cost is not in the measurement) is produced as fast
//     as the broker takes it; the phase ends when the engine's stored
//     positions reach the topics' end offsets. Events/s end to end is
//     measured here. Latency probes queue behind the backlog, so their
//     latency here is the backlog's age, not the engine's reaction time.
//     quiet: once everything is applied and every sink has caught up,
//     the lookup load alone for a few seconds: the API's latency on this
//     machine without ingest, the reference for the other phases'.
//  2. ceiling: a bare franz-go consumer reads the same topics from the
//     start, decoding nothing: the most this machine's broker and client
//     deliver, for the engine's rate as a fraction of it.
//  3. paced: a second stream (other people) at a fraction of the rate phase
//     1 reached, for a fixed time: the steady state, where produce-to-
//     visible latency is the engine's own.
//
// Throughout phases 1 and 3, probes (a web track event with a fresh
// anonymous id, produced every 1/probe-rate s) are timed from the produce
// call until engine.Lookup finds their identifier (and, with ClickHouse,
// until the events table holds the message), and an open-loop HTTP load
// looks up known identifiers through the API. With every lookup figure
// the report gives the API's own server-side time (its latency histogram)
// and the machine's CPU pressure in that phase, so that a slow handler
// can be told from CPUs busy with something else.

func cmdBench(ctx context.Context, args []string, env func(string) string, stdout io.Writer, log *slog.Logger) error {
	if env(lookupChildEnv) == "lookup" {
		return lookupChild(ctx, os.Stdin, stdout)
	}
	fs, o := runFlags("bench")
	var c benchConfig
	fs.IntVar(&c.persons, "persons", 20000, "customers to simulate in the saturate phase")
	fs.Int64Var(&c.seed, "seed", 1, "random seed of the generated traffic")
	fs.DurationVar(&c.limit, "duration-limit", 10*time.Minute, "stop producing and report what was measured after this long")
	fs.StringVar(&c.out, "out", "bench/out", "directory for timeline.png and results.json")
	fs.IntVar(&c.lookupRate, "lookup-rate", 2000, "HTTP lookups per second while ingesting and in the quiet phase (0: none)")
	fs.IntVar(&c.probeRate, "probe-rate", 50, "latency probes per second")
	fs.DurationVar(&c.paced, "paced", 20*time.Second, "length of the paced phase (0: skip it)")
	fs.DurationVar(&c.quiet, "quiet", 5*time.Second, "length of the quiet phase, lookups without ingest after the saturate phase (0: skip it)")
	fs.Float64Var(&c.pacedFraction, "paced-fraction", 0.5, "rate of the paced phase as a fraction of the saturate phase's rate")
	fs.BoolVar(&c.noSync, "no-sync", false, "do not fsync Badger commits (spine run syncs)")
	fs.BoolVar(&c.noPeer, "no-peer", false, "skip the warehouse-native peer even with --clickhouse")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the saturate phase to this file")
	fs.StringVar(&c.pprof, "pprof", "", "serve net/http/pprof on this loopback address (block and mutex profiles on)")
	fs.BoolVar(&c.replica, "replica", false, "serve the HTTP lookup load from a lookup replica (spine replica) in a child process, and time probes until it answers them too (default: the engine's own API)")
	fs.IntVar(&c.replicaRT, "replica-realtime", 10, "SCHED_FIFO priority of the replica (the lookup load's client runs one above), where the machine allows it (Linux, root or CAP_SYS_NICE); 0: normal priority")
	fs.Lookup("data").DefValue, _ = "", fs.Set("data", "")
	fs.Lookup("http").DefValue, _ = "", fs.Set("http", "")
	fs.Lookup("clickhouse-database").DefValue, _ = "spine_bench", fs.Set("clickhouse-database", "spine_bench")
	// The lookup load is the bench's own measurement client: the per-token
	// rate limit must not shape what it measures.
	fs.Lookup("api-rate-limit").DefValue, _ = "0", fs.Set("api-rate-limit", "0")
	if err := fs.parse(args, env); err != nil {
		return err
	}
	c.args = args
	if c.replicaRT < 0 || c.replicaRT > 98 {
		return fmt.Errorf("bench: --replica-realtime %d: want 0 to 98 (the load's client runs one above)", c.replicaRT)
	}
	// The engine's own info logs would tear the progress line; warnings
	// and errors still show.
	if env("SPINE_LOG_LEVEL") != "debug" {
		log = slog.New(minLevel{log.Handler(), slog.LevelWarn})
	}
	b := &benchRun{cfg: c, o: o, log: log, out: stdout}
	return b.run(ctx)
}

type benchConfig struct {
	persons       int
	seed          int64
	limit         time.Duration
	out           string
	lookupRate    int
	probeRate     int
	paced         time.Duration
	quiet         time.Duration
	pacedFraction float64
	noSync        bool
	noPeer        bool
	cpuProfile    string
	pprof         string
	replica       bool
	replicaRT     int
	args          []string
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// corpus is a pre-rendered stream: records in one arena, so that holding
// 600,000 messages costs their bytes and little more.
type corpus struct {
	topics []string
	buf    []byte
	recs   []corpusRec
	truth  gen.Truth
}

type corpusRec struct {
	topic          uint8
	keyOff, valOff int
	keyLen, valLen int32
}

func (c *corpus) record(i int) *kgo.Record {
	r := c.recs[i]
	return &kgo.Record{Topic: c.topics[r.topic], Key: c.buf[r.keyOff : r.keyOff+int(r.keyLen)], Value: c.buf[r.valOff : r.valOff+int(r.valLen)]}
}

func (c *corpus) channel(i int) canon.Channel {
	t := c.topics[c.recs[i].topic]
	return canon.Channel(t[strings.LastIndexByte(t, '.')+1:])
}

func render(cfg gen.Config, withTruth bool) (*corpus, error) {
	g, err := gen.New(cfg)
	if err != nil {
		return nil, err
	}
	c := &corpus{}
	if withTruth {
		c.truth = g.Truth()
	}
	idx := map[string]uint8{}
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		ti, ok := idx[m.Topic]
		if !ok {
			ti = uint8(len(c.topics))
			idx[m.Topic] = ti
			c.topics = append(c.topics, m.Topic)
		}
		r := corpusRec{topic: ti, keyOff: len(c.buf), keyLen: int32(len(m.Key))}
		c.buf = append(c.buf, m.Key...)
		r.valOff, r.valLen = len(c.buf), int32(len(m.Value))
		c.buf = append(c.buf, m.Value...)
		c.recs = append(c.recs, r)
	}
	c.buf = slices.Clip(c.buf)
	return c, nil
}

// benchRun holds one run's state. Its goroutines are started and waited
// for by run.
type benchRun struct {
	cfg   benchConfig
	o     *runOptions
	log   *slog.Logger
	out   io.Writer
	p     *process
	start time.Time
	runID string
	token string
	wh    *bench.Warehouse // nil without ClickHouse

	phase   atomic.Int32 // phaseSaturate, ...; set through setPhase
	marks   phaseMarks
	tl      timeline
	probes  probeSet
	lookups lookupStats
	replica *replicaChild // nil: lookups go to the engine's API
}

const (
	phaseSetup int32 = iota
	phaseSaturate
	phaseQuiet
	phaseCeiling
	phasePaced
	phaseDone
)

var phaseNames = []string{"setup", "saturate", "quiet", "ceiling", "paced", "done"}

// ingesting reports whether ph is a phase with traffic (and probes).
func ingesting(ph int32) bool { return ph == phaseSaturate || ph == phasePaced }

// lookupPhase reports whether the HTTP lookup load runs in ph: while
// ingesting, and in the quiet phase, its reference without ingest.
func lookupPhase(ph int32) bool { return ingesting(ph) || ph == phaseQuiet }

// results is what the run measured; results.json holds it.
type results struct {
	Command  string    `json:"command"`
	Date     time.Time `json:"date"`
	Machine  machine   `json:"machine"`
	Persons  int       `json:"persons"`
	Seed     int64     `json:"seed"`
	SyncMode string    `json:"sync_mode"`
	// LogFaults is how a fault in Badger's logs reads: "read-around" (the
	// kernel's window) or "one page" (--no-read-around), or, when advising
	// the mappings failed with --no-read-around, read-around and why.
	LogFaults string `json:"log_faults"`

	Messages        int     `json:"messages"`         // records produced in the saturate phase
	AcceptedTruth   int64   `json:"accepted_truth"`   // unique events the truth expects
	EventsApplied   uint64  `json:"events_applied"`   // engine events after the saturate phase, probes included
	ProduceSeconds  float64 `json:"produce_seconds"`  // producing the saturate corpus
	AppliedSeconds  float64 `json:"applied_seconds"`  // produce start to everything applied
	EventsPerSec    float64 `json:"events_per_sec"`   // accepted events / applied_seconds
	MessagesPerSec  float64 `json:"messages_per_sec"` // records / applied_seconds
	CeilingPerSec   float64 `json:"ceiling_records_per_sec"`
	CeilingFraction float64 `json:"engine_fraction_of_ceiling"`
	CHCaughtUpSec   float64 `json:"clickhouse_caught_up_seconds,omitempty"` // produce start to sink backlog 0

	Probe map[string]latency `json:"probe_lookup_visible_ms"` // by phase
	// ProbeReplica is, by phase, produce to answered by the lookup replica.
	ProbeReplica map[string]latency `json:"probe_replica_visible_ms,omitempty"`
	ProbeCH      map[string]latency `json:"probe_clickhouse_visible_ms,omitempty"`
	Lookup       map[string]latency `json:"http_lookup_ms"`           // by phase, service time
	LookupSched  map[string]latency `json:"http_lookup_scheduled_ms"` // from the intended send time
	LookupCodes  map[string]int     `json:"http_lookup_status"`
	// LookupNotFound is the service time of the 404 answers, by phase.
	LookupNotFound map[string]latency `json:"http_lookup_404_ms,omitempty"`
	// LookupContext is, by phase, the API's server-side time and the
	// machine's CPU pressure (see phaseContext).
	LookupContext map[string]phaseContext `json:"http_lookup_context,omitempty"`
	LookupLate    int64                   `json:"http_lookups_dropped"`
	PacedRate     float64                 `json:"paced_messages_per_sec"`
	PacedSent     int                     `json:"paced_messages"`

	RSS         rss        `json:"rss"`
	DiskBytes   int64      `json:"badger_disk_bytes"`   // allocated blocks of the data directory after the saturate phase
	DiskByKind  store.Disk `json:"badger_disk_by_kind"` // engine.Disk: tables, value log, WAL, other
	Identifiers int        `json:"identifiers"`         // identifiers the engine holds then (truth ids found + probes)
	BytesPerID  float64    `json:"badger_bytes_per_identifier"`
	Profiles    uint64     `json:"profiles"`
	Merges      uint64     `json:"merges"`
	Conflicts   uint64     `json:"conflicts"`

	Spine bench.Accuracy `json:"spine_accuracy"`
	// Glue counts, by type, the identifiers in wrongly merged profiles that
	// no single person owns (shared tablets, junk): what joined the people.
	Glue map[string]int `json:"spine_wrong_merge_glue,omitempty"`
	// CPU is the process's CPU time over wall time in the saturate phase
	// (at most nproc), and LoadAvg the 1-minute load average before and
	// after the run: on a shared box they show how much of the machine
	// the bench really had.
	CPUPerWall float64     `json:"cpu_seconds_per_wall_second"`
	LoadAvg    [2]float64  `json:"load_average_1m"`
	Peer       *peerResult `json:"peer,omitempty"`
	Notes      []string    `json:"notes,omitempty"`
}

type machine struct {
	CPUs       int    `json:"nproc"`
	MemTotal   string `json:"mem_total"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Procs      int    `json:"gomaxprocs"`  // as the engine ran
	IngestNice int    `json:"ingest_nice"` // --ingest-nice
	// Lookups says what served the HTTP lookup load: "engine", or
	// "replica" and, when they ran at a real-time priority, the replica's
	// and the load client's SCHED_FIFO priority.
	Lookups    string `json:"lookups_served_by"`
	RealtimePr int    `json:"lookups_realtime_priority,omitempty"`
}

type rss struct {
	BaselineMB float64 `json:"baseline_mb"` // after rendering the streams, before the broker and engine
	PeakMB     float64 `json:"peak_mb"`     // VmHWM at the end of the paced phase
	EndMB      float64 `json:"end_mb"`      // VmRSS then
}

type peerResult struct {
	Occurrences int64          `json:"occurrences"`
	Nodes       uint64         `json:"identifiers"`
	Rounds      int            `json:"rounds"`
	LoadSeconds float64        `json:"load_seconds"`   // decode + insert
	StitchSecs  float64        `json:"stitch_seconds"` // label propagation + read back
	TotalSecs   float64        `json:"total_seconds"`
	Accuracy    bench.Accuracy `json:"accuracy"`
}

type latency struct {
	N      int     `json:"n"`
	P50    float64 `json:"p50"`
	P95    float64 `json:"p95"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	Unseen int     `json:"unseen,omitempty"` // probes never seen by the end
	Lost   int     `json:"lost,omitempty"`   // probes whose produce failed (not sent), not in N or Unseen
}

func summarize(xs []float64) latency {
	if len(xs) == 0 {
		return latency{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(f float64) float64 { return s[min(len(s)-1, int(f*float64(len(s))))] }
	return latency{N: len(s), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: s[len(s)-1]}
}

func (b *benchRun) run(ctx context.Context) (err error) {
	c, o := b.cfg, b.o
	res := &results{Command: "spine bench " + strings.Join(c.args, " "), Date: time.Now().UTC(), Machine: thisMachine(),
		Persons: c.persons, Seed: c.seed, SyncMode: map[bool]string{false: "sync", true: "no-sync"}[c.noSync],
		LogFaults: map[bool]string{false: "read-around", true: "one page"}[o.NoReadAround],
		Probe:     map[string]latency{}, Lookup: map[string]latency{}, LookupSched: map[string]latency{}}
	if c.pprof != "" {
		runtime.SetBlockProfileRate(int(time.Millisecond))
		runtime.SetMutexProfileFraction(10)
		srv := &http.Server{Addr: c.pprof, Handler: http.DefaultServeMux}
		go func() { _ = srv.ListenAndServe() }()
		defer srv.Close()
	}
	var idb [6]byte
	_, _ = rand.Read(idb[:])
	b.runID = hex.EncodeToString(idb[:])

	fmt.Fprintf(b.out, "spine bench: rendering the streams (%d persons, seed %d, hard cases on)...\n", c.persons, c.seed)
	gcfg := gen.DefaultConfig()
	gcfg.Persons, gcfg.Seed, gcfg.Hard, gcfg.TopicPrefix = c.persons, c.seed, true, o.TopicPrefix
	sat, err := render(gcfg, true)
	if err != nil {
		return err
	}
	var paced *corpus
	if c.paced > 0 {
		pcfg := gcfg
		pcfg.Persons, pcfg.Seed = max(1, c.persons/2), c.seed+1_000_003
		if paced, err = render(pcfg, false); err != nil {
			return err
		}
	}
	res.Messages, res.AcceptedTruth = len(sat.recs), sat.truth.Totals.Accepted
	res.LoadAvg[0] = loadAvg()
	defer func() { res.LoadAvg[1] = loadAvg() }()
	runtime.GC()
	res.RSS.BaselineMB = procStatusMB("VmRSS")
	fmt.Fprintf(b.out, "  saturate stream: %d messages (%d MB), truth: %d accepted events; paced stream: %d messages\n",
		len(sat.recs), len(sat.buf)>>20, sat.truth.Totals.Accepted, lenRecs(paced))

	// The engine and everything around it.
	if o.Data == "" {
		dir, err := os.MkdirTemp("", "spine-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.Data = dir
	}
	if o.HTTP == "" {
		if o.HTTP, err = freeLoopback(); err != nil {
			return err
		}
	}
	if o.Tokens == "" {
		var t [12]byte
		_, _ = rand.Read(t[:])
		b.token = "bench-" + hex.EncodeToString(t[:])
		o.Tokens = b.token + ":read"
	} else {
		b.token, _, _ = strings.Cut(o.Tokens, ":")
	}
	o.NoSync = c.noSync
	broker, err := startBrokerChild(ctx, o.TopicPrefix, o.Partitions)
	if err != nil {
		return err
	}
	defer broker.stop()
	o.Brokers = []string{broker.addr}

	if o.ClickHouse != "" {
		if b.wh, err = bench.OpenWarehouse(ctx, o.ClickHouse, o.CHDatabase+"_peer"); err != nil {
			return err
		}
		defer b.wh.Close()
		// A fresh bench database, so earlier runs' rows neither count nor
		// slow this one. Only a database named like the default is dropped.
		if strings.HasPrefix(o.CHDatabase, "spine_bench") {
			if err := b.wh.Exec(ctx, "DROP DATABASE IF EXISTS "+o.CHDatabase); err != nil {
				return err
			}
		} else {
			res.Notes = append(res.Notes, "ClickHouse database "+o.CHDatabase+" was not dropped first: earlier rows remain")
		}
	} else {
		res.Notes = append(res.Notes, "no --clickhouse: ClickHouse sink, produce-to-ClickHouse latency and the peer skipped")
		fmt.Fprintln(b.out, "  no --clickhouse given: the ClickHouse sink, its latency and the warehouse-native peer are skipped")
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if b.p, err = startProcess(runCtx, o, b.log); err != nil {
		return err
	}
	res.Machine.Procs, res.Machine.IngestNice = runtime.GOMAXPROCS(0), b.p.nice
	defer func() {
		stopRun()
		if werr := b.p.wait(); werr != nil && err == nil {
			err = werr
		}
	}()
	for !b.p.cons.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.p.fail:
			return errors.New("bench: engine failed to start")
		case <-time.After(20 * time.Millisecond):
		}
	}

	res.Machine.Lookups = "engine"
	if c.replica {
		prio := c.replicaRT
		if prio > 0 {
			// The load's client runs one above: both must be allowed.
			err := realtimeAllowed(prio)
			if err == nil {
				err = realtimeAllowed(prio + 1)
			}
			if err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("replica and lookup client at normal priority: SCHED_FIFO %d refused (%v)", prio, err))
				prio = 0
			}
		}
		if b.replica, err = b.startReplicaChild(runCtx, prio); err != nil {
			return err
		}
		defer b.replica.stop()
		b.probes.replica = map[int32][]*probe{}
		res.Machine.Lookups, res.Machine.RealtimePr = "replica", prio
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(10_000), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()

	// Background measurement loops, stopped before the report.
	loopCtx, stopLoops := context.WithCancel(runCtx)
	var loops sync.WaitGroup
	defer func() { stopLoops(); loops.Wait() }()
	b.start = time.Now()
	b.tl.start = b.start
	loops.Go(func() { b.progress(loopCtx) })
	// A broker that dies would leave the engine waiting for records until
	// the duration limit: end the run instead.
	loops.Go(func() {
		select {
		case <-loopCtx.Done():
		case <-broker.done:
			b.log.Error("bench: the broker stopped", "err", broker.exited())
			stopRun()
		}
	})
	if b.replica != nil {
		loops.Go(func() {
			select {
			case <-loopCtx.Done():
			case <-b.replica.done:
				b.log.Error("bench: the lookup replica stopped", "err", b.replica.err, "stderr", b.replica.stderr.String())
				stopRun()
			}
		})
	}
	loops.Go(func() { b.produceProbes(loopCtx, cl) })
	loops.Go(func() { b.watchProbes(loopCtx) })
	if b.replica != nil {
		loops.Go(func() { b.watchProbesReplica(loopCtx) })
	}
	if b.wh != nil {
		loops.Go(func() { b.watchProbesCH(loopCtx) })
	}
	if c.lookupRate > 0 {
		ids := lookupIDs(sat.truth)
		loops.Go(func() {
			if err := b.lookupLoad(loopCtx, ids); err != nil {
				b.log.Warn("bench: lookup load failed", "err", err)
			}
		})
	}
	deadline := b.start.Add(c.limit)
	limCtx, stopLim := context.WithDeadline(runCtx, deadline)
	defer stopLim()

	// Phase 1: saturate.
	var prof *os.File
	if c.cpuProfile != "" {
		if prof, err = os.Create(c.cpuProfile); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			return err
		}
	}
	b.setPhase(phaseSaturate)
	cpu0 := cpuSeconds()
	produceStart := time.Now()
	if _, err := produceCorpus(limCtx, limCtx, cl, sat, o.Partitions, 0); err != nil {
		return b.partial(res, fmt.Errorf("saturate: produce: %w", err))
	}
	res.ProduceSeconds = time.Since(produceStart).Seconds()
	ends, err := endOffsets(limCtx, cl, sat.topics)
	if err != nil {
		return err
	}
	if err := b.waitApplied(limCtx, ends); err != nil {
		return b.partial(res, fmt.Errorf("saturate: wait for the engine: %w", err))
	}
	applied := time.Since(produceStart)
	res.CPUPerWall = (cpuSeconds() - cpu0) / applied.Seconds()
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	b.tl.mark(time.Since(b.start).Seconds(), "ceiling")
	b.setPhase(phaseCeiling) // lookups pause while scoring
	st := b.p.engine.Stats()
	res.AppliedSeconds = applied.Seconds()
	res.EventsApplied = st.Events
	res.EventsPerSec = float64(sat.truth.Totals.Accepted) / applied.Seconds()
	res.MessagesPerSec = float64(len(sat.recs)) / applied.Seconds()
	res.Profiles, res.Merges, res.Conflicts = st.Profiles, st.Merges, st.Conflicts
	if o.NoReadAround && st.ReadAround {
		res.LogFaults = "read-around (advising the log mappings failed)"
	}
	fmt.Fprintf(b.out, "\n  saturate: %d messages applied in %.1fs (%.0f events/s, %.0f messages/s)\n",
		len(sat.recs), applied.Seconds(), res.EventsPerSec, res.MessagesPerSec)

	// Accuracy and disk use, before the paced stream adds other people.
	res.Spine = bench.Score(sat.truth, func(id canon.Identifier) (string, bool) {
		p, err := b.p.engine.Lookup(ctx, id)
		if err != nil {
			return "", false
		}
		return p.ID, true
	})
	res.Glue = b.glue(ctx, sat.truth)
	res.Identifiers = b.knownIdentifiers(ctx, sat.truth) + b.probes.visibleCount()
	disk := b.p.engine.Disk()
	res.DiskByKind, res.DiskBytes = disk, disk.Total()
	if res.Identifiers > 0 {
		res.BytesPerID = float64(res.DiskBytes) / float64(res.Identifiers)
	}
	if b.wh != nil {
		if err := b.waitBacklog(limCtx); err == nil {
			res.CHCaughtUpSec = time.Since(produceStart).Seconds()
		}
	}

	// The quiet phase: the lookup load alone, once every sink has caught
	// up, for the API's latency on this machine without ingest, to read
	// the other phases' figures against.
	if c.quiet > 0 && c.lookupRate > 0 {
		if err := b.waitBacklog(limCtx); err != nil {
			return b.partial(res, fmt.Errorf("quiet: wait for the sinks: %w", err))
		}
		// The replica has read the stream up to the last probe.
		b.waitProbes(limCtx, 30*time.Second)
		b.tl.mark(time.Since(b.start).Seconds(), "quiet")
		b.setPhase(phaseQuiet)
		select {
		case <-limCtx.Done():
			return b.partial(res, fmt.Errorf("quiet: %w", limCtx.Err()))
		case <-time.After(c.quiet):
		}
	}

	// Phase 2: the ceiling.
	if b.phase.Load() == phaseQuiet {
		b.tl.mark(time.Since(b.start).Seconds(), "ceiling")
		b.setPhase(phaseCeiling)
	}
	ceil, err := rawCeiling(limCtx, o.Brokers, ends)
	if err != nil {
		return b.partial(res, fmt.Errorf("ceiling: %w", err))
	}
	res.CeilingPerSec = ceil
	res.CeilingFraction = res.MessagesPerSec / ceil
	fmt.Fprintf(b.out, "  ceiling: a bare consumer reads %.0f records/s; the engine ran at %.1f%% of it\n", ceil, 100*res.CeilingFraction)

	// Phase 3: paced.
	if paced != nil && time.Now().Before(deadline) {
		b.tl.mark(time.Since(b.start).Seconds(), "paced")
		b.setPhase(phasePaced)
		rate := c.pacedFraction * res.MessagesPerSec
		res.PacedRate = rate
		pctx, stopPaced := context.WithTimeout(limCtx, c.paced)
		n, err := produceCorpus(pctx, limCtx, cl, paced, o.Partitions, rate)
		stopPaced()
		res.PacedSent = n
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return b.partial(res, fmt.Errorf("paced: produce: %w", err))
		}
		ends, err := endOffsets(limCtx, cl, paced.topics)
		if err == nil {
			err = b.waitApplied(limCtx, ends)
		}
		if err != nil {
			return b.partial(res, fmt.Errorf("paced: wait for the engine: %w", err))
		}
	}
	b.setPhase(phaseDone)
	if b.wh != nil {
		_ = b.waitBacklog(limCtx)
		time.Sleep(300 * time.Millisecond) // one more round of the ClickHouse watcher
	}
	// Probes sent just before the phase ended may not be visible yet; the
	// slowest must not go uncounted as unseen (the wait is bounded).
	b.waitProbes(limCtx, 10*time.Second)
	// No probe is produced after the phases; one still buffered is sent,
	// or lost, before the loops stop and the probes are counted.
	fctx, cancelFlush := context.WithTimeout(limCtx, 5*time.Second)
	_ = cl.Flush(fctx)
	cancelFlush()
	stopLoops()
	loops.Wait()
	fmt.Fprintln(b.out)
	res.RSS.PeakMB, res.RSS.EndMB = procStatusMB("VmHWM"), procStatusMB("VmRSS")
	b.collect(res)

	if b.wh != nil && !c.noPeer {
		fmt.Fprintln(b.out, "  peer: warehouse-native stitching in ClickHouse (label propagation in SQL)...")
		pr, err := runPeer(ctx, b.wh, sat)
		if err != nil {
			res.Notes = append(res.Notes, "peer failed: "+err.Error())
		} else {
			res.Peer = pr
		}
	} else if b.wh == nil {
		res.Notes = append(res.Notes, "peer skipped: it needs --clickhouse")
	}
	return b.finish(res)
}

// glue looks into the profiles that hold more than one person's
// identifiers and counts, by type, their identifiers no single person owns.
func (b *benchRun) glue(ctx context.Context, t gen.Truth) map[string]int {
	owner := map[canon.Identifier]int{}
	persons := append(slices.Clone(t.Persons), t.Orphans...)
	for i, p := range persons {
		for _, id := range p.Identifiers {
			if _, dup := owner[id]; dup {
				owner[id] = -1
			} else {
				owner[id] = i
			}
		}
	}
	in := map[string]map[int]bool{}
	for id, p := range owner {
		if p < 0 {
			continue
		}
		prof, err := b.p.engine.Lookup(ctx, id)
		if err != nil {
			continue
		}
		if in[prof.ID] == nil {
			in[prof.ID] = map[int]bool{}
		}
		in[prof.ID][p] = true
	}
	out := map[string]int{}
	for pid, ps := range in {
		if len(ps) < 2 {
			continue
		}
		prof, err := b.p.engine.Profile(ctx, pid)
		if err != nil {
			continue
		}
		for _, id := range prof.Identifiers {
			if p, ok := owner[id.Identifier()]; !ok || p < 0 {
				out[string(id.Type)]++
			}
		}
	}
	return out
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// partial reports what was measured before a phase failed or ran out of
// time, and returns the failure.
func (b *benchRun) partial(res *results, cause error) error {
	res.Notes = append(res.Notes, "incomplete run: "+cause.Error())
	b.setPhase(phaseDone)
	res.RSS.PeakMB, res.RSS.EndMB = procStatusMB("VmHWM"), procStatusMB("VmRSS")
	b.collect(res)
	if err := b.finish(res); err != nil {
		return errors.Join(cause, err)
	}
	return fmt.Errorf("bench: %w", cause)
}

func lenRecs(c *corpus) int {
	if c == nil {
		return 0
	}
	return len(c.recs)
}

// errFlushTimeout ends a flush that waited its limit for the broker.
var errFlushTimeout = errors.New("records still unacknowledged after a minute")

// produceCorpus produces c's records in order, as fast as the broker takes
// them (rate 0) or at rate records a second, spreading each topic's
// records over the partitions by key hash like the generator's producer.
// It returns how many were acknowledged.
//
// stop ends the producing, run the records handed over before: kgo fails
// a buffered batch whose first record's context is done, with every
// record in it, and those may be another loop's (the probes). So a phase
// that ends on time ends stop only, and a run that stops ends run too,
// failing what is still buffered at once.
func produceCorpus(stop, run context.Context, cl *kgo.Client, c *corpus, partitions int, rate float64) (int, error) {
	var acked atomic.Int64
	var firstErr atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	for i := range c.recs {
		if stop.Err() != nil || firstErr.Load() != nil {
			break
		}
		if rate > 0 && i%64 == 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				select {
				case <-time.After(d):
				case <-stop.Done():
				}
			}
		}
		r := c.record(i)
		r.Partition = int32(fnv32(r.Key) % uint32(partitions))
		cl.Produce(run, r, done)
	}
	fctx, cancel := context.WithTimeoutCause(run, time.Minute, errFlushTimeout)
	defer cancel()
	flushErr := cl.Flush(fctx)
	if flushErr != nil {
		flushErr = context.Cause(fctx)
	}
	if p := firstErr.Load(); p != nil {
		return int(acked.Load()), *p
	}
	if flushErr != nil {
		return int(acked.Load()), flushErr
	}
	return int(acked.Load()), stop.Err()
}

func fnv32(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// endOffsets returns the high watermark of every partition of topics.
func endOffsets(ctx context.Context, cl *kgo.Client, topics []string) (map[canon.Partition]int64, error) {
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	out := map[canon.Partition]int64{}
	var errs []error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, o.Err)
			return
		}
		out[canon.Partition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	return out, errors.Join(errs...)
}

// waitApplied waits until the engine's stored positions reach ends, and
// the writer's bookkeeping of that commit (the Stats counters) is done.
func (b *benchRun) waitApplied(ctx context.Context, ends map[canon.Partition]int64) error {
	for {
		pos, err := b.p.engine.Positions(ctx)
		if err != nil {
			return err
		}
		done := true
		for p, end := range ends {
			if end > 0 && pos[p] < end {
				done = false
				break
			}
		}
		if done {
			return b.p.engine.Sync(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.p.fail:
			return errors.New("engine stopped")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitBacklog waits until every sink has written the whole change log.
func (b *benchRun) waitBacklog(ctx context.Context) error {
	for b.p.engine.Stats().Backlog > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.p.fail:
			return errors.New("engine stopped")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// rawCeiling reads every record below ends with a bare consumer (no group,
// no decoding) and returns records per second.
func rawCeiling(ctx context.Context, brokers []string, ends map[canon.Partition]int64) (float64, error) {
	var topics []string
	var total int64
	for p, e := range ends {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
		total += e
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	var n int64
	next := map[canon.Partition]int64{}
	for n < total {
		fs := cl.PollRecords(ctx, 50_000)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return 0, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			p := canon.Partition{Topic: r.Topic, Partition: r.Partition}
			if r.Offset < ends[p] && r.Offset >= next[p] {
				n++
				next[p] = r.Offset + 1
			}
		})
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
