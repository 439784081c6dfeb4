package consumer

import (
	"context"
	"errors"
	"sync"
	"time"
)

// backoff is a capped exponential backoff whose sleep ends early when ctx
// does. Not safe for concurrent use.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func (c *Consumer) newBackoff() *backoff {
	return &backoff{min: c.cfg.BackoffMin, max: c.cfg.BackoffMax}
}

// next is the wait before the next attempt: min·2^attempt, capped at max.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// sleep waits for next() and counts an attempt. It reports false when ctx
// ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	b.attempt++
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.attempt = 0 }

// errStopTimeout is the cause of a soft context's end when the grace period
// after cancellation ran out.
var errStopTimeout = errors.New("consumer: stop timeout: in-flight batch abandoned")

// softContext returns a context that outlives ctx by grace: it keeps the
// values of ctx, ignores its cancellation until grace has passed since it,
// then ends with errStopTimeout. This lets the batch in flight finish on a
// soft stop while still bounding shutdown. done releases its resources and
// must be called; no goroutine outlives it.
func softContext(ctx context.Context, grace time.Duration) (context.Context, func()) {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var (
		mu       sync.Mutex
		timer    *time.Timer
		finished bool
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			timer = time.AfterFunc(grace, func() { cancel(errStopTimeout) })
		}
	})
	return sctx, func() {
		stop()
		mu.Lock()
		finished = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}
