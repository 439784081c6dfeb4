package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/schemas/canon"
)

// Applier is the engine as the consumer sees it (DESIGN §8 splits here: an
// in-process engine, or a producer to a canonical topic).
//
// Apply stores the batch's events and positions atomically, or queues them
// to be, in order (an applier that queues stops itself if a queued batch
// fails, and Positions reflects the queued ones). It may block to
// back-pressure ingest; the consumer reads nothing more meanwhile. An error
// means nothing of the batch was stored: the consumer retries the same
// batch with backoff. Apply must not keep b.Events or b.Positions after it
// returns an error; after success it owns them.
//
// Positions returns the stored next offset of every partition the engine
// has applied from. It is called on every group assignment, from franz-go's
// group goroutine, never concurrently with Apply's caller being mid-batch
// for the same partitions.
type Applier interface {
	Apply(ctx context.Context, b canon.Batch) error
	Positions(ctx context.Context) (map[canon.Partition]int64, error)
}

// decodeAhead is how many chunks may be decoding, or decoded and waiting,
// while the engine applies one: two decode side by side, so decoding keeps
// ahead of the engine even when the scheduler gives it half a core.
const decodeAhead = 2

// dlqDeliveryTimeout bounds one attempt to write DLQ records, so that an
// unreachable broker shows as errors in logs and metrics instead of a
// silent stall; the attempt is then retried.
const dlqDeliveryTimeout = 30 * time.Second

// dlqHeadroom is room for DLQ headers on top of MaxMessageBytes.
const dlqHeadroom = 64 << 10

// Consumer is the ingest loop. Create it with New, run it with Run, stop
// it by cancelling Run's context, then Close it.
type Consumer struct {
	cfg      Config
	decoders map[canon.Channel]ingest.Decoder
	channels map[string]canon.Channel // topic -> channel
	topics   []string                 // consumed topics, sorted
	app      Applier
	log      *slog.Logger
	m        *metrics
	cl       *kgo.Client

	decodeSecs map[canon.Channel]prometheus.Observer // per channel, resolved once
	lag        lagWatch

	running     atomic.Bool
	topicsReady atomic.Bool
	assigned    atomic.Bool
}

// New validates cfg and builds a Consumer that consumes the topic of every
// channel in decoders (normally all six). Each decoder must be a pure
// function of the record's value. No connection is made before Run; log and
// reg may be nil.
func New(cfg Config, decoders map[canon.Channel]ingest.Decoder, app Applier,
	log *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if app == nil {
		return nil, errors.New("consumer: nil Applier")
	}
	if len(decoders) == 0 {
		return nil, errors.New("consumer: no decoders")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{
		cfg:      cfg,
		decoders: maps.Clone(decoders),
		channels: make(map[string]canon.Channel, len(decoders)),
		app:      app,
		log:      log.With("component", "consumer"),
	}
	for ch, dec := range decoders {
		if !ch.Valid() {
			return nil, fmt.Errorf("consumer: decoder for unknown channel %q", ch)
		}
		if dec == nil {
			return nil, fmt.Errorf("consumer: nil decoder for channel %s", ch)
		}
		c.channels[cfg.topic(ch)] = ch
	}
	c.topics = slices.Sorted(maps.Keys(c.channels))
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c.m = m
	c.decodeSecs = make(map[canon.Channel]prometheus.Observer, len(decoders))
	for ch := range decoders {
		c.decodeSecs[ch] = m.decode.WithLabelValues(string(ch))
	}

	opts := append(cfg.connOpts(),
		// kgo logs protocol events (broker, topic, partition, err), never
		// record keys or values, so no message content reaches the log.
		kgo.WithLogger(kslog.New(log.With("component", "kgo"))),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		kgo.ConsumerGroup(cfg.Group),
		// Topics are added in Run, once they exist; until then the group
		// has nothing to join for.
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes+dlqHeadroom)),
		kgo.RecordDeliveryTimeout(dlqDeliveryTimeout),
	)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("consumer: new client: %w", err)
	}
	c.cl = cl
	return c, nil
}

// Ready reports whether the topics exist and the group has assigned this
// consumer its partitions: from then on a produced record will be consumed.
func (c *Consumer) Ready() bool { return c.topicsReady.Load() && c.assigned.Load() }

// Close leaves the group and closes the Kafka client. Call it after Run
// returned; a Run still going returns soon after.
func (c *Consumer) Close() {
	// The client blocks rebalances while a batch is in flight; leaving the
	// group is a rebalance, so allow it or Close could wait on Run.
	c.cl.CloseAllowingRebalance()
}

// Run consumes until ctx is cancelled or the client is closed. On cancel it
// finishes the batch in flight (DLQ write and Apply) for up to
// Config.StopTimeout and returns nil; it returns an error only when that
// batch could not be finished, or when it fails to start. Run may be called
// once.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run called twice")
	}
	if err := c.ensureTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	c.topicsReady.Store(true)
	c.cl.AddConsumeTopics(c.topics...)
	c.log.Info("consuming", "topics", c.topics, "group", c.cfg.Group, "dlq", c.cfg.dlqTopic())
	lagCtx, stopLag := context.WithCancel(ctx)
	var lagDone sync.WaitGroup
	lagDone.Go(func() { c.watchLag(lagCtx) })
	defer lagDone.Wait()
	defer stopLag()

	errWait := c.newBackoff()
	for {
		// PollRecords may hand out buffered records even with ctx done;
		// checking first keeps a soft stop to the one batch in flight.
		if ctx.Err() != nil {
			return nil
		}
		fs := c.cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fs.IsClientClosed() || ctx.Err() != nil && fs.NumRecords() == 0 {
			// PollRecords returns an injected error fetch and no records
			// when ctx is done or the client closed: there is no batch in
			// flight to finish. Records polled just before a cancel are
			// processed like any batch (soft stop).
			c.cl.AllowRebalance()
			return nil
		}
		nerr := 0
		fs.EachError(func(topic string, partition int32, err error) {
			nerr++
			c.m.pollErrors.Inc()
			c.log.Warn("poll error; retrying", "topic", topic, "partition", partition, "err", err)
		})
		if fs.NumRecords() == 0 {
			c.cl.AllowRebalance()
			if nerr > 0 && !errWait.sleep(ctx) {
				return nil
			}
			continue
		}
		errWait.reset()
		if err := c.process(ctx, fs); err != nil {
			c.cl.AllowRebalance()
			return err
		}
		c.cl.AllowRebalance()
	}
}

// process decodes one polled batch, dead-letters its rejects and applies
// it, in chunks of ApplyRecords: the next chunks (decodeAhead of them) are
// decoded while the engine applies the previous one, so decoding and
// applying use both cores instead of taking turns. It runs under a soft context: cancelling ctx gives the
// chunk in flight StopTimeout more to finish, and the rest of the batch is
// left for after a restart. An error means the chunk was not applied; its
// positions did not move, so it is read again after a restart.
func (c *Consumer) process(ctx context.Context, fs kgo.Fetches) error {
	sctx, done := softContext(ctx, c.cfg.StopTimeout)
	defer done()

	chunks := split(fs, c.cfg.ApplyRecords)
	// Each chunk is decoded by its own goroutine, at most decodeAhead at
	// once; the chunks are applied in order as their decoding ends.
	results := make([]chan *decoded, len(chunks))
	for i := range results {
		results[i] = make(chan *decoded, 1)
	}
	slots := make(chan struct{}, decodeAhead) // chunks decoding, or decoded and not yet taken
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, ch := range chunks {
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			}
			wg.Go(func() {
				if c.cfg.Background != nil {
					c.cfg.Background()
				}
				results[i] <- c.decodeChunk(ch)
			})
		}
	})
	defer func() { close(stop); wg.Wait() }()

	for i := range chunks {
		d := <-results[i]
		<-slots
		if err := c.applyChunk(ctx, sctx, d); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // soft stop between chunks: positions are stored
		}
	}
	c.m.batches.Inc()
	return nil
}

// applyChunk writes a chunk's dead letters, then applies its events and
// positions under sctx. The monitoring commit outlives sctx, so it takes
// Run's ctx.
func (c *Consumer) applyChunk(ctx, sctx context.Context, d *decoded) error {
	start := time.Now()
	if len(d.dlq) > 0 {
		if err := c.produceDLQ(sctx, d.dlq); err != nil {
			return fmt.Errorf("consumer: produce dlq: batch not applied: %w", err)
		}
		for _, l := range d.dlqLabels {
			c.m.dlq.WithLabelValues(l[0], l[1]).Inc()
		}
	}
	b := canon.Batch{Events: d.events, Positions: d.positions}
	if err := c.apply(sctx, b); err != nil {
		return fmt.Errorf("consumer: apply: batch not applied: %w", err)
	}
	for _, ch := range d.evChan {
		c.m.events.WithLabelValues(string(ch)).Inc()
	}
	c.m.applySecs.Observe(time.Since(start).Seconds())
	c.lag.applied(c.m, d.positions, d.marks)
	c.commitForMonitoring(ctx, d.positions)
	return nil
}

// apply calls Applier.Apply until it succeeds or ctx ends, with capped
// exponential backoff. The engine back-pressures by blocking in Apply, so
// retrying here never queues more than this one batch.
func (c *Consumer) apply(ctx context.Context, b canon.Batch) error {
	wait := c.newBackoff()
	for {
		err := c.app.Apply(ctx, b)
		if err == nil {
			return nil
		}
		c.m.applyErrors.Inc()
		if ctx.Err() != nil {
			return errors.Join(err, context.Cause(ctx))
		}
		c.log.Warn("apply failed; retrying", "events", len(b.Events), "attempt", wait.attempt+1,
			"backoff", wait.next(), "err", err)
		if !wait.sleep(ctx) {
			return errors.Join(err, context.Cause(ctx))
		}
	}
}

// commitForMonitoring commits the applied positions to Kafka, so that the
// usual tools show the group's lag. It is asynchronous and best-effort:
// the engine's stored positions are the source of truth and these commits
// are never read back.
func (c *Consumer) commitForMonitoring(ctx context.Context, pos map[canon.Partition]int64) {
	if ctx.Err() != nil {
		return
	}
	offs := make(map[string]map[int32]kgo.EpochOffset)
	for p, o := range pos {
		if offs[p.Topic] == nil {
			offs[p.Topic] = make(map[int32]kgo.EpochOffset)
		}
		offs[p.Topic][p.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	c.cl.CommitOffsets(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
			c.log.Debug("monitoring commit failed", "err", err)
		}
	})
}

// adjustOffsets is kgo's AdjustFetchOffsetsFn: on every assignment it
// replaces the offsets Kafka has committed for the group with the engine's
// stored positions. A partition the engine has never applied from starts
// at the earliest offset, whatever Kafka has committed: the engine's state
// is the truth, so a fresh engine replays the whole topic. Epochs are
// cleared (-1): the positions come from elsewhere, so kgo's epoch-based
// truncation detection does not apply to them.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	pos, err := c.app.Positions(ctx)
	if err != nil {
		// Returning the error makes kgo leave this session and rejoin, so
		// consumption never starts from a wrong place.
		c.log.Error("read stored positions; rejoining group", "err", err)
		return nil, fmt.Errorf("consumer: read positions: %w", err)
	}
	stored, fresh := 0, 0
	from := make(map[canon.Partition]int64)
	for topic, parts := range offsets {
		for p := range parts {
			from[canon.Partition{Topic: topic, Partition: p}] = -1
			if o, ok := pos[canon.Partition{Topic: topic, Partition: p}]; ok && o >= 0 {
				parts[p] = kgo.NewOffset().At(o).WithEpoch(-1)
				from[canon.Partition{Topic: topic, Partition: p}] = o
				stored++
				c.log.Debug("seek to stored position", "topic", topic, "partition", p, "offset", o)
			} else {
				parts[p] = kgo.NewOffset().AtStart()
				fresh++
				c.log.Debug("no stored position; start at earliest", "topic", topic, "partition", p)
			}
		}
	}
	c.lag.assign(from)
	c.log.Info("seeking to the engine's positions", "stored", stored, "from_earliest", fresh)
	return offsets, nil
}

func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.assigned.Store(true)
	c.log.Info("partitions assigned", "partitions", assigned)
}

func (c *Consumer) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.forget(revoked)
	if len(revoked) > 0 {
		c.log.Info("partitions revoked", "partitions", revoked)
	}
}

func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.forget(lost)
	c.assigned.Store(false)
	c.log.Warn("partitions lost; rejoining group", "partitions", lost)
}

// forget drops the lag series of partitions this member no longer reads,
// so that a stale value does not linger on the dashboard.
func (c *Consumer) forget(parts map[string][]int32) {
	for t, ps := range parts {
		for _, p := range ps {
			c.lag.drop(canon.Partition{Topic: t, Partition: p})
			c.m.dropLag(t, p)
		}
	}
}
