package clickhouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rows    *prometheus.CounterVec // spine_sink_rows_total{sink,table}
	inserts *prometheus.CounterVec // spine_sink_inserts_total{sink,table}
	// restricted counts rows not written because the person's consent
	// keeps them out of analytics: spine_sink_restricted_total{sink,table}.
	restricted *prometheus.CounterVec
	// superseded counts profile versions not written because a newer
	// version of the same profile came in the same batch:
	// spine_sink_superseded_total{sink,table}.
	superseded *prometheus.CounterVec
}

// newMetrics registers the sink's metrics with reg, which may be nil. The
// counters are shared by every sink (the sink label tells them apart), so
// a collector another sink registered first is reused.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	rows, err := counter(reg, "spine_sink_rows_total", "Rows written by a sink, per destination table.")
	if err != nil {
		return nil, err
	}
	// Inserts per table show whether batching works: ClickHouse wants few
	// large INSERTs, and the sink sends one per table per batch.
	inserts, err := counter(reg, "spine_sink_inserts_total", "INSERT statements sent by a sink, per destination table.")
	if err != nil {
		return nil, err
	}
	restricted, err := counter(reg, "spine_sink_restricted_total", "Rows withheld from analytics under the consent policy, per table.")
	if err != nil {
		return nil, err
	}
	superseded, err := counter(reg, "spine_sink_superseded_total", "Profile versions not written because a newer version of the same profile came in the same batch.")
	if err != nil {
		return nil, err
	}
	return &metrics{rows: rows, inserts: inserts, restricted: restricted, superseded: superseded}, nil
}

func counter(reg prometheus.Registerer, metric, help string) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metric, Help: help}, []string{"sink", "table"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		return existing, nil
	}
	return c, nil
}

func (m *metrics) addInsert(table string, rows int) {
	m.rows.WithLabelValues(name, table).Add(float64(rows))
	m.inserts.WithLabelValues(name, table).Inc()
}
