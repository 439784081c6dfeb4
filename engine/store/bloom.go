package store

import (
	"encoding/hex"
	"sync"
)

// bloom is a fixed-size Bloom filter over erased-identifier hashes. Every
// new identifier of every event must be checked against the erased set;
// almost none are erased, and the filter answers "no" from memory without
// a Badger read. False positives only cost that read. It is safe for
// concurrent use.
type bloom struct {
	mu   sync.RWMutex
	bits []uint64
	mask uint64
}

const bloomHashes = 7

// newBloom returns a filter of 2^log2Bits bits (8 MiB at 26: under 1% false
// positives up to about seven million erased identifiers).
func newBloom(log2Bits uint) *bloom {
	n := uint64(1) << log2Bits
	return &bloom{bits: make([]uint64, n/64), mask: n - 1}
}

// positions derives the probe positions from the hash itself: the keyed
// hash is already uniformly random, so two 64-bit halves of it give every
// probe by double hashing.
func (b *bloom) positions(hash string, fn func(pos uint64)) {
	var raw [16]byte
	if len(hash) < 32 {
		hash += "00000000000000000000000000000000"
	}
	if _, err := hex.Decode(raw[:], []byte(hash[:32])); err != nil {
		copy(raw[:], hash) // not hex: still deterministic
	}
	h1, h2 := le64(raw[:8]), le64(raw[8:])|1
	for i := range uint64(bloomHashes) {
		fn((h1 + i*h2) & b.mask)
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func (b *bloom) add(hash string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.positions(hash, func(p uint64) { b.bits[p/64] |= 1 << (p % 64) })
}

func (b *bloom) mayContain(hash string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ok := true
	b.positions(hash, func(p uint64) { ok = ok && b.bits[p/64]&(1<<(p%64)) != 0 })
	return ok
}
