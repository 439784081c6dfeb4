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
		if mf.GetName() != "spine_sink_rows_total" && mf.GetName() != "spine_sink_superseded_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["sink"] == "clickhouse" {
				got[mf.GetName()+" "+labels["table"]] = m.GetCounter().GetValue()
			}
		}
	}
	// Of the history's five profile versions, one is replaced by a newer
	// version of the same profile in the batch: four rows.
	want := map[string]float64{
		"spine_sink_rows_total events": 5, "spine_sink_rows_total profiles": 4,
		"spine_sink_rows_total identity_map": 7, "spine_sink_rows_total merges": 3,
		"spine_sink_superseded_total profiles": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s = %v, want %v", k, got[k], n)
		}
	}
}
