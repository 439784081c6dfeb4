package sinks_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks"
)

// memLog is an in-memory change log with one cursor per sink.
type memLog struct {
	mu      sync.Mutex
	changes []canon.Change
	acked   map[string]uint64
	wake    chan struct{}
}

func newLog(n int) *memLog {
	l := &memLog{acked: map[string]uint64{}, wake: make(chan struct{}, 1)}
	for i := range n {
		l.changes = append(l.changes, canon.Change{Seq: uint64(i + 1), Kind: canon.ChangeEvent, At: time.Now()})
	}
	return l
}

func (l *memLog) Read(ctx context.Context, sink string, max int) ([]canon.Change, error) {
	for {
		l.mu.Lock()
		cur := l.acked[sink]
		var out []canon.Change
		for _, c := range l.changes {
			if c.Seq > cur && len(out) < max {
				out = append(out, c)
			}
		}
		l.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.wake:
		}
	}
}

func (l *memLog) Ack(_ context.Context, sink string, upTo uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[sink] = upTo
	return nil
}

// flaky fails its first failures writes with err, then records batches.
type flaky struct {
	mu       sync.Mutex
	failures int
	err      error
	written  []uint64
	attempts int
	done     chan struct{}
	want     int
}

func (f *flaky) Name() string                { return "flaky" }
func (f *flaky) Close(context.Context) error { return nil }
func (f *flaky) Write(_ context.Context, b []canon.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.failures > 0 {
		f.failures--
		return f.err
	}
	for _, c := range b {
		f.written = append(f.written, c.Seq)
	}
	if len(f.written) >= f.want {
		close(f.done)
	}
	return nil
}

func cfg() sinks.RunConfig {
	c := sinks.DefaultRunConfig()
	c.MaxBatch, c.MinBackoff, c.MaxBackoff = 4, time.Millisecond, 4*time.Millisecond
	return c
}

func TestRunRetriesRetryableErrors(t *testing.T) {
	log := newLog(10)
	s := &flaky{failures: 3, err: sinks.Retryable(errors.New("connection reset")), done: make(chan struct{}), want: 10}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- sinks.Run(ctx, log, s, cfg()) }()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("sink never caught up")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v after cancel, want nil", err)
	}
	for i, seq := range s.written {
		if seq != uint64(i+1) {
			t.Fatalf("written = %v: want every change once, in order", s.written)
		}
	}
	if s.attempts != 3+3 { // three failures, then batches of 4, 4, 2
		t.Errorf("attempts = %d, want 6", s.attempts)
	}
	if log.acked["flaky"] != 10 {
		t.Errorf("acked = %d, want 10", log.acked["flaky"])
	}
}

func TestRunStopsOnFatalError(t *testing.T) {
	log := newLog(3)
	boom := errors.New("schema mismatch")
	s := &flaky{failures: 1, err: boom, done: make(chan struct{}), want: 3}
	err := sinks.Run(t.Context(), log, s, cfg())
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the fatal error", err)
	}
	if log.acked["flaky"] != 0 {
		t.Errorf("acked %d after a failed write: the batch must stay in the log", log.acked["flaky"])
	}
}

// deferring holds one piece of work back after each write, due after hold.
type deferring struct {
	flaky
	hold    time.Duration
	mu2     sync.Mutex
	dueAt   time.Time // zero: nothing held back
	flushes chan time.Time
}

func (d *deferring) Write(ctx context.Context, b []canon.Change) error {
	if err := d.flaky.Write(ctx, b); err != nil {
		return err
	}
	d.mu2.Lock()
	defer d.mu2.Unlock()
	d.dueAt = time.Now().Add(d.hold)
	return nil
}

func (d *deferring) Due() (time.Duration, bool) {
	d.mu2.Lock()
	defer d.mu2.Unlock()
	return time.Until(d.dueAt), !d.dueAt.IsZero()
}

func (d *deferring) Flush(context.Context) error {
	d.mu2.Lock()
	defer d.mu2.Unlock()
	if time.Now().Before(d.dueAt) {
		return errors.New("flushed before it was due")
	}
	d.dueAt = time.Time{}
	d.flushes <- time.Now()
	return nil
}

// TestRunFlushesHeldBackWork: a sink that holds work back gets Flush once
// it is due, although no further batch comes, and not before.
func TestRunFlushesHeldBackWork(t *testing.T) {
	log := newLog(3)
	s := &deferring{flaky: flaky{done: make(chan struct{}), want: 3}, hold: 100 * time.Millisecond, flushes: make(chan time.Time, 4)}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- sinks.Run(ctx, log, s, cfg()) }()
	<-s.done
	written := time.Now()
	select {
	case at := <-s.flushes:
		if d := at.Sub(written); d < 50*time.Millisecond {
			t.Errorf("flushed %v after the last write, want about 100ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held-back work never flushed")
	}
	select {
	case <-s.flushes:
		t.Error("flushed twice with nothing held back")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// batching is a sink that records the size of each batch and sets its own
// bound (sinks.Batcher).
type batching struct {
	flaky
	max   int
	sizes []int
}

func (b *batching) MaxBatch() int { return b.max }
func (b *batching) Write(ctx context.Context, batch []canon.Change) error {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(batch))
	b.mu.Unlock()
	return b.flaky.Write(ctx, batch)
}

// A Batcher's own bound replaces RunConfig.MaxBatch, and a bound of 0
// leaves RunConfig's.
func TestRunHonoursBatcher(t *testing.T) {
	for _, tc := range []struct{ own, largest int }{{7, 7}, {0, 4}} {
		log := newLog(20)
		s := &batching{flaky: flaky{done: make(chan struct{}), want: 20}, max: tc.own}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- sinks.Run(ctx, log, s, cfg()) }() // cfg's MaxBatch is 4
		<-s.done
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if largest := slices.Max(s.sizes); largest != tc.largest {
			t.Errorf("own bound %d: batches of %v, want at most and once exactly %d", tc.own, s.sizes, tc.largest)
		}
	}
}
