package main

import (
	"bufio"
	"context"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Per-phase context for the lookup figures: how long the API's own
// handler chain took (server side, so without the network, the HTTP
// client and the wait for a connection), and how contended the machine's
// CPUs were. Client-side latency alone cannot tell a slow handler from a
// machine whose CPUs are busy with something else.

// lookupRoute is the route whose server-side time is reported.
const lookupRoute = "GET /v1/profiles"

// phaseMark is what was read when a phase began.
type phaseMark struct {
	phase   int32
	at      time.Time
	psiSome float64  // /proc/pressure/cpu "some" total, µs; NaN when unknown
	hist    []uint64 // cumulative bucket counts of the lookup route's latency
	bounds  []float64
	sched   *metrics.Float64Histogram // the Go scheduler's runnable-to-running latencies
}

type phaseMarks struct {
	mu    sync.Mutex
	marks []phaseMark
}

// setPhase begins phase ph: it records the marks the per-phase figures
// are computed from, then switches the loads over.
func (b *benchRun) setPhase(ph int32) {
	m := phaseMark{phase: ph, at: time.Now(), psiSome: cpuPressureSome(), sched: schedLatencies()}
	if b.p != nil {
		m.bounds, m.hist = b.handlerHistogram()
	}
	b.marks.mu.Lock()
	b.marks.marks = append(b.marks.marks, m)
	b.marks.mu.Unlock()
	b.phase.Store(ph)
}

// handlerHistogram reads the latency histogram of the lookup route of the
// API that serves the lookup load: the engine's, or the replica's (from its
// /metrics).
func (b *benchRun) handlerHistogram() (bounds []float64, cum []uint64) {
	var mfs []*dto.MetricFamily
	var err error
	if b.replica != nil {
		mfs, err = b.replica.metrics()
	} else {
		mfs, err = b.p.reg.Gather()
	}
	if err != nil {
		return nil, nil
	}
	for _, mf := range mfs {
		if mf.GetName() != "spine_api_request_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, "route", lookupRoute) {
				continue
			}
			for _, bk := range m.GetHistogram().GetBucket() {
				bounds = append(bounds, bk.GetUpperBound())
				cum = append(cum, bk.GetCumulativeCount())
			}
			bounds = append(bounds, math.Inf(1))
			cum = append(cum, m.GetHistogram().GetSampleCount())
			return bounds, cum
		}
	}
	return nil, nil
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// phaseContext is the per-phase summary of the marks.
type phaseContext struct {
	// HandlerP50/P99: the lookup route's server-side latency (from the
	// request reaching the API's handler to its answer being written) is
	// at most this many ms for half, 99% of the phase's requests; the
	// resolution is the histogram's bucket bounds.
	HandlerN   uint64  `json:"handler_n"`
	HandlerP50 float64 `json:"handler_p50_le_ms"`
	HandlerP99 float64 `json:"handler_p99_le_ms"`
	// CPUPressure: percent of the phase's wall time during which at least
	// one task on the machine was runnable but waiting for a CPU (Linux
	// PSI); high values mean the bench did not have the CPUs to itself.
	// Absent where the kernel does not report it.
	CPUPressure *float64 `json:"cpu_pressure_some_pct,omitempty"`
	// SchedP99: 99% of the times a goroutine of the engine's process
	// became runnable, it waited at most this many ms for the Go
	// scheduler to run it (runtime/metrics /sched/latencies:seconds,
	// bucket resolution). A lookup whose connection turns readable waits
	// like this before its handler starts, on top of the OS's own queue.
	SchedP50 float64 `json:"sched_p50_le_ms"`
	SchedP99 float64 `json:"sched_p99_le_ms"`
}

// phaseContexts summarizes every phase that ran, by phase name.
func (b *benchRun) phaseContexts(end time.Time) map[string]phaseContext {
	b.marks.mu.Lock()
	defer b.marks.mu.Unlock()
	endMark := phaseMark{at: end, psiSome: cpuPressureSome(), sched: schedLatencies()}
	if b.p != nil {
		endMark.bounds, endMark.hist = b.handlerHistogram()
	}
	out := map[string]phaseContext{}
	for i, m := range b.marks.marks {
		if m.phase == phaseSetup || m.phase == phaseDone {
			continue
		}
		next := endMark
		if i+1 < len(b.marks.marks) {
			next = b.marks.marks[i+1]
		}
		var pc phaseContext
		if wall := next.at.Sub(m.at); wall > 0 && !math.IsNaN(m.psiSome) && !math.IsNaN(next.psiSome) {
			p := 100 * (next.psiSome - m.psiSome) / float64(wall.Microseconds())
			pc.CPUPressure = &p
		}
		// The route's histogram exists from its first request on: before
		// that, its counts are zero.
		if len(next.hist) > 0 && (len(m.hist) == 0 || len(m.hist) == len(next.hist)) {
			delta := make([]uint64, len(next.hist))
			for j := range delta {
				delta[j] = next.hist[j]
				if len(m.hist) > 0 {
					delta[j] -= m.hist[j]
				}
			}
			pc.HandlerN = delta[len(delta)-1]
			pc.HandlerP50 = bucketQuantile(next.bounds, delta, 0.50)
			pc.HandlerP99 = bucketQuantile(next.bounds, delta, 0.99)
		}
		if m.sched != nil && next.sched != nil && len(m.sched.Counts) == len(next.sched.Counts) {
			cum := make([]uint64, len(next.sched.Counts))
			var run uint64
			for j := range cum {
				run += next.sched.Counts[j] - m.sched.Counts[j]
				cum[j] = run
			}
			// Buckets[j+1] is the upper bound of Counts[j].
			pc.SchedP50 = bucketQuantile(next.sched.Buckets[1:], cum, 0.50)
			pc.SchedP99 = bucketQuantile(next.sched.Buckets[1:], cum, 0.99)
		}
		out[phaseNames[m.phase]] = pc
	}
	return out
}

// bucketQuantile returns, in ms, the upper bound of the first bucket whose
// cumulative count reaches q of the total (the last is +Inf).
func bucketQuantile(bounds []float64, cum []uint64, q float64) float64 {
	n := cum[len(cum)-1]
	if n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	for i, c := range cum {
		if c >= want {
			return bounds[i] * 1000
		}
	}
	return math.Inf(1)
}

// schedLatencies reads the Go scheduler's latency histogram (cumulative
// since the process started); nil when the runtime does not have it.
func schedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// cpuPressureSome returns the machine's cumulative CPU "some" pressure in
// µs, or NaN where the kernel does not report it.
func cpuPressureSome() float64 {
	f, err := os.Open("/proc/pressure/cpu")
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, kv := range fields[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				t, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return math.NaN()
				}
				return t
			}
		}
	}
	return math.NaN()
}

// every calls fn every d until ctx ends. A call that overruns d delays the
// next one rather than queueing ticks.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
