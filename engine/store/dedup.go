package store

import (
	"context"
	"hash/maphash"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// dedupFilter answers "never seen" for message ids without a Badger read,
// which otherwise costs a search of every memtable and a bloom check per
// table level for nearly every event. It starts empty and unusable; a
// background scan of the stored message ids fills it, and until the scan
// is done every question goes to Badger. Ids marked meanwhile are added
// too, so nothing stored is missing from it once it is ready. Expired ids
// stay in the filter as false positives, which only cost the read.
type dedupFilter struct {
	bloom  *bloom
	seeds  [2]maphash.Seed
	ready  atomic.Bool
	adds   atomic.Uint64
	limit  uint64 // past this many ids the false-positive rate is too high to help
	cancel context.CancelFunc
	done   chan struct{}
}

// dedupFilterBits sizes the filter: 2^27 bits (16 MiB), under 1 % false
// positives up to about 14 million ids in the window.
const (
	dedupFilterBits  = 27
	dedupFilterLimit = 14_000_000
)

func newDedupFilter() *dedupFilter {
	return &dedupFilter{
		bloom: newBloom(dedupFilterBits), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		limit: dedupFilterLimit, done: make(chan struct{}),
	}
}

func (f *dedupFilter) hashes(key []byte) (uint64, uint64) {
	return maphash.Bytes(f.seeds[0], key), maphash.Bytes(f.seeds[1], key)
}

func (f *dedupFilter) add(key []byte) {
	f.adds.Add(1)
	f.bloom.addHashes(f.hashes(key))
}

// absent reports whether key is certainly not stored.
func (f *dedupFilter) absent(key []byte) bool {
	if !f.ready.Load() || f.adds.Load() > f.limit {
		return false
	}
	return !f.bloom.mayContainHashes(f.hashes(key))
}

// load fills the filter from the stored ids; it owns one goroutine, which
// stop ends.
func (f *dedupFilter) load(db *badger.DB, onErr func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		defer close(f.done)
		err := db.View(func(tx *badger.Txn) error {
			it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pDedup}})
			defer it.Close()
			n := 0
			for it.Rewind(); it.Valid(); it.Next() {
				if n++; n%4096 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				f.add(it.Item().Key())
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

func (f *dedupFilter) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
}
