package clickhouse_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/sinks/clickhouse"
)

func TestRowsMetric(t *testing.T) {
	addr := serverAddr(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, addr)
	s, err := clickhouse.Open(t.Context(), cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A second sink on the same registry shares the collector.
	s2, err := clickhouse.Open(t.Context(), cfg, nil, reg)
	if err != nil {
		t.Fatalf("second Open on one registry: %v", err)
	}
	defer s2.Close(t.Context())
	if err := s.Write(t.Context(), history()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "spine_sink_rows_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["sink"] == "clickhouse" {
				got[labels["table"]] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{"events": 5, "profiles": 5, "identity_map": 7, "merges": 3}
	for tb, n := range want {
		if got[tb] != n {
			t.Errorf("spine_sink_rows_total{table=%q} = %v, want %v", tb, got[tb], n)
		}
	}
}
