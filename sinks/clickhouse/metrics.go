package clickhouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rows *prometheus.CounterVec // spine_sink_rows_total{sink,table}
}

// newMetrics registers the sink's metrics with reg, which may be nil. The
// rows counter is shared by every sink (the sink label tells them apart),
// so a collector another sink registered first is reused.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	rows := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spine_sink_rows_total",
		Help: "Rows written by a sink, per destination table.",
	}, []string{"sink", "table"})
	if reg != nil {
		if err := reg.Register(rows); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, err
			}
			rows = existing
		}
	}
	return &metrics{rows: rows}, nil
}

func (m *metrics) addRows(table string, n int) {
	m.rows.WithLabelValues(name, table).Add(float64(n))
}
