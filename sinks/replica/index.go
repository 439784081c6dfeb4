package replica

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas/canon"
)

// ErrFull is returned by Apply when the index would outgrow its bound.
var ErrFull = errors.New("replica: the profiles outgrow the memory bound")

// ErrNotProfile is returned by Apply for a record that is not a profile of
// the stream. Its message never quotes the record: a profile's JSON holds
// identifier values, and a decoder's error may quote part of it.
var ErrNotProfile = errors.New("replica: not a profile record")

// Index is the replica's copy of the profile stream. It is safe for
// concurrent use: lookups share a read lock, and each record takes the
// write lock only for its map updates (its JSON is decoded before).
type Index struct {
	max int64 // bytes; 0: no bound
	now func() time.Time

	mu       sync.RWMutex
	profiles map[string]*entry // live profile id → its latest record
	ids      map[string]claim  // identifier key → the profile listing it
	aliases  map[string]claim  // absorbed profile id → its survivor
	gone     map[string]uint64 // tombstoned profile id → the tombstone's seq, for forgetAfter
	forget   []tombstone       // what gone holds, oldest first
	bytes    int64
}

// The index remembers a profile's tombstone for forgetAfter, so that a
// redelivered older record of the profile (a sink's retry of a batch whose
// later part, the tombstone, was already written) does not bring it back.
// Past it the redelivery would; a retry comes within seconds. At most
// maxTombstones are remembered (about 100 bytes each, outside the byte
// bound, which they cannot push a replica over): past that the oldest go
// early.
const (
	forgetAfter   = 30 * time.Second
	maxTombstones = 1 << 17
)

// tombstone is one remembered tombstone.
type tombstone struct {
	pid string
	seq uint64
	at  time.Time
}

// entry is a live profile's latest record.
type entry struct {
	json   []byte   // shared with readers: never modified
	seq    uint64   // change seq of the record
	ids    []string // identifier keys it lists
	merged []string // profile ids it absorbed
}

// claim names the profile that holds a key, and the seq of the record that
// said so.
type claim struct {
	pid string
	seq uint64
}

// Approximate bytes each kind of item costs beyond its strings: map slot,
// struct and slice headers.
const (
	entryOverhead = 160
	claimOverhead = 64
)

// NewIndex returns an empty index that holds at most maxBytes (0: no
// bound).
func NewIndex(maxBytes int64) *Index {
	return &Index{max: maxBytes, now: time.Now, profiles: map[string]*entry{}, ids: map[string]claim{}, aliases: map[string]claim{}, gone: map[string]uint64{}}
}

// record is the part of a profile's JSON the index reads.
type record struct {
	ID          string `json:"profile_id"`
	Identifiers []struct {
		Type  canon.IDType `json:"type"`
		Value string       `json:"value"`
	} `json:"identifiers"`
	MergedFrom []string `json:"merged_from"`
	Version    uint64   `json:"version"`
}

// Apply takes one record of the profile stream: value is the profile's
// JSON, or nil for a tombstone; seq is the change seq the record carries
// (its "seq" header; 0 when it has none, and then a profile's version
// stands in). A record older than the one the index holds for the profile,
// or than its tombstone read in the last forgetAfter (a sink's
// redelivery), changes nothing. An error means the record was not taken:
// ErrFull, or ErrNotProfile.
func (x *Index) Apply(pid string, value []byte, seq uint64) error {
	if pid == "" {
		return fmt.Errorf("%w: no key", ErrNotProfile)
	}
	if value == nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.forgetOld()
		x.drop(pid, seq)
		return nil
	}
	var r record
	if err := json.Unmarshal(value, &r); err != nil {
		return fmt.Errorf("%w: its JSON does not decode as a profile", ErrNotProfile)
	}
	if r.ID != pid {
		return fmt.Errorf("%w: its key and profile_id differ", ErrNotProfile)
	}
	if seq == 0 {
		seq = r.Version
	}
	ids := make([]string, 0, len(r.Identifiers))
	for _, id := range r.Identifiers {
		ids = append(ids, canon.Identifier{Type: id.Type, Value: id.Value}.Key())
	}
	e := &entry{json: value, seq: seq, ids: ids, merged: r.MergedFrom}

	x.mu.Lock()
	defer x.mu.Unlock()
	x.forgetOld()
	if g, ok := x.gone[pid]; ok {
		if seq <= g {
			return nil // older than the profile's tombstone
		}
		delete(x.gone, pid) // the id is given out again (a split hands it back)
	}
	old := x.profiles[pid]
	if old != nil && seq < old.seq {
		return nil
	}
	var goneIDs, goneMerged []string
	if old != nil {
		goneIDs, goneMerged = without(old.ids, ids), without(old.merged, e.merged)
	}
	// The claims count too: they are part of what Bytes reports.
	grow := entrySize(pid, e) + claimsGrowth(x.ids, pid, ids, goneIDs) + claimsGrowth(x.aliases, pid, e.merged, goneMerged)
	if old != nil {
		grow -= entrySize(pid, old)
	}
	if x.max > 0 && x.bytes+grow > x.max {
		return fmt.Errorf("%w (%d bytes, bound %d)", ErrFull, x.bytes+grow, x.max)
	}
	if old != nil {
		x.release(x.ids, pid, goneIDs)
		x.release(x.aliases, pid, goneMerged)
		x.bytes -= entrySize(pid, old)
	}
	x.profiles[pid] = e
	x.bytes += entrySize(pid, e)
	x.take(x.ids, pid, seq, ids)
	x.take(x.aliases, pid, seq, e.merged)
	return nil
}

// drop removes a profile on its tombstone, unless the index holds a newer
// record of it, and remembers the tombstone for forgetAfter.
func (x *Index) drop(pid string, seq uint64) {
	old := x.profiles[pid]
	if old != nil && seq != 0 && seq < old.seq {
		return
	}
	if seq != 0 && seq > x.gone[pid] {
		x.gone[pid] = seq
		x.forget = append(x.forget, tombstone{pid, seq, x.now()})
	}
	if old == nil {
		return
	}
	x.release(x.ids, pid, old.ids)
	x.release(x.aliases, pid, old.merged)
	x.bytes -= entrySize(pid, old)
	delete(x.profiles, pid)
}

// forgetOld forgets the tombstones read more than forgetAfter ago, and the
// oldest past maxTombstones.
func (x *Index) forgetOld() {
	cut := x.now().Add(-forgetAfter)
	n := 0
	for n < len(x.forget) && (x.forget[n].at.Before(cut) || len(x.forget)-n >= maxTombstones) {
		t := x.forget[n]
		if x.gone[t.pid] == t.seq {
			delete(x.gone, t.pid)
		}
		n++
	}
	// Reslicing, not shifting, keeps this O(forgotten): the next append
	// that outgrows the array copies what is left into a new one.
	clear(x.forget[:n])
	x.forget = x.forget[n:]
}

// take files keys under pid, except those a newer record gave to another
// profile.
func (x *Index) take(m map[string]claim, pid string, seq uint64, keys []string) {
	for _, k := range keys {
		c, ok := m[k]
		if ok && c.pid != pid && c.seq > seq {
			continue
		}
		if !ok {
			x.bytes += claimSize(k, pid)
		}
		m[k] = claim{pid, seq}
	}
}

// claimsGrowth is what take(m, pid, _, keys) and release(m, pid, gone)
// change the byte estimate by: a claim is added for each key no profile
// holds yet, and removed for each gone key pid holds.
func claimsGrowth(m map[string]claim, pid string, keys, gone []string) int64 {
	var n int64
	seen := newKeySet(len(keys))
	for _, k := range keys {
		if _, ok := m[k]; !ok && seen.add(k) {
			n += claimSize(k, pid)
		}
	}
	seen = newKeySet(len(gone))
	for _, k := range gone {
		if c, ok := m[k]; ok && c.pid == pid && seen.add(k) {
			n -= claimSize(k, pid)
		}
	}
	return n
}

// keySet is a set of keys that stays a slice while small: most profiles
// list a handful of identifiers, some (a shared device's) thousands,
// where comparing each with every other would be quadratic.
type keySet struct {
	list []string
	m    map[string]bool
}

const keySetSlice = 16

func newKeySet(n int) *keySet {
	if n > keySetSlice {
		return &keySet{m: make(map[string]bool, n)}
	}
	return &keySet{}
}

// add adds k and reports whether it was new.
func (s *keySet) add(k string) bool {
	if s.m != nil {
		if s.m[k] {
			return false
		}
		s.m[k] = true
		return true
	}
	if slices.Contains(s.list, k) {
		return false
	}
	s.list = append(s.list, k)
	return true
}

func (s *keySet) has(k string) bool {
	if s.m != nil {
		return s.m[k]
	}
	return slices.Contains(s.list, k)
}

// release removes the keys pid still holds.
func (x *Index) release(m map[string]claim, pid string, keys []string) {
	for _, k := range keys {
		if c, ok := m[k]; ok && c.pid == pid {
			delete(m, k)
			x.bytes -= claimSize(k, pid)
		}
	}
}

// without returns the keys of old that are not in keep.
func without(old, keep []string) []string {
	set := newKeySet(len(keep))
	for _, k := range keep {
		set.add(k)
	}
	var out []string
	for _, k := range old {
		if !set.has(k) {
			out = append(out, k)
		}
	}
	return out
}

func entrySize(pid string, e *entry) int64 {
	n := int64(entryOverhead + len(pid) + len(e.json))
	for _, k := range e.ids {
		n += int64(16 + len(k))
	}
	for _, k := range e.merged {
		n += int64(16 + len(k))
	}
	return n
}

func claimSize(key, pid string) int64 { return int64(claimOverhead + len(key)) }

// LookupJSON returns the JSON of the profile holding a normalized
// identifier, or an error wrapping canon.ErrNotFound. The bytes are
// shared: do not modify them.
func (x *Index) LookupJSON(id canon.Identifier) ([]byte, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if c, ok := x.ids[id.Key()]; ok {
		if e := x.profiles[c.pid]; e != nil {
			return e.json, nil
		}
	}
	return nil, canon.ErrNotFound
}

// ProfileJSON returns the JSON of a profile by id; an absorbed id answers
// with its survivor's.
func (x *Index) ProfileJSON(pid string) ([]byte, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e := x.profiles[pid]; e != nil {
		return e.json, nil
	}
	if c, ok := x.aliases[pid]; ok {
		if e := x.profiles[c.pid]; e != nil {
			return e.json, nil
		}
	}
	return nil, canon.ErrNotFound
}

// Size is what the index holds.
type Size struct {
	Profiles, Identifiers, Aliases int
	Bytes                          int64
}

// Size reports what the index holds.
func (x *Index) Size() Size {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return Size{len(x.profiles), len(x.ids), len(x.aliases), x.bytes}
}
