package replica

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	records     *prometheus.CounterVec
	bad         prometheus.Counter
	fetchErrors prometheus.Counter
	listErrors  prometheus.Counter
	lag         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, idx *Index) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_replica_records_total", Help: "Profile stream records taken, by kind (profile, tombstone).",
		}, []string{"kind"}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_replica_bad_records_total", Help: "Profile stream records skipped because they are not a profile.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_replica_fetch_errors_total", Help: "Errors the Kafka client reported reading the profile stream (it retries a broker out of reach without reporting it: see spine_replica_list_errors_total).",
		}),
		listErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_replica_list_errors_total", Help: "Failed listings of the profile stream's end offsets, which the replica makes every quarter of its staleness bound.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_replica_lag_records", Help: "Records of the profile stream not yet read, by partition.",
		}, []string{"partition"}),
	}
	size := func(f func(Size) float64) func() float64 { return func() float64 { return f(idx.Size()) } }
	cs := []prometheus.Collector{m.records, m.bad, m.fetchErrors, m.listErrors, m.lag,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spine_replica_profiles", Help: "Live profiles the replica holds."},
			size(func(s Size) float64 { return float64(s.Profiles) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spine_replica_identifiers", Help: "Identifiers the replica can look up."},
			size(func(s Size) float64 { return float64(s.Identifiers) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "spine_replica_bytes", Help: "Estimated memory of the replica's index, bytes."},
			size(func(s Size) float64 { return float64(s.Bytes) })),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("replica: register metrics: %w", err)
		}
	}
	return m, nil
}
