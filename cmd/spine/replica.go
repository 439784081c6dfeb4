package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/httpapi"
	"github.com/spinecdp/spine/sinks/replica"
)

// replicaOptions are the flags of spine replica.
type replicaOptions struct {
	Brokers          []string
	TopicPrefix      string
	HTTP             string
	Tokens           string
	APIRate          float64
	MaxMB            int64
	RealtimePriority int
	ServeStale       bool
	Norm             runOptions // the normalizer's settings, named as for spine run
	Kafka            kafkaConn
}

func replicaFlags() (*flagSetWithOptions, *replicaOptions) {
	fs := newFlags("replica")
	o := &replicaOptions{}
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka seed brokers, comma-separated")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", "spine.", "prefix of every topic name: the replica reads PREFIX+profiles")
	fs.StringVar(&o.HTTP, "http", "127.0.0.1:8081", "lookup API listen address")
	fs.StringVar(&o.Tokens, "tokens", "", "API bearer tokens: TOKEN:SCOPE+SCOPE[,TOKEN:SCOPE...]; lookups need read")
	fs.Float64Var(&o.APIRate, "api-rate-limit", 1000, "API requests per second allowed per token, with bursts of twice that (0: no limit)")
	fs.Int64Var(&o.MaxMB, "max-mb", 4096, "memory bound of the replica's profiles, MiB: past it the replica stops with an error instead of serving a copy that no longer follows the stream")
	fs.IntVar(&o.RealtimePriority, "realtime-priority", 0, "run every thread of the process at this SCHED_FIFO priority (1-99), so the kernel runs lookups before the engine and anything else at a normal priority, the garbage collector's marking included (Linux, needs CAP_SYS_NICE; 0: normal priority)")
	fs.BoolVar(&o.ServeStale, "serve-stale", false, "answer lookups also while the replica does not follow the profile stream (not ready: catching up at start, or cut off from Kafka), at the risk of answering with a profile erased meanwhile; default: 503")
	fs.StringVar(&o.Norm.DefaultRegion, "default-region", "US", "region of phone numbers written without a country code (as the engine's)")
	fs.StringVar(&o.Norm.Blocked, "blocked-values", "", "identifier values that never link anything (as the engine's)")
	fs.StringVar(&o.Norm.BlockedPatterns, "blocked-patterns", "", "regular expressions of blocked identifier values (as the engine's)")
	fs.StringVar(&o.Norm.BlockedDomains, "blocked-email-domains", "", "email domains that never belong to a person (as the engine's)")
	o.Kafka.register(fs)
	return &flagSetWithOptions{fs, func() { o.Brokers = splitList(*brokers) }}, o
}

// cmdReplica serves the lookup API's reads from the profile stream, in a
// process of its own (sinks/replica).
func cmdReplica(ctx context.Context, args []string, env func(string) string, log *slog.Logger) error {
	fs, o := replicaFlags()
	if err := fs.parse(args, env); err != nil {
		return err
	}
	if o.Tokens == "" {
		return errors.New("replica: --tokens is required (for example --tokens 's3cret:read')")
	}
	if o.MaxMB < 1 {
		return fmt.Errorf("replica: --max-mb (%d) must be at least 1", o.MaxMB)
	}
	// Identifiers in logs are tagged with a keyed hash (canon.ShortHash).
	// The replica holds no key of the engine's, so it keys its tags with a
	// secret of this process: they match neither the engine's tags nor
	// its own of another run.
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("replica: log key: %w", err)
	}
	canon.SetLogKey(key[:])
	replicaGC(o.MaxMB, env)
	r, srv, err := startReplica(o, log)
	if err != nil {
		return err
	}
	if o.RealtimePriority != 0 {
		if err := setRealtime(o.RealtimePriority); err != nil {
			r.Close()
			return fmt.Errorf("replica: --realtime-priority %d: %w", o.RealtimePriority, err)
		}
		log.Info("replica: threads run at a real-time priority", "policy", "SCHED_FIFO", "priority", o.RealtimePriority)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = r.Run(ctx); cancel() })
	wg.Go(func() { errs[1] = srv.Run(ctx); cancel() })
	wg.Wait()
	return errors.Join(errs...)
}

// replicaGCPercent is the replica's garbage-collector target when GOGC is
// not set. The replica's heap is its index, and reading the stream
// allocates steadily: at the binary's 200 a collection every 2 to 3 s marks
// for 5 to 25 ms, its workers at the lookups' real-time priority, and
// lookups queued behind them set the tail. At 800 the collections are a
// third as many (bench/RESULTS.md).
const replicaGCPercent = 800

// replicaGC sets the replica's collector: replicaGCPercent, with a memory
// limit of three times --max-mb (what the collector could hold at 200) so
// that a replica near its bound collects as often as it must, not later.
// GOGC and GOMEMLIMIT, when set, win.
func replicaGC(maxMB int64, env func(string) string) {
	if env("GOGC") == "" {
		debug.SetGCPercent(replicaGCPercent)
	}
	if env("GOMEMLIMIT") == "" && maxMB <= math.MaxInt64/(3<<20) {
		debug.SetMemoryLimit(3 * maxMB << 20)
	}
}

// startReplica builds the replica and its API server; neither runs yet.
func startReplica(o *replicaOptions, log *slog.Logger) (*replica.Replica, *httpapi.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	norm, err := normalizer(&o.Norm)
	if err != nil {
		return nil, nil, err
	}
	tokens, err := httpapi.ParseTokens(o.Tokens)
	if err != nil {
		return nil, nil, err
	}
	kconn, err := kafkaConnOpts(o.Kafka, log)
	if err != nil {
		return nil, nil, err
	}
	rcfg := replica.DefaultConfig(o.Brokers)
	rcfg.Topic, rcfg.MaxBytes, rcfg.Conn, rcfg.ServeStale = o.TopicPrefix+"profiles", o.MaxMB<<20, kconn, o.ServeStale
	r, err := replica.New(rcfg, log, reg)
	if err != nil {
		return nil, nil, err
	}
	acfg := httpapi.DefaultConfig()
	acfg.Addr, acfg.Tokens = o.HTTP, tokens
	acfg.RateLimit = httpapi.RateLimit{PerSecond: o.APIRate, Burst: int(2 * o.APIRate)}
	acfg.Ready = r.Ready
	if o.ServeStale {
		// Answering while cut off is the point: a load balancer that took
		// every replica out on /readyz would answer nothing instead.
		acfg.Ready = r.CaughtUp
	}
	srv, err := httpapi.New(acfg, r, norm, log, reg, reg)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, srv, nil
}
