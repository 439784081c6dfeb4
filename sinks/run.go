package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/schemas/canon"
)

// RunConfig tunes the tail loop of one sink.
type RunConfig struct {
	// MaxBatch bounds the changes handed to one Write, unless the sink is
	// a Batcher. A sink that is caught up gets what is there, so it bounds
	// only the batches of a catch-up.
	MaxBatch int
	// MinBackoff and MaxBackoff bound the wait between retries.
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
	Metrics                *Metrics // shared by all sinks; nil for none
}

// DefaultRunConfig returns the defaults.
func DefaultRunConfig() RunConfig {
	return RunConfig{MaxBatch: 5000, MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, Log: slog.Default()}
}

// Metrics are the sink loop's metrics, labelled by sink name.
type Metrics struct {
	written  *prometheus.CounterVec
	retries  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	delay    *prometheus.HistogramVec
	acked    *prometheus.GaugeVec
	failures *prometheus.CounterVec
}

// NewMetrics registers the sink loop's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_sink_changes_total", Help: "Change records written, by sink.",
		}, []string{"sink"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_sink_retries_total", Help: "Write attempts that failed and were retried, by sink.",
		}, []string{"sink"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spine_sink_write_seconds", Help: "Time of one successful batch write, by sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"sink"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spine_sink_delay_seconds", Help: "Time from commit in the engine to written in the sink, by sink.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"sink"}),
		acked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_sink_acked_seq", Help: "Newest change-log seq written, by sink.",
		}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_sink_failures_total", Help: "Non-retryable write failures that stopped a sink.",
		}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.retries, m.latency, m.delay, m.acked, m.failures)
	}
	return m
}

// Run tails the change log into one sink until ctx ends: read a batch,
// write it (retrying Retryable errors with capped exponential backoff),
// acknowledge it. A non-retryable error stops the sink and is returned; the
// unacknowledged changes stay in the log.
func Run(ctx context.Context, log ChangeLog, s Sink, cfg RunConfig) error {
	if b, ok := s.(Batcher); ok && b.MaxBatch() > 0 {
		cfg.MaxBatch = b.MaxBatch()
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultRunConfig().MaxBatch
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MinBackoff <= 0 || cfg.MaxBackoff < cfg.MinBackoff {
		d := DefaultRunConfig()
		cfg.MinBackoff, cfg.MaxBackoff = d.MinBackoff, d.MaxBackoff
	}
	name := s.Name()
	lg := cfg.Log.With("sink", name)
	deferrer, _ := s.(Deferrer)
	for {
		batch, err := read(ctx, log, name, cfg.MaxBatch, deferrer)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errDue) {
			if err := retry(ctx, s.Name(), "flush", func() error { return deferrer.Flush(ctx) }, cfg, lg); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if cfg.Metrics != nil {
					cfg.Metrics.failures.WithLabelValues(name).Inc()
				}
				return fmt.Errorf("sink %s: flush: %w", name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("sink %s: read change log: %w", name, err)
		}
		if len(batch) == 0 {
			continue
		}
		start := time.Now()
		if err := retry(ctx, s.Name(), "write", func() error { return s.Write(ctx, batch) }, cfg, lg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if cfg.Metrics != nil {
				cfg.Metrics.failures.WithLabelValues(name).Inc()
			}
			return fmt.Errorf("sink %s: %w", name, err)
		}
		last := batch[len(batch)-1]
		if err := log.Ack(ctx, name, last.Seq); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sink %s: ack: %w", name, err)
		}
		if m := cfg.Metrics; m != nil {
			m.written.WithLabelValues(name).Add(float64(len(batch)))
			m.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
			m.delay.WithLabelValues(name).Observe(time.Since(last.At).Seconds())
			m.acked.WithLabelValues(name).Set(float64(last.Seq))
		}
	}
}

// errDue is read's answer when a Deferrer's held-back work fell due
// before a batch came.
var errDue = errors.New("held-back work is due")

// read reads the next batch; with a Deferrer that holds work back, it
// waits for the batch only until that work is due.
func read(ctx context.Context, log ChangeLog, name string, max int, d Deferrer) ([]canon.Change, error) {
	if d == nil {
		return log.Read(ctx, name, max)
	}
	after, ok := d.Due()
	if !ok {
		return log.Read(ctx, name, max)
	}
	if after <= 0 {
		return nil, errDue
	}
	rctx, cancel := context.WithTimeoutCause(ctx, after, errDue)
	defer cancel()
	batch, err := log.Read(rctx, name, max)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errDue) {
		return nil, errDue
	}
	return batch, err
}

// retry runs op (what names it in logs) until it succeeds, retrying
// Retryable errors with capped exponential backoff.
func retry(ctx context.Context, sink, what string, op func() error, cfg RunConfig, lg *slog.Logger) error {
	wait := cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if !IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		if cfg.Metrics != nil {
			cfg.Metrics.retries.WithLabelValues(sink).Inc()
		}
		lg.Warn("sink "+what+" failed, retrying", "attempt", attempt, "backoff", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, cfg.MaxBackoff)
	}
}
