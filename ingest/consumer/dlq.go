package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceDLQ writes recs to the DLQ topic and returns only once every one
// is acknowledged, or when ctx ends (the error then says why the last
// attempt failed). Failed records are retried with capped backoff; records
// already acknowledged are not sent again within this call.
//
// Why block instead of skipping: Apply advances the positions past the
// rejected records, so applying a batch whose dead letters are not written
// would lose them for good. Holding the batch stalls ingest, which the
// spine_consumer_dlq_errors_total metric and the logs make visible, and
// which the engine's own back-pressure already has to handle.
func (c *Consumer) produceDLQ(ctx context.Context, recs []*kgo.Record) error {
	topic := c.cfg.dlqTopic()
	pending := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		pending[i] = fresh(r, topic)
	}
	wait := c.newBackoff()
	for {
		results := c.cl.ProduceSync(ctx, pending...)
		var failed []*kgo.Record
		var lastErr error
		for _, res := range results {
			if res.Err == nil {
				continue
			}
			lastErr = res.Err
			r := fresh(res.Record, topic)
			if tooLarge(res.Err) && headerString(r, HeaderValueOmitted) == "" {
				// The broker refuses the original bytes; write the
				// dead letter without them rather than stall forever.
				// The headers still point at the source record.
				// The source record's own headers go too: they may be
				// what made it too large.
				r.Value = nil
				r.Headers = append(slices.Clip(r.Headers[:numDLQHeaders]),
					kgo.RecordHeader{Key: HeaderValueOmitted, Value: []byte("too_large")})
				c.log.Warn("dlq record too large; writing it without its value",
					"topic", headerString(r, HeaderTopic), "partition", headerString(r, HeaderPartition),
					"offset", headerString(r, HeaderOffset))
			}
			failed = append(failed, r)
		}
		if len(failed) == 0 {
			return nil
		}
		c.m.dlqErrors.Inc()
		if ctx.Err() != nil || errors.Is(lastErr, kgo.ErrClientClosed) {
			return fmt.Errorf("%d of %d records unwritten: %w", len(failed), len(recs), errors.Join(lastErr, context.Cause(ctx)))
		}
		c.log.Warn("dlq write failed; retrying, batch held", "unwritten", len(failed),
			"attempt", wait.attempt+1, "backoff", wait.next(), "err", lastErr)
		if !wait.sleep(ctx) {
			return fmt.Errorf("%d of %d records unwritten: %w", len(failed), len(recs), errors.Join(lastErr, context.Cause(ctx)))
		}
		pending = failed
	}
}

// fresh copies the parts of r a produce needs, so that a retry never reuses
// a record the client has written its partition and offset into.
func fresh(r *kgo.Record, topic string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
}

func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

func headerString(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
