package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// Options configure the store.
type Options struct {
	// Dir holds the Badger files. Empty with InMemory for tests.
	Dir      string
	InMemory bool
	// EncryptionKey, when set (16, 24 or 32 bytes), encrypts data at rest.
	EncryptionKey []byte
	// CacheBytes bounds the identifier and profile caches together.
	CacheBytes int64
	// DedupTTL is how long message ids are remembered for duplicate detection.
	DedupTTL time.Duration
	// RecentChangeBytes bounds the newest change records kept in memory
	// for sinks: each record's encoded size with its event or profile,
	// plus the profile JSON a profile change carries for the sinks.
	RecentChangeBytes int64
	// SyncWrites makes every commit durable on return (fsync).
	SyncWrites bool
	// MemTableBytes bounds Badger's memtables (and with them its write
	// batch size); Badger keeps up to five of them in memory.
	MemTableBytes int64
	// ValueThreshold: values larger than this go to Badger's value log
	// instead of its LSM tree. Profiles, events, change records and link
	// evidence are tens to thousands of bytes and many are rewritten;
	// kept out of the tree, each compaction moves keys and pointers only
	// (measured at 300k identifiers: a quarter more resolutions/s and three
	// times the lookups/s at 256 bytes against Badger's 1 MB; 64 bytes,
	// which also moves link evidence out, about a tenth more again).
	// The value log is reclaimed by CollectGarbage. 0 keeps Badger's
	// default (everything up to 1 MB in the tree).
	ValueThreshold int64
	// KeyFilterBytes sizes each of the two key filters (message ids, held
	// identifiers), rounded down to a power of two. A filter answers "not
	// stored" without a Badger read for up to one key per 9.6 bits (14
	// million in 16 MiB) added since the process started; past that it
	// switches off and those reads come back (spine_store_key_filter_usable).
	KeyFilterBytes int64
	// ValueLogFileBytes sizes value-log files (default 256 MB, not
	// Badger's 1 GB): the GC rewrites whole files other than the newest,
	// so smaller ones let it reclaim dead profile versions sooner.
	ValueLogFileBytes int64
	// NoReadAround maps Badger's value log and memtable logs for random
	// access (MADV_RANDOM, Linux only), so that a page fault in them reads
	// one page rather than the kernel's read-around window. Badger writes
	// those logs through their mappings into files it sized ahead and left
	// sparse; the first write into each window makes the kernel allocate
	// and zero all of it in one fault: up to the disk's read_ahead_kb (8 MB
	// on some virtual disks), about 20 ms during which a kernel that does
	// not preempt in faults runs nothing else on that CPU, a lookup
	// replica at a real-time priority included. With it, all but each new
	// log's first fault read a page: ingest alone ran about 7 % fewer
	// events/s, and beside a real-time replica serving lookups about 18 %
	// fewer, since the replica then gets the CPU whenever it asks
	// (bench/RESULTS.md). If the mappings cannot be advised, Open logs a
	// warning and the store runs without.
	NoReadAround bool
	// Background, when set, runs first on the goroutine that encodes half
	// of a large commit's profiles beside the writer; it ends with that
	// work. The engine sets it from its Config.Background. The goroutine
	// that publishes a commit does not call it: it holds the locks lookups
	// wait on, and at a low priority it would keep them waiting.
	Background func()
	Logger     *slog.Logger
}

// DefaultOptions returns the options for a store in dir.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:               dir,
		CacheBytes:        64 << 20,
		DedupTTL:          7 * 24 * time.Hour,
		SyncWrites:        true,
		MemTableBytes:     32 << 20,
		RecentChangeBytes: 48 << 20, // the records 32 MiB held before profile changes carried their JSON
		KeyFilterBytes:    16 << 20,
		ValueThreshold:    64,
		Logger:            slog.Default(),
	}
}

// Store is the state database. Reads are safe from any goroutine; writes go
// through Update, which only the engine's writer goroutine may call.
type Store struct {
	db       *badger.DB
	opts     Options
	ids      *cache[string, uint64]
	profiles *cache[uint64, cachedProfile]
	erased   *bloom     // erased-identifier hashes, in front of the h keys
	dedup    *keyFilter // message ids seen, in front of the d keys
	held     *keyFilter // identifiers and profile ids held, in front of the i and x keys
	recent   recent     // newest change records, for sinks that keep up

	// mu orders the writer's cache refresh after a commit, and the
	// snapshot it publishes, against readers filling the cache with what
	// they read (see cache) and taking the snapshot.
	mu      sync.RWMutex
	commits atomic.Uint64
	snap    *snapshot   // guarded by mu
	snaps   []*snapshot // published and maybe still read, oldest first; guarded by mu
	discard uint64      // Badger's discard timestamp; guarded by mu

	// The writer's commits, in Badger's managed mode: ts is the newest
	// commit timestamp handed out, inflight the commit Badger is writing
	// (nil when none), failed the error of a commit that failed (every
	// later one fails with it).
	ts       uint64
	inflight *flight
	failed   error

	// Counters, owned by the writer, persisted with every commit.
	seq, comp, created, evseq uint64
	format                    uint64        // the state's format (stateFormat once this build has committed)
	last                      txnSizes      // of the last commit with changes: the next one's first guess
	live                      atomic.Uint64 // profiles that exist, as of the last commit Badger has written
	liveW                     uint64        // the same as of the writer's last commit, which the next transaction starts from
	purging                   atomic.Int64  // erased identifiers whose filed events Purge is to delete
	refiling                  atomic.Int64  // identifiers with filed events still to move (Txn.SetRefile)
	purgeRoom                 room          // deletes of filed events one transaction takes (purgeBatch)
	groupBytes                int           // bytes at which a group of filed events closes (eventgroup.go)

	lastSeq  atomic.Uint64 // newest change-log seq, for readers
	notifyMu sync.Mutex
	notify   chan struct{} // closed on each commit that appends changes

	adviser *logAdviser // with Options.NoReadAround; nil otherwise
	// readAround is set while a fault in Badger's logs may read the
	// kernel's read-around window: without Options.NoReadAround, or once
	// advising the mappings failed.
	readAround atomic.Bool
}

// ErrFailed is returned by every Update after a commit failed in Badger
// (a full disk, an I/O error). Later transactions may have been built on
// the failed one's writes, so none is committed: the state stays as of
// the commit before, which a restart resumes from.
var ErrFailed = errors.New("store: a commit failed; restart to resume from the stored state")

// ErrTxnTooBig is returned by Update when a transaction exceeds Badger's
// batch limit; the caller splits its work.
var ErrTxnTooBig = badger.ErrTxnTooBig

// Open opens (or creates) the store.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	bo := badger.DefaultOptions(opts.Dir).
		WithInMemory(opts.InMemory).
		WithSyncWrites(opts.SyncWrites).
		WithDetectConflicts(false). // one writer: nothing to detect
		WithLogger(badgerLogger{opts.Logger}).
		WithNumVersionsToKeep(1).
		WithCompression(options.None).
		// Tables are neither compressed nor (by default) encrypted, so a
		// block is read from the memory-mapped file as it is, and a block
		// cache only adds its own upkeep: with one, identifier reads that
		// miss our caches cost about a fifth more CPU (bench/RESULTS.md).
		WithBlockCacheSize(0).
		WithIndexCacheSize(16 << 20).
		// Badger's own counters are process-wide expvar maps, updated
		// under a lock on every read and table probe (a twentieth of an
		// identifier read that misses our caches); the store's metrics
		// are its own.
		WithMetricsEnabled(false)
	if opts.ValueThreshold > 0 {
		bo = bo.WithValueThreshold(opts.ValueThreshold).WithValueLogFileSize(256 << 20)
	}
	if opts.ValueLogFileBytes > 0 {
		bo = bo.WithValueLogFileSize(opts.ValueLogFileBytes)
	}
	if opts.MemTableBytes > 0 {
		bo = bo.WithMemTableSize(opts.MemTableBytes)
	}
	if len(opts.EncryptionKey) > 0 {
		// Encrypted blocks are decrypted on every read unless cached.
		bo = bo.WithEncryptionKey(opts.EncryptionKey).WithEncryptionKeyRotationDuration(30 * 24 * time.Hour).
			WithBlockCacheSize(32 << 20)
	}
	if !opts.InMemory {
		if err := dropEmptyFiles(opts.Dir, opts.Logger); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
		}
	}
	// Managed mode: the writer picks commit timestamps itself, so it can
	// open its next transaction while Badger writes the one before.
	db, err := badger.OpenManaged(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s := &Store{
		db:         db,
		opts:       opts,
		ids:        newCache[string, uint64](opts.CacheBytes/4, hashString),
		profiles:   newCache[uint64, cachedProfile](opts.CacheBytes-opts.CacheBytes/4, hashU64),
		notify:     make(chan struct{}),
		erased:     newBloom(26),
		dedup:      newKeyFilter(keyFilterLog2Bits(opts.KeyFilterBytes), pDedup),
		held:       newKeyFilter(keyFilterLog2Bits(opts.KeyFilterBytes), pID, pAlias),
		recent:     recent{budget: int(opts.RecentChangeBytes)},
		purgeRoom:  purgeBatch(opts.MemTableBytes),
		groupBytes: groupBytes,
	}
	err = db.View(func(tx *badger.Txn) error {
		var live uint64
		for name, dst := range map[string]*uint64{"seq": &s.seq, "comp": &s.comp, "created": &s.created, "evseq": &s.evseq, "live": &live, "format": &s.format} {
			v, err := getU64(kv{tx: tx}, keyMeta(name))
			if err != nil {
				return err
			}
			*dst = v
		}
		s.live.Store(live)
		s.liveW = live
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pErased}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			s.erased.add(string(it.Item().Key()[1:]))
		}
		pit := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pPurge}})
		defer pit.Close()
		for pit.Rewind(); pit.Valid(); pit.Next() {
			s.purging.Add(1)
		}
		fit := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pRefile}})
		defer fit.Close()
		for fit.Rewind(); fit.Valid(); fit.Next() {
			s.refiling.Add(1)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: read counters: %w", err)
	}
	if s.format > stateFormat {
		db.Close()
		return nil, fmt.Errorf("store: open %s: the state was written by a newer Spine (state format %d; this build reads up to %d)", opts.Dir, s.format, stateFormat)
	}
	s.lastSeq.Store(s.seq)
	s.ts = db.MaxVersion()
	s.snap = s.openSnapshot(s.ts)
	s.snaps = []*snapshot{s.snap}
	s.discardBelow(s.ts)
	// Cleared before the adviser starts, which sets it again if it fails.
	s.readAround.Store(!opts.NoReadAround || opts.InMemory)
	if opts.NoReadAround && !opts.InMemory {
		if s.adviser, err = startLogAdviser(opts.Dir, opts.Logger, &s.readAround); err != nil {
			s.readAround.Store(true)
			opts.Logger.Warn("Badger's logs keep the kernel's read-around", "err", err)
		}
	}
	s.dedup.load(db, func(err error) {
		opts.Logger.Warn("message-id filter not loaded; duplicates are checked in the state only", "err", err)
	})
	s.held.load(db, func(err error) {
		opts.Logger.Warn("identifier filter not loaded; unknown identifiers are looked up in the state", "err", err)
	})
	return s, nil
}

// room bounds the deletes one transaction makes: their number and the
// bytes Badger counts for them.
type room struct{ n, bytes int }

// deleteCost is what Badger counts against a transaction for deleting a
// key: the key and an entry header of at most 16 bytes.
func deleteCost(key []byte) int { return len(key) + 16 }

// purgeBatch is the deletes of filed events one transaction makes: a
// quarter of what Badger lets a transaction hold (15 % of a memtable in
// bytes, and as many entries as skiplist nodes of 96 bytes fit in that),
// leaving the rest to the other writes of an erasure.
func purgeBatch(memtable int64) room {
	if memtable <= 0 {
		memtable = badger.DefaultOptions("").MemTableSize
	}
	limit := int(memtable * 15 / 100)
	return room{n: max(100, limit/96/4), bytes: max(64<<10, limit/4)}
}

// ReadAround reports whether a fault in Badger's logs may read the
// kernel's read-around window: without Options.NoReadAround, or since
// advising their mappings failed (a warning says why).
func (s *Store) ReadAround() bool { return s.readAround.Load() }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.Wait(); err != nil {
		s.opts.Logger.Warn("the last commit failed; the state is as of the one before", "err", err)
	}
	s.adviser.close()
	s.adviser = nil
	s.dedup.stop()
	s.held.stop()
	s.closeSnapshot()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Update runs fn in a write transaction and commits it with its overlay,
// counters and change records; once it returns, the commit is durable
// and readers see it. Only one goroutine may call Update, UpdateAsync
// and Wait.
func (s *Store) Update(now time.Time, fn func(tx *Txn) error) error {
	if err := s.UpdateAsync(now, fn); err != nil {
		return err
	}
	return s.Wait()
}

// UpdateAsync is Update without the wait for Badger's write: it returns
// once the commit is handed over, and the next transaction is built while
// Badger writes this one (reading it through an overlay). Readers see the
// commit, and it is durable, once Badger has written it: by the time Wait
// or a later Update returns. A failed write fails every later Update and
// Wait with ErrFailed.
func (s *Store) UpdateAsync(now time.Time, fn func(tx *Txn) error) error {
	if s.failed != nil {
		return s.failed
	}
	tx := s.newTxn(now)
	defer tx.tx.Discard()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.commit()
}

// Wait returns once the commit in flight, if any, is durable and visible
// to readers, or with ErrFailed if it or one before failed.
func (s *Store) Wait() error {
	if f := s.inflight; f != nil {
		<-f.done
		s.inflight = nil
		if f.err != nil && s.failed == nil {
			s.failed = fmt.Errorf("%w: %w", ErrFailed, f.err)
		}
	}
	return s.failed
}

// discardBelow tells Badger which old versions compactions may drop: none
// a reader may still read. low bounds what the writer reads; snapshots
// released by every reader are dropped from the front of s.snaps. The
// caller holds s.mu (or is Open).
func (s *Store) discardBelow(low uint64) {
	for len(s.snaps) > 1 && s.snaps[0].refs.Load() == 0 {
		s.snaps[0] = nil
		s.snaps = s.snaps[1:]
	}
	if len(s.snaps) > 0 {
		low = min(low, s.snaps[0].ts)
	}
	if low > s.discard {
		s.discard = low
		s.db.SetDiscardTs(low)
	}
}

// CollectGarbage rewrites value-log files of which at least ratio is dead
// (overwritten profiles, trimmed change records), at most rounds files per
// call. It returns how many files it rewrote. Safe alongside Update.
func (s *Store) CollectGarbage(ratio float64, rounds int) (int, error) {
	if s.opts.InMemory {
		return 0, nil
	}
	for n := range rounds {
		err := s.db.RunValueLogGC(ratio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("store: value log gc: %w", err)
		}
	}
	return rounds, nil
}

// Disk is what a state directory takes on disk, by kind of file.
type Disk struct {
	LSM   int64 `json:"tables"`    // the LSM tree's tables (.sst)
	VLog  int64 `json:"value_log"` // the value log (.vlog)
	WAL   int64 `json:"wal"`       // the memtables' write-ahead logs (.mem)
	Other int64 `json:"other"`     // manifest, key registry, lock
}

// Total is the directory's bytes on disk.
func (d Disk) Total() int64 { return d.LSM + d.VLog + d.WAL + d.Other }

// DiskUsage sums the blocks allocated to the files under dir, by kind.
// Badger preallocates and memory-maps value-log and memtable files, so
// their apparent size overstates; its own figures (DB.Size) come from the
// expvar counters the store turns off.
func DiskUsage(dir string) Disk {
	var d Disk
	_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil // a file compacted away meanwhile: not counted
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		n := fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n = st.Blocks * 512
		}
		switch filepath.Ext(path) {
		case ".sst":
			d.LSM += n
		case ".vlog":
			d.VLog += n
		case ".mem":
			d.WAL += n
		default:
			d.Other += n
		}
		return nil
	})
	return d
}

// Disk reports what the store takes on disk now (nothing in memory mode).
func (s *Store) Disk() Disk {
	if s.opts.InMemory {
		return Disk{}
	}
	return DiskUsage(s.opts.Dir)
}

// KeyFilters reports the message-id and identifier filters.
func (s *Store) KeyFilters() []FilterStats {
	return []FilterStats{s.dedup.stats("message_ids"), s.held.stats("identifiers")}
}

// stateFormat is the newest layout of the state this build writes. It is
// kept in the state, so that a build that does not know a newer layout
// refuses to open it rather than misread it. 6: a link is stored once,
// under its lower idkey (keyLink), where older stores hold it both ways;
// 5: a transaction files an identifier's events as one group
// (eventgroup.go); 4: events are filed
// in binary (eventbin.go); 3: change-log pages are binary (logpage.go);
// 2: they are JSON and refer to the stored events and profiles
// (pageRef); 1 (no marker): they held copies. This build reads all six.
const stateFormat = 6

// txnSizes are a transaction's change records, writes and identifier
// entries read or written.
type txnSizes struct{ changes, own, u64s, page int }

// pageRoom guesses the bytes of a change-log page of n records from the
// last page's bytes per record, so that the page is allocated about once
// instead of regrown while it is written. The guess is at most 256 bytes
// a record: a page of a few large records must not size the next one.
func (l txnSizes) pageRoom(n int) int {
	per := 64
	if l.changes > 0 && l.page > 0 {
		per = min(l.page/l.changes+8, 256)
	}
	return 1 + n*per
}

// CacheStats reports entries and bytes held by the identifier and profile caches.
func (s *Store) CacheStats() (ids int, idBytes int64, profiles int, profileBytes int64) {
	ids, idBytes = s.ids.size()
	profiles, profileBytes = s.profiles.size()
	return
}

// LookupID returns the component an identifier belongs to, or 0.
func (s *Store) LookupID(idkey string) (uint64, error) {
	return s.readU64(string(keyID(idkey)))
}

// LookupAlias returns the component a profile id (live or absorbed) belongs to, or 0.
func (s *Store) LookupAlias(pid string) (uint64, error) {
	return s.readU64(string(keyAlias(pid)))
}

func (s *Store) readU64(key string) (uint64, error) {
	if v, ok := s.ids.get(key); ok {
		return v, nil
	}
	if s.held.absent(key) {
		return 0, nil // never held: no Badger read, no wait for a commit
	}
	sn, err := s.acquire()
	if err != nil {
		return 0, fmt.Errorf("store: read %c: %w", key[0], err)
	}
	defer sn.release()
	v, err := getU64(kv{tx: sn.tx}, []byte(key))
	if err != nil {
		return 0, fmt.Errorf("store: read %c: %w", key[0], err)
	}
	s.fill(sn.commit, func() { s.ids.put(key, v, idEntryBytes(key)) })
	return v, nil
}

// LoadProfile returns the profile of a component, or nil. The result is
// shared with the cache: callers must not modify it.
func (s *Store) LoadProfile(comp uint64) (*profile.State, error) {
	c, err := s.loadProfile(comp)
	return c.st, err
}

// LoadProfileJSON returns the JSON of a component's public profile
// (canon.Profile), or nil if there is none. The first lookup of a profile
// version encodes it and keeps the bytes with the cached state; the next
// ones, and the commits that change a profile kept so, encode nothing.
// The bytes are shared: do not modify them.
func (s *Store) LoadProfileJSON(comp uint64) ([]byte, error) {
	c, err := s.loadProfile(comp)
	if err != nil || c.st == nil || c.json != nil {
		return c.json, err
	}
	b, err := encodeProfile(&c.st.Profile)
	if err != nil {
		return nil, err
	}
	// Kept only with the very state it encodes: a commit may have
	// replaced it meanwhile.
	s.profiles.grow(comp, func(o cachedProfile) bool { return o.st == c.st }, cachedProfile{c.st, b}, int64(len(b)))
	return b, nil
}

// cachedProfile is a profile as the cache holds it: the state and, once
// the profile was looked up, the JSON of its public profile. Only profiles
// that are looked up spend memory on it.
type cachedProfile struct {
	st   *profile.State
	json []byte // nil until looked up
}

// stateBytes is what a decoded profile state holds in memory: measured at
// 2.3 times its stored JSON for a profile of 12 events and 3 identifiers.
func stateBytes(stored int) int64 { return int64(stored) * 2 }

func (s *Store) loadProfile(comp uint64) (cachedProfile, error) {
	if c, ok := s.profiles.get(comp); ok {
		return c, nil
	}
	sn, err := s.acquire()
	if err != nil {
		return cachedProfile{}, fmt.Errorf("store: load profile: %w", err)
	}
	defer sn.release()
	st, size, err := getProfile(kv{tx: sn.tx}, comp)
	if err != nil || st == nil {
		return cachedProfile{}, err
	}
	c := cachedProfile{st: st}
	s.fill(sn.commit, func() { s.profiles.put(comp, c, stateBytes(size)) })
	return c, nil
}

// fill runs put only if no commit happened since the one a reader's
// snapshot includes.
func (s *Store) fill(before uint64, put func()) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.commits.Load() == before {
		put()
	}
}

// View runs fn in a read-only snapshot: the state as of the last commit.
func (s *Store) View(fn func(r *Reader) error) error {
	sn, err := s.acquire()
	if err != nil {
		return fmt.Errorf("store: view: %w", err)
	}
	defer sn.release()
	return fn(&Reader{tx: kv{tx: sn.tx}})
}

// idEntryBytes is what one identifier-cache entry holds in memory: its key
// plus the LRU's element (about 96 bytes with its expiry fields) and map
// slot (about 32). Costing entries at key+48 let the cache hold more than
// twice its budget (a heap profile showed 38 MB against 16 MB).
func idEntryBytes(key string) int64 { return int64(len(key)) + 160 }

func getU64(tx kv, key []byte) (uint64, error) {
	item, err := tx.get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("store: key %q: want 8 bytes, have %d", key[:1], len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func getProfile(tx kv, comp uint64) (*profile.State, int, error) {
	item, err := tx.get(keyProfile(comp))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: read profile: %w", err)
	}
	var st profile.State
	size := 0
	err = item.Value(func(b []byte) error {
		size = len(b)
		return canon.Decode(b, &st)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: decode profile: %w", err)
	}
	return &st, size, nil
}

// badgerLogger adapts Badger's logger to slog; Badger's info chatter goes to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}

// LastSeq is the newest change-log seq committed.
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// Changed returns a channel closed at the next commit that appends changes.
func (s *Store) Changed() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// Profiles is how many profiles exist.
func (s *Store) Profiles() uint64 { return s.live.Load() }

// dropEmptyFiles removes zero-byte memtable and value-log files. Badger
// creates such a file and sizes it in two steps; a crash between them
// leaves an empty file that holds nothing, and Badger then refuses to open
// the directory once (an upstream bug). Removing it lets a restart after a
// SIGKILL open the state on the first try.
func dropEmptyFiles(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Size() == 0 {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
			log.Warn("removed an empty state file left by a crash", "file", name)
		}
	}
	return nil
}
