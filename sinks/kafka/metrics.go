package kafka

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/schemas/canon"
)

type metrics struct {
	records *prometheus.CounterVec // kind
	errors  *prometheus.CounterVec // retryable
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_sink_kafka_records_total",
			Help: "Records acknowledged by Kafka, by the change kind they came from.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_sink_kafka_write_errors_total",
			Help: "Failed writes, by whether they are retried.",
		}, []string{"retryable"}),
	}
	for _, k := range []canon.ChangeKind{canon.ChangeProfile, canon.ChangeDelete, canon.ChangeLog, canon.ChangeErase} {
		m.records.WithLabelValues(string(k))
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.records, m.errors} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kafka: register metrics: %w", err)
	}
	return m, nil
}
