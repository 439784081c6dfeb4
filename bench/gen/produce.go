package gen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer tuning. The buffer bound is what keeps memory flat when the
// brokers are slower than the generator: Produce blocks instead.
const (
	maxInFlight    = 10_000
	produceLinger  = 5 * time.Millisecond
	progressEvery  = 1024
	minPacingSleep = 2 * time.Millisecond
)

// Produce writes every remaining message of g to Kafka and returns how many
// the brokers acknowledged. Records are keyed by Message.Key (stable per
// person), so one person's events of a channel keep their order in one
// partition. The producer is idempotent (franz-go's default), asynchronous
// with at most maxInFlight records buffered, and lingers briefly so that
// records batch. When rate > 0 it sends at most rate messages a second.
// progress, when not nil, is called from the calling goroutine with the
// count acknowledged so far, every progressEvery messages and at the end.
//
// Produce stops at the first failed record or when ctx is done; records
// already buffered are still flushed or failed before it returns.
func Produce(ctx context.Context, brokers []string, g *Generator, rate int, progress func(sent int)) (int, error) {
	if len(brokers) == 0 {
		return 0, errors.New("gen: produce: no brokers")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ProducerLinger(produceLinger),
		kgo.MaxBufferedRecords(maxInFlight),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		return 0, fmt.Errorf("gen: produce: %w", err)
	}
	defer cl.Close()

	var (
		acked    atomic.Int64
		errOnce  sync.Once
		firstErr atomic.Pointer[error]
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() { firstErr.Store(&err) })
			return
		}
		acked.Add(1)
	}
	report := func() {
		if progress != nil {
			progress(int(acked.Load()))
		}
	}

	start := time.Now()
	sent := 0
	for firstErr.Load() == nil && ctx.Err() == nil {
		m, ok := g.Next()
		if !ok {
			break
		}
		if rate > 0 {
			if err := pace(ctx, start, sent, rate); err != nil {
				break
			}
		}
		// Produce blocks while maxInFlight records are buffered.
		cl.Produce(ctx, &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}, done)
		if sent++; sent%progressEvery == 0 {
			report()
		}
	}
	flushErr := cl.Flush(ctx)
	report()
	var errs []error
	if p := firstErr.Load(); p != nil {
		errs = append(errs, *p)
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	} else if flushErr != nil {
		errs = append(errs, flushErr)
	}
	if len(errs) > 0 {
		return int(acked.Load()), fmt.Errorf("gen: produce: %w", errors.Join(errs...))
	}
	return int(acked.Load()), nil
}

// pace sleeps until message n is due at rate messages a second. Short waits
// are skipped and caught up later, so that pacing costs no syscall per
// message.
func pace(ctx context.Context, start time.Time, n, rate int) error {
	due := start.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	wait := time.Until(due)
	if wait < minPacingSleep {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
