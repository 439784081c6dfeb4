package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/consumer"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks"
	"github.com/spinecdp/spine/sinks/clickhouse"
	"github.com/spinecdp/spine/sinks/httpapi"
	"github.com/spinecdp/spine/sinks/kafka"
)

// runOptions are the settings of the engine process, shared by run and demo.
type runOptions struct {
	Brokers         []string
	TopicPrefix     string
	Partitions      int
	ClickHouse      string
	CHDialect       string
	CHDatabase      string
	CHUser          string
	CHPassword      string
	CHRollupEvery   time.Duration
	CHSnapshotEvery time.Duration
	Data            string
	HTTP            string
	Tokens          string
	DefaultRegion   string
	MaxBacklog      uint64
	ForgetSinks     string
	CacheMB         int
	KeyFilterMB     int
	EncryptionKey   string // file holding the key
	MaxPoll         int
	AnalyticsPolicy string
	Blocked         string
	BlockedPatterns string
	BlockedDomains  string
	APIRate         float64
	NoSync          bool
	NoReadAround    bool
	Procs           int
	IngestNice      int
	Kafka           kafkaConn // TLS and SASL of both Kafka clients
}

func runFlags(name string) (*flagSetWithOptions, *runOptions) {
	fs := newFlags(name)
	o := &runOptions{}
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka seed brokers, comma-separated")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", "spine.", "prefix of every topic name")
	fs.IntVar(&o.Partitions, "partitions", 3, "partitions of topics the engine creates")
	fs.StringVar(&o.ClickHouse, "clickhouse", "", "ClickHouse native-protocol address host:port; empty turns the ClickHouse sink off")
	fs.StringVar(&o.CHDialect, "clickhouse-dialect", "auto", "schema dialect: modern (ClickHouse 25.8+), legacy (18.16) or auto")
	fs.StringVar(&o.CHDatabase, "clickhouse-database", "spine", "ClickHouse database")
	fs.StringVar(&o.CHUser, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&o.CHPassword, "clickhouse-password", "", "ClickHouse password")
	fs.DurationVar(&o.CHRollupEvery, "clickhouse-rollup-interval", 5*time.Second, "least time between two recounts of the dashboard's daily channel roll-ups (0: after every batch)")
	fs.DurationVar(&o.CHSnapshotEvery, "clickhouse-snapshot-interval", time.Minute, "least time between two snapshots of identity levels, lifecycle funnel and consent rates, which read every profile (0: after every batch that changes one)")
	fs.StringVar(&o.Data, "data", "./spine-data", "state directory (Badger)")
	fs.StringVar(&o.HTTP, "http", "127.0.0.1:8080", "lookup API listen address")
	fs.StringVar(&o.Tokens, "tokens", "", "API bearer tokens: TOKEN:SCOPE+SCOPE[,TOKEN:SCOPE...] with scopes read, write, admin")
	fs.StringVar(&o.DefaultRegion, "default-region", "US", "region of phone numbers written without a country code")
	fs.Uint64Var(&o.MaxBacklog, "max-backlog", 500_000, "change records the slowest sink may lag before ingestion pauses")
	fs.StringVar(&o.ForgetSinks, "forget-sinks", "", "sinks of earlier runs gone for good, comma-separated (clickhouse, kafka): the change log stops keeping records and erasures for them")
	fs.IntVar(&o.CacheMB, "cache-mb", 128, "memory for the identifier and profile caches, MiB")
	fs.IntVar(&o.KeyFilterMB, "key-filter-mb", 16, "memory for each of the two key filters (message ids, identifiers), MiB: one per 14 million keys")
	fs.StringVar(&o.EncryptionKey, "encryption-key-file", "", "file with a 16, 24 or 32-byte key: encrypts the state at rest")
	fs.IntVar(&o.MaxPoll, "max-poll-records", 5000, "records per consumed batch")
	fs.StringVar(&o.Blocked, "blocked-values", "", "identifier values that never link anything, comma-separated, added to the built-in list (null, unknown, 0, ...)")
	fs.StringVar(&o.BlockedPatterns, "blocked-patterns", "", "regular expressions of blocked identifier values, comma-separated, added to the built-in ones")
	fs.StringVar(&o.BlockedDomains, "blocked-email-domains", "", "email domains that never belong to a person, comma-separated (*.corp blocks subdomains), added to the built-in ones (example.com, *.test, ...)")
	fs.Float64Var(&o.APIRate, "api-rate-limit", 1000, "API requests per second allowed per token, with bursts of twice that (0: no limit)")
	fs.StringVar(&o.AnalyticsPolicy, "analytics-policy", "opt-out", "whose rows analytics sinks (ClickHouse) get: opt-out (all but those who withdrew analytics consent), opt-in (only those who granted it), ignore")
	fs.IntVar(&o.IngestNice, "ingest-nice", 0, "CPU niceness (0-19) of the threads that decode, apply and sink events, so that the kernel prefers the API's lookups when both want a CPU, at some cost in how soon events show (Linux; 0: all threads alike)")
	fs.BoolVar(&o.NoReadAround, "no-read-around", false, "map Badger's value and memtable logs for random access (Linux), so that page faults in them are short: a shorter lookup tail for a lookup replica on the same machine, at 7-18 % fewer events/s")
	fs.IntVar(&o.Procs, "procs", 0, "Go scheduler threads (GOMAXPROCS); 0: the GOMAXPROCS variable if set, else the CPUs, at least 8 with --ingest-nice, else 4")
	o.Kafka.register(fs)
	return &flagSetWithOptions{fs, func() { o.Brokers = splitList(*brokers) }}, o
}

func cmdRun(ctx context.Context, args []string, env func(string) string, log *slog.Logger) error {
	fs, o := runFlags("run")
	if err := fs.parse(args, env); err != nil {
		return err
	}
	if o.Tokens == "" {
		return errors.New("run: --tokens is required (for example --tokens 's3cret:read+write+admin')")
	}
	if o.KeyFilterMB < 1 || o.CacheMB < 1 {
		return fmt.Errorf("run: --cache-mb (%d) and --key-filter-mb (%d) must be at least 1", o.CacheMB, o.KeyFilterMB)
	}
	p, err := startProcess(ctx, o, log)
	if err != nil {
		return err
	}
	return p.wait()
}

// The engine's API carries out commands; without this, a change to its Do
// would turn every command endpoint into a 501 unnoticed.
var _ httpapi.Commander = engine.API{}

// process is a running engine with its consumer, sinks and API.
type process struct {
	engine *engine.Engine
	api    *httpapi.Server
	cons   *consumer.Consumer
	reg    *prometheus.Registry
	log    *slog.Logger
	nice   int // of the ingest's threads; 0 when they are not lowered

	stopIngest, stopSinks, stopEngine context.CancelFunc
	ingestWG, sinksWG, engineWG       sync.WaitGroup

	errMu sync.Mutex
	err   error
	fail  chan struct{} // closed on the first component failure
	once  sync.Once
}

func (p *process) failed(name string, err error) {
	if err == nil {
		return
	}
	p.errMu.Lock()
	if p.err == nil {
		p.err = fmt.Errorf("%s: %w", name, err)
	}
	p.errMu.Unlock()
	p.once.Do(func() { close(p.fail) })
}

// startProcess wires and starts everything. Shutdown (wait) runs in order:
// API and consumer first, then the sinks drain, then the engine closes.
func startProcess(ctx context.Context, o *runOptions, log *slog.Logger) (_ *process, err error) {
	if o.IngestNice < 0 || o.IngestNice > 19 {
		return nil, fmt.Errorf("--ingest-nice %d: want 0 to 19", o.IngestNice)
	}
	background := backgroundAt(o.IngestNice, log)
	floor := minProcs
	if background != nil {
		floor = minProcsNice
	}
	// Below the floor with lowered threads, those can hold every P while
	// the kernel keeps them waiting, and the API has none to run on.
	if n := setProcs(o.Procs, os.Getenv("GOMAXPROCS") != "", floor, log); background != nil && n < floor {
		log.Warn("fewer scheduler threads than --ingest-nice needs: lookups may wait for one held by a lowered ingest thread", "gomaxprocs", n, "floor", floor)
	}
	// undo closes what was opened when a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	norm, err := normalizer(o)
	if err != nil {
		return nil, err
	}
	tokens, err := httpapi.ParseTokens(o.Tokens)
	if err != nil {
		return nil, err
	}

	var chSink *clickhouse.Sink
	if o.ClickHouse != "" {
		cfg := clickhouse.DefaultConfig(o.ClickHouse)
		cfg.Database, cfg.Username, cfg.Password = o.CHDatabase, o.CHUser, o.CHPassword
		cfg.RollupInterval, cfg.SnapshotInterval = o.CHRollupEvery, o.CHSnapshotEvery
		if cfg.Dialect, err = dialect(o.CHDialect); err != nil {
			return nil, err
		}
		if chSink, err = clickhouse.Open(ctx, cfg, log, reg); err != nil {
			return nil, err
		}
		undo = append(undo, func() { chSink.Close(context.Background()) })
		if err := chSink.Migrate(ctx); err != nil {
			return nil, err
		}
		log.Info("clickhouse sink on", "addr", o.ClickHouse, "database", o.CHDatabase, "dialect", chSink.Dialect())
	} else {
		log.Info("clickhouse sink off: no --clickhouse address given")
	}
	kconn, err := kafkaConnOpts(o.Kafka, log)
	if err != nil {
		return nil, err
	}
	// The Kafka sink is built once the engine is open: its pseudonyms are
	// keyed with a secret the engine keeps in its state.
	sinkNames := []string{kafka.SinkName}
	if chSink != nil {
		sinkNames = append(sinkNames, chSink.Name())
	}

	ecfg := engine.DefaultConfig(o.Data)
	ecfg.MaxBacklog = o.MaxBacklog
	ecfg.ForgetSinks = splitList(o.ForgetSinks)
	ecfg.AnalyticsPolicy = o.AnalyticsPolicy
	ecfg.Store.CacheBytes = int64(o.CacheMB) << 20
	ecfg.Store.KeyFilterBytes = int64(o.KeyFilterMB) << 20
	ecfg.Store.SyncWrites = !o.NoSync
	ecfg.Store.NoReadAround = o.NoReadAround
	ecfg.Store.Logger = log
	ecfg.Background = background
	ecfg.Sinks = sinkNames
	if o.EncryptionKey != "" {
		if ecfg.Store.EncryptionKey, err = os.ReadFile(o.EncryptionKey); err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
	}
	eng, err := engine.Open(ecfg, log, reg)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { eng.Close() })
	// Identifiers log as tags keyed with the state's secret (the prefix
	// keeps them apart from the Kafka pseudonyms under the same key).
	canon.SetLogKey(eng.PseudonymKey())

	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.TopicPrefix, kcfg.Conn = o.Brokers, o.TopicPrefix, kconn
	kcfg.PseudonymKey = eng.PseudonymKey()
	kSink, err := kafka.New(kcfg, log, reg)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { kSink.Close(context.Background()) })
	outs := []sinks.Sink{kSink}
	if chSink != nil {
		outs = append(outs, chSink)
	}

	ccfg := consumer.DefaultConfig()
	ccfg.Brokers, ccfg.TopicPrefix = o.Brokers, o.TopicPrefix
	ccfg.CreateTopics, ccfg.Partitions, ccfg.MaxPollRecords = true, o.Partitions, o.MaxPoll
	ccfg.Conn = kconn
	ccfg.Background = background
	ccfg.InstanceID = instanceID(o.Data)
	cons, err := consumer.New(ccfg, ingest.Decoders(norm, msg.DefaultLimits()), eng.Pipelined(), log, reg)
	if err != nil {
		return nil, err
	}
	undo = append(undo, cons.Close)

	acfg := httpapi.DefaultConfig()
	acfg.Addr, acfg.Tokens = o.HTTP, tokens
	acfg.RateLimit = httpapi.RateLimit{PerSecond: o.APIRate, Burst: int(2 * o.APIRate)}
	acfg.Ready = cons.Ready
	var profiles httpapi.Profiles = engine.API{Engine: eng}
	if chSink != nil {
		profiles = &chDashboardAPI{API: engine.API{Engine: eng}, ch: chSink, log: log}
	}
	api, err := httpapi.New(acfg, profiles, norm, log, reg, reg)
	if err != nil {
		return nil, err
	}

	p := &process{engine: eng, api: api, cons: cons, reg: reg, log: log, fail: make(chan struct{})}
	if background != nil {
		p.nice = o.IngestNice
	}
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	sinksCtx, stopSinks := context.WithCancel(context.WithoutCancel(ctx))
	ingestCtx, stopIngest := context.WithCancel(ctx)
	p.stopEngine, p.stopSinks, p.stopIngest = stopEngine, stopSinks, stopIngest

	p.engineWG.Go(func() { p.failed("engine", eng.Run(engineCtx)) })
	smetrics := sinks.NewMetrics(reg)
	for _, s := range outs {
		p.sinksWG.Go(func() {
			if background != nil {
				background()
			}
			rc := sinks.DefaultRunConfig()
			rc.Log, rc.Metrics = log, smetrics
			p.failed("sink "+s.Name(), sinks.Run(sinksCtx, eng, s, rc))
			if err := s.Close(context.Background()); err != nil {
				log.Warn("sink close", "sink", s.Name(), "err", err)
			}
		})
	}
	p.ingestWG.Go(func() { p.failed("consumer", cons.Run(ingestCtx)) })
	p.ingestWG.Go(func() { p.failed("api", api.Run(ingestCtx)) })
	go func() {
		select {
		case <-ctx.Done():
		case <-p.fail:
		}
		stopIngest()
	}()
	return p, nil
}

// wait blocks until the process stops (context cancelled or a component
// failed) and shuts it down in order.
func (p *process) wait() error {
	p.ingestWG.Wait()
	p.cons.Close()
	// Give sinks a moment to write what the last batches produced, once
	// the batches the consumer queued are applied.
	deadline := time.Now().Add(10 * time.Second)
	syncCtx, cancel := context.WithDeadline(context.Background(), deadline)
	if err := p.engine.Sync(syncCtx); err != nil {
		p.log.Warn("the last batches were not applied before the sinks stop; the next start applies them", "err", err)
	}
	cancel()
	for p.engine.Stats().Backlog > 0 && time.Now().Before(deadline) {
		select {
		case <-p.fail:
			deadline = time.Now()
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.stopSinks()
	p.sinksWG.Wait()
	p.stopEngine()
	p.engineWG.Wait()
	if err := p.engine.Close(); err != nil {
		p.failed("engine close", err)
	}
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

func dialect(s string) (schemas.Dialect, error) {
	switch s {
	case "modern":
		return schemas.Modern, nil
	case "legacy":
		return schemas.Legacy, nil
	case "auto", "":
		return clickhouse.DialectAuto, nil
	}
	return "", fmt.Errorf("unknown ClickHouse dialect %q (want modern, legacy or auto)", s)
}

// instanceID is the consumer's static group membership id: stable for a
// state directory on a host, so a restart after a crash takes the
// partitions back without waiting for the old session to expire.
func instanceID(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + abs))
	return "spine-" + hex.EncodeToString(sum[:8])
}

// normalizer builds identifier normalization from the options: the
// built-in blocked values plus the configured ones.
func normalizer(o *runOptions) (*normalize.Normalizer, error) {
	c := normalize.DefaultConfig()
	c.DefaultRegion = o.DefaultRegion
	c.Blocked = append(c.Blocked, splitList(o.Blocked)...)
	c.BlockedPatterns = append(c.BlockedPatterns, splitList(o.BlockedPatterns)...)
	c.BlockedEmailDomains = append(c.BlockedEmailDomains, splitList(o.BlockedDomains)...)
	return normalize.New(c)
}

// minProcs is the fewest scheduler threads the engine runs with when left
// to choose.
//
// Go notices a readable socket only when a scheduler thread (a P) runs out
// of goroutines to run, or from its monitor thread every 10 ms. While
// ingest keeps every P busy, a lookup can wait that long before its
// handler starts. With more Ps than CPU-bound goroutines, one P is
// usually idle and its thread waits in epoll, so the kernel wakes it the
// moment a request arrives. Measured on 2 CPUs saturated with ingest
// (bench/RESULTS.md): lookup p99 23–26 ms with 2 Ps, 6–9 ms with 4, for
// about 7% fewer events/s (the GC's dedicated worker is a whole P of 4).
const minProcs = 4

// minProcsNice is minProcs with --ingest-nice: the ingest's workers are
// locked to threads of their own (backgroundAt), and a locked goroutine
// holds its P while it runs, also while the kernel leaves its thread
// waiting. The writer, its encoding helper, two decoders and the sinks
// can all run at once, so eight Ps leave the API some (bench/RESULTS.md,
// "Ingest at nice 19").
const minProcsNice = 8

// setProcs sets GOMAXPROCS and returns it: n when positive; otherwise the
// runtime's choice (the CPUs, or the GOMAXPROCS variable when fromEnv),
// raised to floor unless the variable set it.
func setProcs(n int, fromEnv bool, floor int, log *slog.Logger) int {
	switch {
	case n > 0:
	case fromEnv:
		return runtime.GOMAXPROCS(0)
	default:
		n = max(runtime.GOMAXPROCS(0), floor)
	}
	if prev := runtime.GOMAXPROCS(n); prev != n {
		log.Info("scheduler threads", "gomaxprocs", n, "cpus", runtime.NumCPU())
	}
	return n
}
