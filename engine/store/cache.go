package store

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cache is an LRU bounded in bytes (each entry's size is estimated by the
// caller). It is safe for concurrent use.
//
// A cache of 2 MB or more is split into up to 16 shards by key hash, each
// an LRU with its own lock and an equal part of the budget: with one lock,
// lookups queued behind the refresh of thousands of keys after each commit
// (the API handler's p99 went from 10-25 ms to 1-2.5 ms under ingest,
// bench/RESULTS.md). An entry larger than a quarter of its shard is not
// kept; at the default --cache-mb 128 that is a profile of about 750 KB of
// stored JSON, read from Badger when needed.
//
// Readers fill it only through fill, which refuses values read before the
// last commit: a reader that read Badger just before the writer committed
// could otherwise put a stale copy back after the writer refreshed it.
type cache[K comparable, V any] struct {
	shards []shard[K, V]
	hash   func(K) uint64
	bits   uint // the shard is hash >> (64-bits)
	budget int64
}

type shard[K comparable, V any] struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[K, entry[V]]
	bytes  int64
	budget int64
	_      [64]byte // keeps two shards' locks off one cache line
}

type entry[V any] struct {
	v    V
	size int64
}

const (
	maxShardBits = 4       // 16 shards
	minShard     = 1 << 20 // no shard smaller than 1 MB, so a small cache stays one LRU
)

func newCache[K comparable, V any](budget int64, hash func(K) uint64) *cache[K, V] {
	bits := uint(0) // shards are indexed by int, so any maxShardBits works
	for bits < maxShardBits && budget>>(bits+1) >= minShard {
		bits++
	}
	c := &cache[K, V]{shards: make([]shard[K, V], 1<<bits), hash: hash, bits: bits, budget: budget}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.budget = budget >> bits
		// The count bound is only a backstop; the byte budget is the real one.
		sh.lru, _ = simplelru.NewLRU[K, entry[V]](1<<30, func(_ K, e entry[V]) { sh.bytes -= e.size })
	}
	return c
}

var cacheSeed = maphash.MakeSeed()

func hashString(k string) uint64 { return maphash.String(cacheSeed, k) }

// hashU64 spreads a counter-like key over the high bits (Fibonacci hashing).
func hashU64(k uint64) uint64 { return k * 0x9E3779B97F4A7C15 }

func (c *cache[K, V]) shardOf(k K) *shard[K, V] {
	if c.bits == 0 {
		return &c.shards[0]
	}
	return &c.shards[c.hash(k)>>(64-c.bits)]
}

func (c *cache[K, V]) get(k K) (V, bool) {
	sh := c.shardOf(k)
	sh.mu.Lock()
	e, ok := sh.lru.Get(k)
	sh.mu.Unlock()
	return e.v, ok
}

func (c *cache[K, V]) put(k K, v V, size int64) {
	sh := c.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.putLocked(k, v, size)
}

func (sh *shard[K, V]) putLocked(k K, v V, size int64) {
	if sh.budget <= 0 || size > sh.budget/4 {
		sh.lru.Remove(k)
		return
	}
	if old, ok := sh.lru.Peek(k); ok {
		sh.bytes -= old.size // Add replaces without calling the evict callback
	}
	sh.lru.Add(k, entry[V]{v, size})
	sh.bytes += size
	for sh.bytes > sh.budget {
		sh.lru.RemoveOldest()
	}
}

// peek returns k's value without making it recently used.
func (c *cache[K, V]) peek(k K) (V, bool) {
	sh := c.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.lru.Peek(k)
	return e.v, ok
}

// update sets every key of ks to what fn makes of its current value (had:
// whether there is one): the value and its size, or keep false to remove
// it. It takes each shard's lock once, however many keys it holds.
func (c *cache[K, V]) update(ks []K, fn func(k K, old V, had bool) (v V, size int64, keep bool)) {
	one := func(sh *shard[K, V], k K) {
		e, had := sh.lru.Peek(k)
		v, size, keep := fn(k, e.v, had)
		if keep {
			sh.putLocked(k, v, size)
		} else {
			sh.lru.Remove(k)
		}
	}
	if c.bits == 0 {
		sh := &c.shards[0]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, k := range ks {
			one(sh, k)
		}
		return
	}
	// Group the keys by shard (a counting sort), then visit each shard once.
	idx := make([]int, len(ks))
	var start [1<<maxShardBits + 1]int
	for i, k := range ks {
		idx[i] = int(c.hash(k) >> (64 - c.bits))
		start[idx[i]+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	order := make([]int, len(ks))
	next := start
	for i := range ks {
		order[next[idx[i]]] = i
		next[idx[i]]++
	}
	for s := range c.shards {
		if start[s] == start[s+1] {
			continue
		}
		func() {
			sh := &c.shards[s]
			sh.mu.Lock()
			defer sh.mu.Unlock()
			for _, i := range order[start[s]:start[s+1]] {
				one(sh, ks[i])
			}
		}()
	}
}

// grow replaces k's value with v, extra bytes larger, if k is cached and
// its value satisfies same; otherwise it does nothing.
func (c *cache[K, V]) grow(k K, same func(V) bool, v V, extra int64) {
	sh := c.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.lru.Peek(k)
	if !ok || !same(e.v) || e.size+extra > sh.budget/4 {
		return
	}
	sh.putLocked(k, v, e.size+extra)
}

func (c *cache[K, V]) remove(k K) {
	sh := c.shardOf(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.lru.Remove(k)
}

func (c *cache[K, V]) size() (n int, bytes int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		bytes += sh.bytes
		sh.mu.Unlock()
	}
	return n, bytes
}

// check reports shards over their budget, byte counts that are not the sum
// of their entries' sizes, and keys in a shard not their own.
func (c *cache[K, V]) check(what string) []error {
	var errs []error
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		var sum int64
		for _, k := range sh.lru.Keys() {
			e, _ := sh.lru.Peek(k)
			sum += e.size
			if c.shardOf(k) != sh {
				errs = append(errs, fmt.Errorf("store: %s cache has a key in shard %d that is not its own", what, i))
			}
		}
		if sum != sh.bytes || sh.bytes > sh.budget {
			errs = append(errs, fmt.Errorf("store: %s cache shard %d counts %d bytes, holds %d, budget %d", what, i, sh.bytes, sum, sh.budget))
		}
		sh.mu.Unlock()
	}
	return errs
}
