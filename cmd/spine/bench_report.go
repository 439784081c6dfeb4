package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spinecdp/spine/bench"
	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

// The timeline, the progress line, the results and the machine facts.

type timeline struct {
	start  time.Time
	mu     sync.Mutex
	events []float64   // applied per second
	probe  [][]float64 // latencies completed in second i
	lookup [][]float64
	marks  []bench.Mark
}

func (t *timeline) slot(at time.Time, s *[][]float64) *[]float64 {
	i := max(0, int(at.Sub(t.start)/time.Second))
	for len(*s) <= i {
		*s = append(*s, nil)
	}
	return &(*s)[i]
}

func (t *timeline) addProbe(at time.Time, ms float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.slot(at, &t.probe)
	*p = append(*p, ms)
}

func (t *timeline) addLookup(at time.Time, ms float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.slot(at, &t.lookup)
	*p = append(*p, ms)
}

func (t *timeline) mark(at float64, label string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.marks = append(t.marks, bench.Mark{T: at, Label: label})
}

func (t *timeline) seconds() []bench.Second {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := max(len(t.events), len(t.probe), len(t.lookup))
	out := make([]bench.Second, n)
	p99 := func(s [][]float64, i int) float64 {
		if i >= len(s) || len(s[i]) == 0 {
			return nan()
		}
		return summarize(s[i]).P99
	}
	for i := range out {
		out[i] = bench.Second{T: float64(i + 1), ProbeP99Ms: p99(t.probe, i), LookupP99Ms: p99(t.lookup, i)}
		if i < len(t.events) {
			out[i].EventsPerSec = t.events[i]
		}
	}
	return out
}

func nan() float64 {
	var z float64
	return z / z
}

// progress samples the engine every second for the timeline and prints a
// progress line.
func (b *benchRun) progress(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := b.p.engine.Stats().Events
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			st := b.p.engine.Stats()
			rate := float64(st.Events - last)
			last = st.Events
			b.tl.mu.Lock()
			b.tl.events = append(b.tl.events, rate)
			var pp, lp []float64
			if i := len(b.tl.events) - 1; i < len(b.tl.probe) {
				pp = b.tl.probe[i]
			}
			if i := len(b.tl.events) - 1; i < len(b.tl.lookup) {
				lp = b.tl.lookup[i]
			}
			b.tl.mu.Unlock()
			fmt.Fprintf(b.out, "\r%6.1fs %-8s events %8d (%6.0f/s)  profiles %7d  backlog %7d  probe p99 %7.1fms  lookup p99 %6.2fms  rss %5.0fMB ",
				now.Sub(b.start).Seconds(), phaseNames[b.phase.Load()], st.Events, rate, st.Profiles, st.Backlog,
				summarize(pp).P99, summarize(lp).P99, procStatusMB("VmRSS"))
		}
	}
}

// --- results ---

// collect turns the probe and lookup samples into the results' figures.
func (b *benchRun) collect(res *results) {
	b.probes.mu.Lock()
	byPhase, chByPhase, replByPhase := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	unseen, unseenCH, unseenRepl := map[string]int{}, map[string]int{}, map[string]int{}
	lost := map[string]int{}
	for _, p := range b.probes.all {
		ph := phaseNames[p.phase]
		if p.lost {
			lost[ph]++
			continue
		}
		if b.replica != nil {
			if p.seenRepl.IsZero() {
				unseenRepl[ph]++
			} else {
				replByPhase[ph] = append(replByPhase[ph], float64(p.seenRepl.Sub(p.sent))/1e6)
			}
		}
		if p.seen.IsZero() {
			unseen[ph]++
		} else {
			byPhase[ph] = append(byPhase[ph], float64(p.seen.Sub(p.sent))/1e6)
		}
		if b.wh != nil {
			if p.seenCH.IsZero() {
				unseenCH[ph]++
			} else {
				chByPhase[ph] = append(chByPhase[ph], float64(p.seenCH.Sub(p.sent))/1e6)
			}
		}
	}
	b.probes.mu.Unlock()
	for _, ph := range []string{"saturate", "paced"} {
		if l := summarize(byPhase[ph]); l.N > 0 || unseen[ph] > 0 || lost[ph] > 0 {
			l.Unseen, l.Lost = unseen[ph], lost[ph]
			res.Probe[ph] = l
		}
		if b.replica != nil {
			if res.ProbeReplica == nil {
				res.ProbeReplica = map[string]latency{}
			}
			if l := summarize(replByPhase[ph]); l.N > 0 || unseenRepl[ph] > 0 || lost[ph] > 0 {
				l.Unseen, l.Lost = unseenRepl[ph], lost[ph]
				res.ProbeReplica[ph] = l
			}
		}
		if b.wh != nil {
			if res.ProbeCH == nil {
				res.ProbeCH = map[string]latency{}
			}
			if l := summarize(chByPhase[ph]); l.N > 0 || unseenCH[ph] > 0 || lost[ph] > 0 {
				l.Unseen, l.Lost = unseenCH[ph], lost[ph]
				res.ProbeCH[ph] = l
			}
		}
	}
	b.lookups.mu.Lock()
	var allSvc, allSch []float64
	for ph, xs := range b.lookups.service {
		res.Lookup[phaseNames[ph]] = summarize(xs)
		res.LookupSched[phaseNames[ph]] = summarize(b.lookups.sched[ph])
		if nf := b.lookups.notFound[ph]; len(nf) > 0 {
			if res.LookupNotFound == nil {
				res.LookupNotFound = map[string]latency{}
			}
			res.LookupNotFound[phaseNames[ph]] = summarize(nf)
		}
		if !ingesting(ph) {
			continue // "all" is while ingesting
		}
		allSvc = append(allSvc, xs...)
		allSch = append(allSch, b.lookups.sched[ph]...)
	}
	if len(allSvc) > 0 {
		res.Lookup["all"] = summarize(allSvc)
		res.LookupSched["all"] = summarize(allSch)
	}
	res.LookupCodes = b.lookups.codes
	b.lookups.mu.Unlock()
	res.LookupLate = b.lookups.dropped.Load()
	res.LookupContext = b.phaseContexts(time.Now())
}

func (b *benchRun) knownIdentifiers(ctx context.Context, t gen.Truth) int {
	seen := map[canon.Identifier]bool{}
	add := func(id canon.Identifier) {
		if seen[id] {
			return
		}
		if _, err := b.p.engine.Lookup(ctx, id); err == nil {
			seen[id] = true
		}
	}
	for _, p := range append(slices.Clone(t.Persons), t.Orphans...) {
		for _, id := range p.Identifiers {
			add(id)
		}
	}
	for _, s := range t.Shared {
		add(s.Identifier)
	}
	return len(seen)
}

func runPeer(ctx context.Context, w *bench.Warehouse, c *corpus) (*peerResult, error) {
	start := time.Now()
	if err := w.Reset(ctx); err != nil {
		return nil, err
	}
	decs := ingest.Decoders(normalize.Default(), msg.DefaultLimits())
	l := w.Loader()
	var occ []bench.Occurrence
	for i := range c.recs {
		ch := c.channel(i)
		dec, ok := decs[ch]
		if !ok {
			continue
		}
		occ = bench.Occurrences(ch, dec, c.record(i).Value, occ[:0])
		for _, o := range occ {
			if err := l.Add(ctx, o); err != nil {
				return nil, err
			}
		}
	}
	if err := l.Flush(); err != nil {
		return nil, err
	}
	loaded := time.Now()
	s, err := w.Stitch(ctx)
	if err != nil {
		return nil, err
	}
	end := time.Now()
	return &peerResult{
		Occurrences: l.Rows, Nodes: s.Nodes, Rounds: s.Rounds,
		LoadSeconds: loaded.Sub(start).Seconds(), StitchSecs: end.Sub(loaded).Seconds(), TotalSecs: end.Sub(start).Seconds(),
		Accuracy: bench.Score(c.truth, s.Cluster),
	}, nil
}

// finish prints the figures and writes results.json and timeline.png.
func (b *benchRun) finish(res *results) error {
	w := b.out
	pf := func(f string, a ...any) { fmt.Fprintf(w, f, a...) }
	pf("\n=== spine bench (%s, %d persons, seed %d, %s, log faults %s) ===\n", res.Date.Format(time.RFC3339), res.Persons, res.Seed, res.SyncMode, res.LogFaults)
	pf("machine: %d CPUs, %s memory, %s (%d Ps, ingest at nice %d); load average %.1f before, %.1f after; the bench got %.2f CPU-seconds per second while saturated\n",
		res.Machine.CPUs, res.Machine.MemTotal, res.Machine.GoVersion, res.Machine.Procs, res.Machine.IngestNice, res.LoadAvg[0], loadAvg(), res.CPUPerWall)
	served := "the engine's API"
	if res.Machine.Lookups == "replica" {
		served = "the lookup replica (spine replica, a process of its own) at normal priority"
		if res.Machine.RealtimePr > 0 {
			served = fmt.Sprintf("the lookup replica (spine replica, a process of its own) at SCHED_FIFO %d, the load's client at %d", res.Machine.RealtimePr, res.Machine.RealtimePr+1)
		}
	}
	pf("lookups      served by %s\n", served)
	pf("throughput   %d messages (%d accepted events) applied in %.2fs: %.0f events/s, %.0f messages/s end to end (produce alone %.2fs)\n",
		res.Messages, res.AcceptedTruth, res.AppliedSeconds, res.EventsPerSec, res.MessagesPerSec, res.ProduceSeconds)
	pf("ceiling      bare consumer %.0f records/s; engine at %.1f%% of it\n", res.CeilingPerSec, 100*res.CeilingFraction)
	for _, ph := range []string{"saturate", "paced"} {
		if l, ok := res.Probe[ph]; ok {
			pf("visible      %-8s produce→lookup-visible  p50 %8.1fms  p99 %8.1fms  max %8.1fms  (n=%d, unseen %d%s)\n", ph, l.P50, l.P99, l.Max, l.N, l.Unseen, lostNote(l.Lost))
		}
		if l, ok := res.ProbeReplica[ph]; ok {
			pf("replica      %-8s produce→replica-visible p50 %8.1fms  p99 %8.1fms  max %8.1fms  (n=%d, unseen %d%s)\n", ph, l.P50, l.P99, l.Max, l.N, l.Unseen, lostNote(l.Lost))
		}
		if l, ok := res.ProbeCH[ph]; ok {
			pf("clickhouse   %-8s produce→ClickHouse-visible p50 %7.1fms  p95 %8.1fms  max %8.1fms  (n=%d, unseen %d%s)\n", ph, l.P50, l.P95, l.Max, l.N, l.Unseen, lostNote(l.Lost))
		}
	}
	if res.PacedRate > 0 {
		pf("paced        %d messages at %.0f/s\n", res.PacedSent, res.PacedRate)
	}
	for _, ph := range []string{"quiet", "saturate", "paced", "all"} {
		if l, ok := res.Lookup[ph]; ok {
			s := res.LookupSched[ph]
			pf("lookup       %-8s p50 %6.2fms  p99 %6.2fms  max %7.1fms  (from intended send: p99 %6.2fms)  n=%d\n", ph, l.P50, l.P99, l.Max, s.P99, l.N)
		}
		if l, ok := res.LookupNotFound[ph]; ok {
			pf("  404s       %-8s p50 %6.2fms  p99 %6.2fms  max %7.1fms  n=%d (identifiers the engine does not hold)\n", ph, l.P50, l.P99, l.Max, l.N)
		}
		if c, ok := res.LookupContext[ph]; ok && c.HandlerN > 0 {
			psi := "CPU pressure not reported by this kernel"
			if c.CPUPressure != nil {
				psi = fmt.Sprintf("CPU pressure %.0f%% (time some task on this machine waited for a CPU)", *c.CPUPressure)
			}
			hist := "API histogram"
			if res.Machine.Lookups == "replica" {
				// The probes' polls (about 300 a second) go to the same
				// route and are counted too.
				hist = "replica's histogram, probe polls included"
			}
			pf("  server     %-8s handler p50 ≤ %gms  p99 ≤ %gms (%s, n=%d); %s\n",
				ph, c.HandlerP50, c.HandlerP99, hist, c.HandlerN, psi)
			pf("  scheduler  %-8s runnable→running p50 ≤ %.3gms  p99 ≤ %.3gms (Go runtime, whole engine process)\n",
				ph, c.SchedP50, c.SchedP99)
		}
	}
	if len(res.LookupCodes) > 0 {
		pf("lookup codes %v, dropped (queue full) %d\n", res.LookupCodes, res.LookupLate)
		if n := res.LookupCodes["503"]; n > 0 {
			// A replica that falls behind refuses lookups, quickly: those
			// answers are in the figures above and flatter them.
			pf("warning      %d lookups answered 503 (not ready); the latencies above count them\n", n)
		}
	}
	pf("memory       RSS baseline %.0f MB (rendered streams), peak (VmHWM) %.0f MB, end %.0f MB\n", res.RSS.BaselineMB, res.RSS.PeakMB, res.RSS.EndMB)
	d := res.DiskByKind
	pf("disk         Badger %.1f MB on disk (tables %.1f, value log %.1f, WAL %.1f, other %.1f) for %d identifiers: %.0f bytes/identifier\n",
		float64(res.DiskBytes)/1e6, float64(d.LSM)/1e6, float64(d.VLog)/1e6, float64(d.WAL)/1e6, float64(d.Other)/1e6, res.Identifiers, res.BytesPerID)
	pf("engine       %d events applied (truth: %d accepted + probes), %d profiles, %d merges, %d conflicts\n",
		res.EventsApplied, res.AcceptedTruth, res.Profiles, res.Merges, res.Conflicts)
	acc := func(name string, a bench.Accuracy) {
		pf("accuracy     %-6s precision %.6f  recall %.6f  (pairs: %d true, %d found, %d correct)  wrongly merged persons %d in %d profiles, split persons %d, missing ids %d of %d\n",
			name, a.Precision, a.Recall, a.TruePairs, a.FoundPairs, a.Correct, a.MergedPersons, a.WrongClusters, a.SplitPersons, a.Missing, a.Identifiers)
	}
	acc("spine", res.Spine)
	if len(res.Glue) > 0 {
		pf("glue         identifiers no single person owns, in wrongly merged Spine profiles, by type: %v\n", res.Glue)
	}
	if res.Peer != nil {
		acc("peer", res.Peer.Accuracy)
		pf("peer         %d occurrences, %d identifiers, %d rounds: load %.2fs + stitch %.2fs = %.2fs to a stitched result\n",
			res.Peer.Occurrences, res.Peer.Nodes, res.Peer.Rounds, res.Peer.LoadSeconds, res.Peer.StitchSecs, res.Peer.TotalSecs)
	}
	for _, n := range res.Notes {
		pf("note         %s\n", n)
	}
	if b.cfg.out == "" {
		return nil
	}
	if err := os.MkdirAll(b.cfg.out, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(b.cfg.out, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(b.cfg.out, "timeline.png"))
	if err != nil {
		return err
	}
	b.tl.mu.Lock()
	marks := slices.Clone(b.tl.marks)
	b.tl.mu.Unlock()
	if err := bench.Plot(f, b.tl.seconds(), marks); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pf("wrote        %s, %s\n", filepath.Join(b.cfg.out, "results.json"), filepath.Join(b.cfg.out, "timeline.png"))
	return nil
}

// --- machine ---

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	return m
}

// procStatusMB reads a kB field of /proc/self/status (VmRSS, VmHWM) in MB.
func procStatusMB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// lostNote names the probes whose produce failed, if any: they were never
// sent, so they are neither timed nor unseen.
func lostNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d not sent", n)
}
