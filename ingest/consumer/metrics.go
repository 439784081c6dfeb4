package consumer

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/schemas/canon"
)

// unknownChannel labels records from a topic that maps to no channel, so
// the channel label stays within the seven known values.
const unknownChannel = "unknown"

type metrics struct {
	events      *prometheus.CounterVec // channel
	dlq         *prometheus.CounterVec // channel, reason
	lag         *prometheus.GaugeVec   // topic, partition
	pollErrors  prometheus.Counter     //
	lagErrors   prometheus.Counter
	decode      *prometheus.HistogramVec // channel
	panics      *prometheus.CounterVec   // channel
	dlqErrors   prometheus.Counter
	applyErrors prometheus.Counter
	batches     prometheus.Counter
	applySecs   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_ingest_events_total",
			Help: "Events decoded and applied to the engine, by channel.",
		}, []string{"channel"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_ingest_dlq_total",
			Help: "Records written to the dead-letter topic, by channel and reason.",
		}, []string{"channel", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_consumer_lag_records",
			Help: "Records between the engine's position and the partition's high watermark: from each fetch, and for every assigned partition each lag interval (also while ingest is back-pressured).",
		}, []string{"topic", "partition"}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_consumer_poll_errors_total",
			Help: "Errors returned by polls (fetch, group and metadata errors); the client retries them.",
		}),
		lagErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_consumer_lag_errors_total",
			Help: "Failed lag refreshes (listing the partitions' end offsets); the next interval retries.",
		}),
		decode: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spine_ingest_decode_seconds",
			Help:    "Time to decode one record, by channel.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10), // 1µs .. 262ms
		}, []string{"channel"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_ingest_decode_panics_total",
			Help: "Decoder panics recovered and dead-lettered as invalid_value, by channel.",
		}, []string{"channel"}),
		dlqErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_consumer_dlq_errors_total",
			Help: "Failed attempts to write dead-letter records; the batch waits and retries.",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_consumer_apply_errors_total",
			Help: "Failed Apply calls; the batch waits and retries.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_consumer_batches_total",
			Help: "Batches applied to the engine.",
		}),
		applySecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spine_consumer_apply_seconds",
			Help:    "Time from poll to applied batch, retries included.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 4, 9), // 1ms .. 65s
		}),
	}
	// Create the per-channel series up front, so dashboards see zeros
	// rather than gaps.
	for _, ch := range canon.Channels {
		m.events.WithLabelValues(string(ch))
		m.decode.WithLabelValues(string(ch))
		m.panics.WithLabelValues(string(ch))
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.events, m.dlq, m.lag, m.pollErrors, m.lagErrors, m.decode, m.panics,
		m.dlqErrors, m.applyErrors, m.batches, m.applySecs} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("consumer: register metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) setLag(topic string, partition int32, lag int64) {
	if lag < 0 {
		lag = 0
	}
	m.lag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

func (m *metrics) dropLag(topic string, partition int32) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}
