package engine

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/engine/store"
)

type metrics struct {
	events      *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	identity    *prometheus.CounterVec
	profiles    prometheus.Counter
	applySec    prometheus.Histogram
	backlog     prometheus.Gauge
	backpressed prometheus.Gauge
	cacheBytes  *prometheus.GaugeVec
	filterKeys  *prometheus.GaugeVec
	filterUsed  *prometheus.GaugeVec
	dropped     *prometheus.CounterVec
	erasures    prometheus.Counter
	vlogGC      prometheus.Counter
	purged      prometheus.Counter
	purging     prometheus.Gauge
	refiling    prometheus.Gauge
	missed      *prometheus.GaugeVec
	parked      *prometheus.CounterVec
	superseded  *prometheus.CounterVec
}

// newMetrics registers the engine's metrics; disk reports the state
// directory's size, read at each scrape.
func newMetrics(reg prometheus.Registerer, disk func() store.Disk) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_engine_events_total", Help: "Events applied to profiles, by channel.",
		}, []string{"channel"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_engine_duplicates_total", Help: "Duplicate deliveries recognized and skipped, by channel.",
		}, []string{"channel"}),
		identity: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_engine_identity_total", Help: "Identity-log records: merge, split, conflict, quarantine, candidate, erase.",
		}, []string{"type"}),
		profiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_engine_profile_versions_total", Help: "Profile versions written.",
		}),
		applySec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spine_engine_apply_seconds", Help: "Time to apply and commit one transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spine_engine_backlog_records", Help: "Change records the slowest sink has not acknowledged.",
		}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_engine_parked_events_total", Help: "Events whose identifiers were all quarantined, by channel: filed with no profile and written for analytics without one; a release of the value folds them into its profile.",
		}, []string{"channel"}),
		superseded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_sink_superseded_changes_total", Help: "Event and profile change records a sink read from the stored log after a newer record replaced what they carried (a newer profile version, an event erased or moved), by sink: handed over without payload and skipped.",
		}, []string{"sink"}),
		missed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_sink_missed_changes", Help: "Change records trimmed before the sink acknowledged them, found at start (it was not configured for longer than --max-backlog allows); its destination lacks them.",
		}, []string{"sink"}),
		backpressed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spine_engine_backpressure", Help: "1 while ingestion is paused because a sink lags.",
		}),
		cacheBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_engine_cache_bytes", Help: "Bytes held by the state caches.",
		}, []string{"cache"}),
		filterKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_store_key_filter_keys", Help: "Distinct keys a key filter holds (message ids, identifiers), added since start.",
		}, []string{"filter"}),
		filterUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_store_key_filter_usable", Help: "1 while a key filter spares Badger reads; 0 while loading or once past its size (raise --key-filter-mb).",
		}, []string{"filter"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_engine_dropped_total", Help: "Events not applied: an erased person's late events.",
		}, []string{"channel", "reason"}),
		erasures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_engine_erasures_total", Help: "Profiles erased.",
		}),
		vlogGC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_engine_vlog_gc_rewrites_total", Help: "State value-log files rewritten to reclaim dead values.",
		}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spine_engine_erased_events_purged_total", Help: "Stored events of erased identifiers deleted after their erasure, in transactions of their own.",
		}),
		purging: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spine_engine_erasure_purge_pending", Help: "Erased identifiers whose stored events are still being deleted.",
		}),
		refiling: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spine_engine_quarantine_refile_pending", Help: "Quarantined values whose stored events are still being moved to their people's other identifiers.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.duplicates, m.identity, m.profiles, m.applySec, m.backlog, m.backpressed, m.cacheBytes, m.filterKeys, m.filterUsed, m.dropped, m.erasures, m.vlogGC, m.purged, m.purging, m.refiling, m.missed, m.parked, m.superseded,
			diskCollector{disk: disk, desc: prometheus.NewDesc("spine_engine_state_bytes",
				"Bytes the state directory takes on disk, by kind: tables, value_log, wal, other.", []string{"kind"}, nil)})
	}
	return m
}

// diskCollector reads the state directory's size when scraped: a walk of
// one directory, kept off the writer's path.
type diskCollector struct {
	disk func() store.Disk
	desc *prometheus.Desc
}

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.disk()
	for _, k := range []struct {
		kind  string
		bytes int64
	}{{"tables", d.LSM}, {"value_log", d.VLog}, {"wal", d.WAL}, {"other", d.Other}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(k.bytes), k.kind)
	}
}
