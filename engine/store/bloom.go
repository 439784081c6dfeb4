package store

import (
	"encoding/hex"
	"sync/atomic"
)

// bloom is a fixed-size Bloom filter in front of a set of Badger keys that
// is asked mostly about keys it does not hold: erased-identifier hashes
// (every new identifier of every event is checked; almost none are erased)
// and message ids seen (almost every message is new). It answers "no" from
// memory without a Badger read; false positives only cost that read. It is
// safe for concurrent use, without a lock: a lookup never waits for the
// writer adding keys, whose thread runs at a low priority (a key being
// added reads as absent until its last bit is set, as before the add).
type bloom struct {
	bits []uint64 // atomic
	mask uint64
	used atomic.Bool // a key was ever added
}

const bloomHashes = 7

// newBloom returns a filter of 2^log2Bits bits (8 MiB at 26: about 1.2 %
// false positives at seven million erased identifiers).
func newBloom(log2Bits uint) *bloom {
	n := uint64(1) << log2Bits
	return &bloom{bits: make([]uint64, n/64), mask: n - 1}
}

// hexHashes derives the probe hashes from a keyed hash in hex: it is
// already uniformly random, so two 64-bit halves of it serve.
func hexHashes(hash string) (h1, h2 uint64) {
	var raw [16]byte
	if len(hash) < 32 {
		hash += "00000000000000000000000000000000"
	}
	if _, err := hex.Decode(raw[:], []byte(hash[:32])); err != nil {
		copy(raw[:], hash) // not hex: still deterministic
	}
	h1, h2 = le64(raw[:8]), le64(raw[8:])
	// h2 places the probes within a block; a short input leaves it zero
	// (all probes on one bit), so mix h1 in.
	return h1, h2 ^ h1*0x9E3779B97F4A7C15
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// bloomBlock is the bits one key's probes fall in: a 64-byte cache line.
const bloomBlock = 512

// probe calls fn with each probe position. h1 picks a block and h2 the
// bits in it, nine bits of h2 per probe (a blocked Bloom filter): a key
// costs one cache miss instead of seven spread over the whole filter, for
// a slightly higher false-positive rate (TestBloomFalsePositives).
func (b *bloom) probe(h1, h2 uint64, fn func(pos uint64)) {
	base := h1 & b.mask &^ (bloomBlock - 1)
	for i := range uint64(bloomHashes) {
		fn(base + (h2>>(9*i))&(bloomBlock-1))
	}
}

// addHashes sets a key's bits; it reports whether any was not set before,
// that is whether the key was certainly new to the filter.
func (b *bloom) addHashes(h1, h2 uint64) (added bool) {
	b.probe(h1, h2, func(p uint64) {
		m := uint64(1) << (p % 64)
		if atomic.OrUint64(&b.bits[p/64], m)&m == 0 {
			added = true
		}
	})
	return added
}

func (b *bloom) mayContainHashes(h1, h2 uint64) bool {
	ok := true
	b.probe(h1, h2, func(p uint64) { ok = ok && atomic.LoadUint64(&b.bits[p/64])&(1<<(p%64)) != 0 })
	return ok
}

func (b *bloom) add(hash string) {
	b.used.Store(true)
	b.addHashes(hexHashes(hash))
}

func (b *bloom) mayContain(hash string) bool { return b.mayContainHashes(hexHashes(hash)) }
