package bench

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Memory and disk measurement shared by the resolution benchmarks.
//
// Memory is measured at checkpoints (each quarter of the load) with the
// load paused, because an instant in the middle of a load catches whatever
// Badger is doing then: a memtable flush or a compaction holds hundreds of
// MB of table builders for a moment, and a single HeapInuse sample swings
// by that much. After the last build Badger keeps up to eight table
// builders' buffers (tens of MB each) in a pool for reuse, and lets one go
// every two seconds once no build asks for one (ristretto's
// z.AllocatorPool), so they too vanish only some twenty seconds after the
// load stops. At a checkpoint settle therefore waits until the state
// directory has stopped changing (no table written or removed for longer
// than the pool takes to let one buffer go) and the heap has stopped
// shrinking, and keeps, over the wait, the least of each figure after a
// full GC that also returns free pages to the OS. What is left is memory
// that stays: the engine's bounded caches and change
// window, Badger's active memtable, its block and index caches, and
// whatever grows with the data. The growth per identifier is the slope
// between the half-way and the last checkpoint, when the byte-bounded
// caches are full (at 1M identifiers or more); the fixed base is what the
// slope does not explain.
//
// The figures: heap is HeapInuse, the spans the Go runtime holds for live
// objects, fragmentation included (it moves by tens of MB for the same
// live data); live is HeapAlloc after the GC, the live objects alone; anon
// is RssAnon, the process's own resident pages (Go heap and stacks); RSS
// is VmRSS, which adds RssFile: pages of Badger's memory-mapped tables and
// value log that were touched. Those are page cache the kernel may drop
// under pressure, so RSS grows with the data read, not with what the
// process needs to keep.

// memPoint is the memory at one checkpoint.
type memPoint struct {
	IDs     int           // identifiers loaded
	Heap    uint64        // least runtime HeapInuse, after GC: live spans, fragmentation included
	Live    uint64        // least runtime HeapAlloc, after GC: live objects only
	RSS     uint64        // least VmRSS
	RSSAnon uint64        // least RssAnon: the process's own pages (Go heap, stacks)
	RSSFile uint64        // least RssFile: mapped file pages (Badger's tables and value log)
	Settle  time.Duration // how long the wait took
}

// Settle timing: sample every settleEvery; stop once no file of the state
// directory was created, removed or resized for settleQuiet (long enough
// for the builder pool, ticking every two seconds, to let a buffer go when
// no build took one for a whole tick), the least heap has not dropped by
// more than settleDrop for settleFlat, and at least settleLeast has
// passed; or after settleMost whatever happens.
const (
	settleEvery = 250 * time.Millisecond
	settleQuiet = 5 * time.Second
	settleFlat  = 5 * time.Second
	settleDrop  = 1 << 20
	settleLeast = 2 * time.Second
	settleMost  = 60 * time.Second
)

// settle waits for background work on dir to finish and measures memory
// (see the comment at the top of the file).
func settle(dir string, ids int) (memPoint, error) {
	start := time.Now()
	p := memPoint{IDs: ids}
	sig, err := dirSignature(dir)
	if err != nil {
		return p, err
	}
	changed, dropped := start, start
	flatHeap := uint64(0) // the least heap when it last dropped by settleDrop
	for first := true; ; first = false {
		debug.FreeOSMemory() // a full GC, then free pages go back to the OS
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		st, err := procStatus()
		if err != nil {
			return p, err
		}
		least := func(dst *uint64, v uint64) {
			if first || v < *dst {
				*dst = v
			}
		}
		least(&p.Heap, m.HeapInuse)
		least(&p.Live, m.HeapAlloc)
		least(&p.RSS, st["VmRSS"])
		least(&p.RSSAnon, st["RssAnon"])
		least(&p.RSSFile, st["RssFile"])

		now := time.Now()
		if first || p.Heap+settleDrop < flatHeap {
			flatHeap, dropped = p.Heap, now
		}
		s, err := dirSignature(dir)
		if err != nil {
			return p, err
		}
		if s != sig {
			sig, changed = s, now
		}
		el := now.Sub(start)
		if el >= settleMost || (el >= settleLeast && now.Sub(changed) >= settleQuiet && now.Sub(dropped) >= settleFlat) {
			p.Settle = el
			return p, nil
		}
		time.Sleep(settleEvery)
	}
}

// dirSignature names every file of dir with its size: it changes when
// Badger writes a table (a flush, a compaction), deletes one or extends its
// value log. Writes into preallocated files (the memtable's log) do not
// change it, so an engine's periodic small commits do not keep it moving.
func dirSignature(dir string) (string, error) {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // deleted by a compaction while we walked
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d\n", path, fi.Size())
		return nil
	})
	return b.String(), err
}

// procStatus reads the kB fields of /proc/self/status, in bytes.
func procStatus() (map[string]uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if kb, ok := strings.CutSuffix(strings.TrimSpace(v), " kB"); ok {
			if n, err := strconv.ParseUint(kb, 10, 64); err == nil {
				out[name] = n << 10
			}
		}
	}
	return out, sc.Err()
}

// growth is the slope of a figure per identifier between the half-way
// checkpoint and the last one, the fixed base is what remains at the last
// checkpoint when the slope is taken out.
func growth(pts []memPoint, f func(memPoint) uint64) (perID, base float64) {
	mid, last := pts[len(pts)/2-1], pts[len(pts)-1]
	perID = (float64(f(last)) - float64(f(mid))) / float64(last.IDs-mid.IDs)
	return perID, float64(f(last)) - perID*float64(last.IDs)
}

// reportMemory reports the growth per identifier as metrics and logs every
// checkpoint.
func reportMemory(b *testing.B, pts []memPoint) {
	heap, heapBase := growth(pts, func(p memPoint) uint64 { return p.Heap })
	live, liveBase := growth(pts, func(p memPoint) uint64 { return p.Live })
	anon, anonBase := growth(pts, func(p memPoint) uint64 { return p.RSSAnon })
	rss, _ := growth(pts, func(p memPoint) uint64 { return p.RSS })
	b.ReportMetric(heap, "heapB/id")
	b.ReportMetric(live, "liveB/id")
	b.ReportMetric(anon, "anonB/id")
	b.ReportMetric(rss, "rssB/id")
	b.Logf("memory at checkpoints (least over the settle wait, after GC):")
	b.Logf("  %12s %10s %10s %10s %10s %10s %8s", "identifiers", "heap MiB", "live MiB", "RSS MiB", "anon MiB", "file MiB", "settle")
	for _, p := range pts {
		b.Logf("  %12d %10.1f %10.1f %10.1f %10.1f %10.1f %8s", p.IDs, mib(p.Heap), mib(p.Live), mib(p.RSS), mib(p.RSSAnon), mib(p.RSSFile),
			p.Settle.Round(100*time.Millisecond))
	}
	b.Logf("  growth over the second half: heap %.1f B/id (base %.1f MiB), live %.1f B/id (base %.1f MiB), anon RSS %.1f B/id (base %.1f MiB), RSS %.1f B/id",
		heap, heapBase/(1<<20), live, liveBase/(1<<20), anon, anonBase/(1<<20), rss)
}

func mib[T int64 | uint64 | float64](v T) float64 { return float64(v) / (1 << 20) }

// diskUse is what a closed state directory takes.
type diskUse struct {
	Allocated int64            // stat blocks × 512: what the disk gives up
	Apparent  int64            // file sizes, preallocated tails included
	ByKind    map[string]int64 // allocated bytes by file extension
}

// diskUsage walks dir. Call it after the store is closed: Badger then has
// flushed its memtable to a table and truncated its value log.
func diskUsage(dir string) (diskUse, error) {
	u := diskUse{ByKind: map[string]int64{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		alloc := blocks(fi) * 512
		u.Allocated += alloc
		u.Apparent += fi.Size()
		kind := filepath.Ext(path)
		if kind == "" {
			kind = filepath.Base(path)
		}
		u.ByKind[kind] += alloc
		return nil
	})
	return u, err
}

// blocks is a file's allocated 512-byte blocks; its size rounded up where
// the system does not say.
func blocks(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks
	}
	return (fi.Size() + 511) / 512
}

// reportDisk reports the disk figures per identifier and logs the files by kind.
func reportDisk(b *testing.B, u diskUse, ids int) {
	b.ReportMetric(float64(u.Allocated)/float64(ids), "diskB/id")
	b.ReportMetric(float64(u.Apparent)/float64(ids), "apparentB/id")
	var kinds []string
	for k, v := range u.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %.1f", k, mib(v)))
	}
	b.Logf("disk after close: %.1f MiB allocated (%s), %.1f MiB apparent",
		mib(u.Allocated), strings.Join(kinds, ", "), mib(u.Apparent))
}

// keyUse is the logical size of the keys of one kind (the first byte of
// the key, see engine/store/keys.go).
type keyUse struct {
	Keys, KeyBytes, ValueBytes int64
}

// keysByKind opens a closed state directory read-only and sums its live
// keys and values by key prefix, to show what the disk holds.
func keysByKind(dir string) (map[byte]*keyUse, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		return nil, err
	}
	out := map[byte]*keyUse{}
	err = db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			u := out[k[0]]
			if u == nil {
				u = &keyUse{}
				out[k[0]] = u
			}
			u.Keys++
			u.KeyBytes += int64(len(k))
			u.ValueBytes += item.ValueSize()
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return out, err
}

// cpuProfile profiles a stretch of a benchmark into the file named by an
// environment variable (SPINE_BENCH_CPUPROFILE for the load), when set.
// Unlike go test -cpuprofile it can leave out the settle waits, whose
// forced GCs would otherwise weigh in the profile.
type cpuProfile struct{ f *os.File }

func (c *cpuProfile) start(b *testing.B, env string) {
	path := os.Getenv(env)
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	c.f = f
}

func (c *cpuProfile) stop(b *testing.B) {
	if c.f == nil {
		return
	}
	pprof.StopCPUProfile()
	if err := c.f.Close(); err != nil {
		b.Fatal(err)
	}
	c.f = nil
}

// heapProfile writes a heap profile at checkpoint n to the file named by
// SPINE_BENCH_HEAPPROFILE with ".n" appended, when set; comparing two
// (go tool pprof -base) shows what grew between them.
func heapProfile(n int) error {
	path := os.Getenv("SPINE_BENCH_HEAPPROFILE")
	if path == "" {
		return nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, n))
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadMeasured loads persons [0, persons) through load, step persons at a
// time, and measures memory at each quarter with the load paused (settle).
// load returns the time its timed part took; the sum is the load time,
// pauses excluded. The last quarter runs under cpuProfile, and a heap
// profile is written at each checkpoint (heapProfile).
func loadMeasured(b *testing.B, dir string, persons, step, idsPerPerson int, load func(from, to int) (time.Duration, error)) (time.Duration, []memPoint) {
	var (
		took time.Duration
		pts  []memPoint
		prof cpuProfile
	)
	next := 1
	for p := 0; p < persons; {
		to := min(p+step, persons, persons*next/4)
		d, err := load(p, to)
		if err != nil {
			b.Fatal(err)
		}
		took += d
		p = to
		if p < persons*next/4 {
			continue
		}
		b.StopTimer()
		if next == 4 {
			prof.stop(b)
		}
		pt, err := settle(dir, p*idsPerPerson)
		if err != nil {
			b.Fatal(err)
		}
		pts = append(pts, pt)
		if err := heapProfile(next); err != nil {
			b.Fatal(err)
		}
		if next == 3 {
			prof.start(b, "SPINE_BENCH_CPUPROFILE")
		}
		next++
		b.StartTimer()
	}
	return took, pts
}
