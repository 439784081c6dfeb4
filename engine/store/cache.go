package store

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cache is an LRU bounded in bytes (each entry's size is estimated by the
// caller). It is safe for concurrent use.
//
// Readers fill it only through fill, which refuses values read before the
// last commit: a reader that read Badger just before the writer committed
// could otherwise put a stale copy back after the writer refreshed it.
type cache[K comparable, V any] struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[K, entry[V]]
	bytes  int64
	budget int64
}

type entry[V any] struct {
	v    V
	size int64
}

func newCache[K comparable, V any](budget int64) *cache[K, V] {
	c := &cache[K, V]{budget: budget}
	// The count bound is only a backstop; the byte budget is the real one.
	c.lru, _ = simplelru.NewLRU[K, entry[V]](1<<30, func(_ K, e entry[V]) { c.bytes -= e.size })
	return c
}

func (c *cache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(k)
	return e.v, ok
}

func (c *cache[K, V]) put(k K, v V, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v, size)
}

func (c *cache[K, V]) putLocked(k K, v V, size int64) {
	if c.budget <= 0 || size > c.budget/4 {
		c.lru.Remove(k)
		return
	}
	if old, ok := c.lru.Peek(k); ok {
		c.bytes -= old.size // Add replaces without calling the evict callback
	}
	c.lru.Add(k, entry[V]{v, size})
	c.bytes += size
	for c.bytes > c.budget {
		c.lru.RemoveOldest()
	}
}

// peek returns k's value without making it recently used.
func (c *cache[K, V]) peek(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(k)
	return e.v, ok
}

// putFrom is put with the value and size that fn makes of k's current
// value (had: whether there is one), under one lock.
func (c *cache[K, V]) putFrom(k K, fn func(old V, had bool) (V, int64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, had := c.lru.Peek(k)
	v, size := fn(e.v, had)
	c.putLocked(k, v, size)
}

// grow replaces k's value with v, extra bytes larger, if k is cached and
// its value satisfies same; otherwise it does nothing.
func (c *cache[K, V]) grow(k K, same func(V) bool, v V, extra int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(k)
	if !ok || !same(e.v) || e.size+extra > c.budget/4 {
		return
	}
	c.putLocked(k, v, e.size+extra)
}

func (c *cache[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(k)
}

func (c *cache[K, V]) size() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
