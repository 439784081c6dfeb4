package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks"
)

// Record header keys.
const (
	HeaderKind = "kind" // the canon.ChangeKind the record came from
	HeaderSeq  = "seq"  // the change's Seq, decimal
)

// Sink writes profile changes and identity-log records to Kafka. It
// implements sinks.Sink; like every Sink it is used by one goroutine at a
// time.
type Sink struct {
	cfg Config
	cl  *kgo.Client
	log *slog.Logger
	m   *metrics
}

var _ sinks.Sink = (*Sink)(nil)

// New validates cfg and creates the sink's producer. No connection is made
// before the first Write; log and reg may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sink", "kafka")
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	// The idempotent producer is franz-go's default: a retried produce
	// request never duplicates or reorders records within a partition.
	opts := append(cfg.connOpts(),
		// kgo logs protocol events, never record keys or values, so no
		// profile content reaches the log.
		kgo.WithLogger(kslog.New(log.With("component", "kgo"))),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxMessageBytes)),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		// Partition by key hash, as Kafka's own clients do, so that every
		// record of a profile lands in one partition, in order.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return &Sink{cfg: cfg, cl: cl, log: log, m: m}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return SinkName }

// SinkName is the name the sink tails the change log under.
const SinkName = "kafka"

// Write produces the records for batch and returns once all are
// acknowledged. Changes other than profile, delete, log and erase are not
// for this sink and are skipped. Transient failures are wrapped with
// sinks.Retryable; the whole batch is then written again, which the
// compacted topic and the seq header make harmless.
func (s *Sink) Write(ctx context.Context, batch []canon.Change) error {
	recs := make([]*kgo.Record, 0, len(batch))
	for i := range batch {
		var err error
		if recs, err = s.appendRecords(recs, &batch[i]); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	results := s.cl.ProduceSync(ctx, recs...)
	var first error
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			if first == nil {
				first = r.Err
			}
			continue
		}
		s.m.records.WithLabelValues(headerValue(r.Record, HeaderKind)).Inc()
	}
	if first == nil {
		return nil
	}
	err := fmt.Errorf("kafka: produce: %d of %d records failed: %w", failed, len(recs), first)
	if ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	if fatal(first) {
		s.m.errors.WithLabelValues("false").Inc()
		return err
	}
	s.m.errors.WithLabelValues("true").Inc()
	return sinks.Retryable(err)
}

// appendRecords appends the records change c becomes.
func (s *Sink) appendRecords(recs []*kgo.Record, c *canon.Change) ([]*kgo.Record, error) {
	hs := func(kind canon.ChangeKind) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: HeaderKind, Value: []byte(kind)},
			{Key: HeaderSeq, Value: strconv.AppendUint(nil, c.Seq, 10)},
		}
	}
	if c.Superseded {
		return recs, nil // a newer record carries what it did
	}
	profiles, identity := s.cfg.profilesTopic(), s.cfg.identityTopic()
	switch c.Kind {
	case canon.ChangeProfile:
		if c.Profile == nil || c.Profile.ID == "" {
			return nil, fmt.Errorf("kafka: change %d: profile change without a profile id", c.Seq)
		}
		v, err := profileJSON(c)
		if err != nil {
			return nil, fmt.Errorf("kafka: change %d: encode profile: %w", c.Seq, err)
		}
		recs = append(recs, &kgo.Record{Topic: profiles, Key: []byte(c.Profile.ID), Value: v, Headers: hs(c.Kind)})
	case canon.ChangeDelete:
		if c.Delete == nil || c.Delete.ProfileID == "" {
			return nil, fmt.Errorf("kafka: change %d: delete change without a profile id", c.Seq)
		}
		recs = append(recs, tombstone(profiles, c.Delete.ProfileID, hs(c.Kind)))
	case canon.ChangeLog:
		if c.Log == nil {
			return nil, fmt.Errorf("kafka: change %d: log change without a record", c.Seq)
		}
		// A quarantine or release of a value no profile holds (after an
		// erasure, say) has no profile id: it is keyed by its type instead.
		key := c.Log.ProfileID
		if key == "" {
			key = string(c.Log.Type)
		}
		v, err := json.Marshal(pseudonymous(c, s.cfg.PseudonymKey))
		if err != nil {
			return nil, fmt.Errorf("kafka: change %d: encode log record: %w", c.Seq, err)
		}
		recs = append(recs, &kgo.Record{Topic: identity, Key: []byte(key), Value: v, Headers: hs(c.Kind)})
	case canon.ChangeErase:
		if c.Erase == nil || len(c.Erase.ProfileIDs) == 0 || c.Erase.ProfileIDs[0] == "" {
			return nil, fmt.Errorf("kafka: change %d: erase change without a profile id", c.Seq)
		}
		// Tombstones first: once compaction runs, no profile of the
		// person is left on the profile stream.
		for _, id := range c.Erase.ProfileIDs {
			if id != "" {
				recs = append(recs, tombstone(profiles, id, hs(c.Kind)))
			}
		}
		v, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("kafka: change %d: encode erase record: %w", c.Seq, err)
		}
		recs = append(recs, &kgo.Record{Topic: identity, Key: []byte(c.Erase.ProfileIDs[0]), Value: v, Headers: hs(c.Kind)})
	}
	return recs, nil
}

// profileJSON is the JSON of a profile change's profile: the engine's own
// encoding when the change carries it.
func profileJSON(c *canon.Change) ([]byte, error) {
	if c.Raw != nil {
		return c.Raw, nil
	}
	return json.Marshal(c.Profile)
}

// tombstone is a record with a nil value: on a compacted topic it deletes
// the key.
func tombstone(topic, key string, hs []kgo.RecordHeader) *kgo.Record {
	hs = append(hs, kgo.RecordHeader{Key: "tombstone", Value: []byte("true")})
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: nil, Headers: hs}
}

// fatal reports errors that retrying cannot fix: the record itself, or our
// rights on the cluster, are wrong. Anything else (broker down, leader
// moving, timeouts, a topic not yet created) is worth retrying.
func fatal(err error) bool {
	for _, e := range []error{
		kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.InvalidTopicException, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.SaslAuthenticationFailed, kerr.UnsupportedForMessageFormat, kerr.PolicyViolation,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Close flushes anything still buffered (nothing, after a successful
// Write) and closes the producer. ctx bounds the flush.
func (s *Sink) Close(ctx context.Context) error {
	err := s.cl.Flush(ctx)
	s.cl.Close()
	if err != nil {
		return fmt.Errorf("kafka: close: flush: %w", err)
	}
	return nil
}

// pseudonymous returns the log change with its identifier replaced by a
// pseudonym keyed with key: spine.identity is an append-only log that an
// erasure cannot reach, so it never carries an identifier's value.
func pseudonymous(c *canon.Change, key []byte) *canon.Change {
	if c.Log == nil || c.Log.Identifier == nil {
		return c
	}
	out, log := *c, *c.Log
	id := c.Log.Identifier.Pseudonym(key)
	log.Identifier = &id
	out.Log = &log
	return &out
}
