package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/schemas/canon"
)

// Config configures a Replica.
type Config struct {
	Brokers []string
	// Conn are further client options (TLS, SASL).
	Conn []kgo.Opt
	// Topic is the profile stream: the Kafka sink's TopicPrefix+"profiles".
	Topic string
	// MaxBytes bounds the index (Index's estimate of its memory); past it
	// Run stops with ErrFull rather than serve a copy that no longer
	// follows the stream. 0: no bound.
	MaxBytes int64
	// FetchMaxWait is the longest a broker holds a fetch that finds no
	// data: with little traffic, about how late a change shows.
	FetchMaxWait time.Duration
	// StaleAfter bounds how far behind the stream a ready replica is: Ready
	// reports false once a listing of the topic's end offsets has failed
	// for that long (a broker or a partition's leader out of reach, rights
	// revoked), or once records listed that long ago are not all applied.
	// A replica that no longer follows the stream misses erasures. 0: 10 s.
	StaleAfter time.Duration
	// ServeStale answers lookups also while the replica is not Ready;
	// otherwise they fail with canon.ErrUnavailable (the API's 503), so
	// that a replica cut off from the stream does not go on answering
	// with a profile erased meanwhile.
	ServeStale bool
}

// DefaultConfig returns the defaults for topic "spine.profiles".
func DefaultConfig(brokers []string) Config {
	return Config{Brokers: brokers, Topic: "spine.profiles", MaxBytes: 4 << 30, FetchMaxWait: 100 * time.Millisecond}
}

// Replica follows the profile stream into an Index and answers the lookup
// API's reads from it (httpapi.Profiles and httpapi.RawProfiles).
type Replica struct {
	cfg       Config
	idx       *Index
	cl        *kgo.Client
	log       *slog.Logger
	m         *metrics
	caughtUp  atomic.Bool
	warned    time.Time // of the last fetch error logged; Run's
	badWarned time.Time // of the last skipped record logged; Run's

	mu       sync.Mutex
	applied  map[int32]int64 // per partition, the next offset to apply
	listings []listing       // of the topic's end offsets, oldest first
	listedOK time.Time       // of the last listing that succeeded
}

// listing is the end offsets of the stream's partitions that hold
// records, and when they were listed.
type listing struct {
	at   time.Time
	ends map[int32]int64
}

// New connects the replica's client; Run reads the stream.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Replica, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("replica: brokers and topic are required")
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("replica: MaxBytes (%d) must be at least 0", cfg.MaxBytes)
	}
	if cfg.FetchMaxWait < 10*time.Millisecond {
		cfg.FetchMaxWait = 10 * time.Millisecond // kgo's least
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 10 * time.Second
	}
	r := &Replica{cfg: cfg, idx: NewIndex(cfg.MaxBytes), log: log, applied: map[int32]int64{}}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.Topic),
		// No consumer group: every replica reads every partition, from the
		// start of what compaction kept.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		// Small fetches: the client decodes each on its own goroutines,
		// which run at the lookups' priority; a small one is over soon.
		kgo.FetchMaxBytes(1 << 20),
		kgo.FetchMaxPartitionBytes(256 << 10),
	}, cfg.Conn...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("replica: kafka client: %w", err)
	}
	r.cl = cl
	if r.m, err = newMetrics(reg, r.idx); err != nil {
		cl.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the client; call it after Run returned.
func (r *Replica) Close() { r.cl.Close() }

// Ready reports whether the replica follows the stream: it has read it up
// to where it ended when Run started (before that, a lookup may miss a
// profile the engine has), the topic's end offsets could be listed within
// StaleAfter, and what was listed StaleAfter ago is applied (else it may
// be missing an erasure).
func (r *Replica) Ready() bool {
	if !r.caughtUp.Load() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.listedOK) >= r.cfg.StaleAfter {
		return false
	}
	var due map[int32]int64 // the newest listing at least StaleAfter old
	for _, l := range r.listings {
		if now.Sub(l.at) >= r.cfg.StaleAfter {
			due = l.ends
		}
	}
	for p, end := range due {
		if r.applied[p] < end {
			return false
		}
	}
	return true
}

// CaughtUp reports whether the replica has read the stream up to where it
// ended when Run started, whether it follows it since or not.
func (r *Replica) CaughtUp() bool { return r.caughtUp.Load() }

// listed records a successful listing; it keeps the listings Ready may
// still need: those of the last StaleAfter, and the newest one before.
func (r *Replica) listed(at time.Time, ends map[int32]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listedOK = at
	r.listings = append(r.listings, listing{at, ends})
	for len(r.listings) > 1 && at.Sub(r.listings[1].at) >= r.cfg.StaleAfter {
		r.listings = r.listings[1:]
	}
}

// watch lists the stream's end offsets every quarter of StaleAfter until
// ctx ends, for Ready.
func (r *Replica) watch(ctx context.Context) {
	t := time.NewTicker(r.cfg.StaleAfter / 4)
	defer t.Stop()
	var warned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		ends, err := r.listEnds(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.m.listErrors.Inc()
			if time.Since(warned) >= 10*time.Second {
				warned = time.Now()
				r.log.Warn("replica: list the profile stream's end offsets", "topic", r.cfg.Topic, "err", err)
			}
			continue
		}
		r.listed(at, ends)
	}
}

// Index returns the replica's index.
func (r *Replica) Index() *Index { return r.idx }

// Run reads the stream until ctx ends (nil) or the index outgrows its
// bound (ErrFull). A record that is not a profile is counted and logged,
// and the stream goes on.
func (r *Replica) Run(ctx context.Context) error {
	at := time.Now()
	behind, err := r.ends(ctx)
	if err != nil {
		return nil // ctx ended
	}
	r.listed(at, maps.Clone(behind))
	if len(behind) == 0 {
		r.setReady()
	}
	ctx, stop := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	watcher.Go(func() { r.watch(ctx) })
	defer func() { stop(); watcher.Wait() }()
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Errors the client does not retry itself; a broker out of reach
		// shows as listings that fail (Ready).
		fs.EachError(func(topic string, p int32, err error) {
			r.m.fetchErrors.Inc()
			if time.Since(r.warned) >= 10*time.Second {
				r.warned = time.Now()
				r.log.Warn("replica: fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		var full error
		n := 0 // records applied from this fetch
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if full != nil {
				return
			}
			for _, rec := range p.Records {
				if err := r.apply(rec); err != nil {
					full = err
					return
				}
				if n++; n%yieldEvery == 0 {
					// A lookup queued on this thread's P runs now rather
					// than after the whole fetch.
					runtime.Gosched()
				}
			}
			if len(p.Records) > 0 {
				next := p.Records[len(p.Records)-1].Offset + 1
				r.mu.Lock()
				r.applied[p.Partition] = next
				r.mu.Unlock()
				r.m.lag.WithLabelValues(strconv.Itoa(int(p.Partition))).Set(float64(max(p.HighWatermark-next, 0)))
				if end, ok := behind[p.Partition]; ok && next >= end {
					delete(behind, p.Partition)
					if len(behind) == 0 {
						r.setReady()
					}
				}
			}
		})
		if full != nil {
			return full
		}
	}
}

// yieldEvery is how many records Run applies between two chances for
// lookups to run on its thread: about a tenth of a millisecond of work.
const yieldEvery = 16

func (r *Replica) setReady() {
	if !r.caughtUp.Swap(true) {
		s := r.idx.Size()
		r.log.Info("replica: caught up with the profile stream", "profiles", s.Profiles, "identifiers", s.Identifiers, "bytes", s.Bytes)
	}
}

// ends returns the partitions of the stream that hold records, with their
// end offsets: the replica is ready once it has read that far. It waits
// for the topic to exist (the engine creates it).
func (r *Replica) ends(ctx context.Context) (map[int32]int64, error) {
	for {
		ends, err := r.listEnds(ctx)
		if err == nil {
			return ends, nil
		}
		r.log.Info("replica: waiting for the profile stream", "topic", r.cfg.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// listEnds lists the end offsets of the stream's partitions that hold
// records. A partition whose records are all gone (deleted records,
// retention, tombstones past delete.retention.ms) has an end offset above
// 0 and nothing to read up to it: it is left out.
func (r *Replica) listEnds(ctx context.Context) (map[int32]int64, error) {
	adm := kadm.NewClient(r.cl)
	starts, err := adm.ListStartOffsets(ctx, r.cfg.Topic)
	if err == nil {
		err = starts.Error()
	}
	var offs kadm.ListedOffsets
	if err == nil {
		offs, err = adm.ListEndOffsets(ctx, r.cfg.Topic)
	}
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, err
	}
	if len(offs[r.cfg.Topic]) == 0 {
		return nil, kerr.UnknownTopicOrPartition
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!ok || s.Offset < o.Offset) {
			out[o.Partition] = o.Offset
		}
	})
	return out, nil
}

// apply takes one record into the index; only ErrFull stops the replica.
func (r *Replica) apply(rec *kgo.Record) error {
	var seq uint64
	for _, h := range rec.Headers {
		if h.Key == "seq" {
			seq, _ = strconv.ParseUint(string(h.Value), 10, 64)
		}
	}
	kind := "profile"
	if rec.Value == nil {
		kind = "tombstone"
	}
	// A copy: the record's value is a view of the whole fetched batch,
	// which it would keep alive for as long as the profile lives, far
	// past what the bound counts.
	err := r.idx.Apply(string(rec.Key), bytes.Clone(rec.Value), seq)
	switch {
	case err == nil:
		r.m.records.WithLabelValues(kind).Inc()
		return nil
	case errors.Is(err, ErrFull):
		r.log.Error("replica: stopped: the profiles outgrow the memory bound; raise it", "err", err)
		return err
	}
	r.m.bad.Inc()
	// At most one line every 10 s: a producer writing junk to the topic
	// would otherwise fill the log. The error quotes none of the record.
	if time.Since(r.badWarned) >= 10*time.Second {
		r.badWarned = time.Now()
		r.log.Warn("replica: skipped a record that is not a profile (spine_replica_bad_records_total counts them)", "partition", rec.Partition, "offset", rec.Offset, "err", err)
	}
	return nil
}

// LookupJSON answers a lookup by normalized identifier with the profile's
// JSON as the engine encoded it.
func (r *Replica) LookupJSON(_ context.Context, id canon.Identifier) ([]byte, error) {
	if err := r.serving(); err != nil {
		return nil, err
	}
	return r.idx.LookupJSON(id)
}

// ProfileJSON answers a lookup by profile id; an absorbed id answers with
// the survivor.
func (r *Replica) ProfileJSON(_ context.Context, pid string) ([]byte, error) {
	if err := r.serving(); err != nil {
		return nil, err
	}
	return r.idx.ProfileJSON(pid)
}

// Lookup is LookupJSON decoded.
func (r *Replica) Lookup(ctx context.Context, id canon.Identifier) (canon.Profile, error) {
	return decoded(r.LookupJSON(ctx, id))
}

// Profile is ProfileJSON decoded.
func (r *Replica) Profile(ctx context.Context, pid string) (canon.Profile, error) {
	return decoded(r.ProfileJSON(ctx, pid))
}

// serving is nil when lookups may be answered (see Config.ServeStale).
func (r *Replica) serving() error {
	if r.cfg.ServeStale || r.Ready() {
		return nil
	}
	return fmt.Errorf("replica: %w: not following the profile stream", canon.ErrUnavailable)
}

func decoded(b []byte, err error) (canon.Profile, error) {
	var p canon.Profile
	if err != nil {
		return p, err
	}
	if err := canon.Decode(b, &p); err != nil {
		return p, fmt.Errorf("replica: decode profile: %w", err)
	}
	return p, nil
}
