package sinks

import (
	"context"
	"errors"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Sink is one destination of the change log.
//
// Write must be idempotent: after a crash or a failed Write the same batch
// (or a batch overlapping it) comes again, and writing it twice must leave
// the destination as writing it once. Write must not keep the slice after it
// returns, nor modify the changes: they are shared with other sinks. Wrap transient failures with Retryable; any other error stops the
// sink. A Sink is used by one goroutine at a time.
type Sink interface {
	Name() string
	Write(ctx context.Context, batch []canon.Change) error
	Close(ctx context.Context) error
}

// Deferrer is a Sink that holds work back between batches, such as
// recounts it does at most once per interval. Run calls Flush when that
// work falls due and no batch came to carry it.
type Deferrer interface {
	// Due reports how long until held-back work is due; ok is false when
	// nothing is held back.
	Due() (after time.Duration, ok bool)
	// Flush does the held-back work that is due. Transient failures are
	// wrapped with Retryable, as for Write.
	Flush(ctx context.Context) error
}

// Batcher is a Sink that sets its own bound on the changes of one Write,
// in place of RunConfig.MaxBatch (a bound of 0 or less leaves that one):
// what a batch costs depends on the destination.
type Batcher interface {
	MaxBatch() int
}

// ChangeLog is the engine's outbox as a sink sees it. *engine.Engine
// satisfies it. Read returns up to max changes after the sink's cursor,
// blocking until at least one is there or ctx ends; Ack moves the cursor to
// upTo (a Seq), which allows the engine to drop what every sink has written.
type ChangeLog interface {
	Read(ctx context.Context, sink string, max int) ([]canon.Change, error)
	Ack(ctx context.Context, sink string, upTo uint64) error
}

type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Retryable marks err as transient: Run retries the batch with backoff.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// IsRetryable reports whether err was marked with Retryable.
func IsRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}
