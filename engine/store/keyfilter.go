package store

import (
	"context"
	"hash/maphash"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// keyFilter answers "not stored" for keys of some prefixes without a
// Badger read. The writer asks it about nearly every event's message id
// (almost all new), and the lookup API about identifiers the engine may
// not hold: a Badger read costs a search of every memtable and a bloom
// check per table level, and while a commit is being written it also waits
// for that commit. The filter starts empty and unusable; a background scan
// of the stored keys fills it, and until the scan is done every question
// goes to Badger. Keys written meanwhile are added too, so nothing stored
// is missing from it once it is ready. Deleted or expired keys stay in the
// filter as false positives, which only cost the read.
type keyFilter struct {
	prefixes []byte
	bloom    *bloom
	seeds    [2]maphash.Seed
	ready    atomic.Bool
	adds     atomic.Uint64
	limit    uint64 // past this many distinct keys the false-positive rate is too high to help
	cancel   context.CancelFunc
	done     chan struct{}
}

// keyFilterLog2Bits sizes a filter of size bytes: the largest power of two
// bits it holds, at least 2^23 (1 MiB).
func keyFilterLog2Bits(size int64) uint {
	n := uint(23)
	for n < 40 && int64(1)<<(n+1) <= size*8 {
		n++
	}
	return n
}

// newKeyFilter returns a filter of 2^log2Bits bits over the keys that
// start with one of prefixes. With seven probes it stays under about 1.2 %
// false positives up to one key per 9.6 bits: 14 million keys in 16 MiB.
func newKeyFilter(log2Bits uint, prefixes ...byte) *keyFilter {
	return &keyFilter{
		prefixes: prefixes,
		bloom:    newBloom(log2Bits), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		limit: (uint64(1) << log2Bits) * 10 / 96, done: make(chan struct{}),
	}
}

// FilterStats describes a key filter for monitoring.
type FilterStats struct {
	Name   string
	Keys   uint64 // distinct keys added since the process started
	Limit  uint64 // keys it answers for
	Usable bool   // loaded and under its limit: it spares Badger reads
}

func (f *keyFilter) stats(name string) FilterStats {
	return FilterStats{Name: name, Keys: f.adds.Load(), Limit: f.limit, Usable: f.usable()}
}

// The keys come as strings (identifier and alias keys, the writer's
// overlay holds strings) or bytes (message-id keys); maphash gives both
// the same hash, so neither is converted (which would allocate on the
// hot path).

func (f *keyFilter) add(key string) {
	f.addHashes(maphash.String(f.seeds[0], key), maphash.String(f.seeds[1], key))
}

func (f *keyFilter) addBytes(key []byte) {
	f.addHashes(maphash.Bytes(f.seeds[0], key), maphash.Bytes(f.seeds[1], key))
}

// addHashes counts only keys that set a new bit: a key added again (an
// identifier relabelled by every merge, say) must not use up the limit.
func (f *keyFilter) addHashes(h1, h2 uint64) {
	if f.bloom.addHashes(h1, h2) {
		f.adds.Add(1)
	}
}

// absent reports whether key is certainly not stored.
func (f *keyFilter) absent(key string) bool {
	return f.usable() && !f.bloom.mayContainHashes(maphash.String(f.seeds[0], key), maphash.String(f.seeds[1], key))
}

// absentBytes is absent for a key in bytes.
func (f *keyFilter) absentBytes(key []byte) bool {
	return f.usable() && !f.bloom.mayContainHashes(maphash.Bytes(f.seeds[0], key), maphash.Bytes(f.seeds[1], key))
}

// usable: loaded, and not so full that it would answer "maybe" to nearly
// everything (until a restart rebuilds it from the live keys).
func (f *keyFilter) usable() bool { return f.ready.Load() && f.adds.Load() <= f.limit }

// load fills the filter from the stored ids; it owns one goroutine, which
// stop ends.
func (f *keyFilter) load(db *badger.DB, onErr func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		defer close(f.done)
		err := db.View(func(tx *badger.Txn) error {
			for _, p := range f.prefixes {
				if err := f.scan(ctx, tx, p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			if ctx.Err() == nil {
				onErr(err)
			}
			return
		}
		f.ready.Store(true)
	}()
}

func (f *keyFilter) scan(ctx context.Context, tx *badger.Txn, prefix byte) error {
	it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		f.addBytes(it.Item().Key())
	}
	return nil
}

func (f *keyFilter) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
}
