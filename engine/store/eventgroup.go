package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Since state format 5 the writer files an identifier's events in groups:
// a single Badger entry under the filing seq of its first event
// (keyEvent(idkey, first)), instead of an entry per event. Each entry
// costs the writer and Badger a fixed amount besides its bytes (its key,
// headers, a skiplist node, a table index entry), and filed events were a
// third of all entries. A transaction fills one group per identifier and
// writes it at commit, once it reaches groupBytes or groupEvents, or
// before the transaction reads that identifier's filed events or scans
// many (so usually one per identifier and transaction). A group holds the byte
// eventGroupV1, then per event its filing seq less the key's (uvarint),
// its stored length (uvarint) and its stored form (eventbin.go); the
// entry's user meta byte is its number of events, so that an erasure
// counts them without reading the value log. Events filed alone by older
// builds (a binary event or JSON, user meta 0) read as a group of one
// under their key's seq.
//
// The groups of one identifier hold disjoint runs of seqs, in key order:
// a group is written before any later one of the identifier opens. So a
// seek to keyEvent(idkey, s+1) finds every event filed after s, and an
// erasure's floor (the newest seq at the erasure) covers whole groups.
const eventGroupV1 = 0x02

// A group closes at groupBytes, so that a reader that wants one event (a
// lagging sink resolving a change record) or a refile that moves one
// reads and rewrites a bounded value, and at groupEvents, which its user
// meta byte counts.
const (
	groupBytes  = 16 << 10
	groupEvents = 255
)

// openGroup is a group the transaction is still filling; Txn.sealEvents
// writes it.
type openGroup struct {
	first uint64 // the filing seq of its first event: its key's
	n     int    // events
	b     []byte
}

func (g *openGroup) add(seq uint64, stored []byte) {
	g.n++
	g.b = binary.AppendUvarint(g.b, seq-g.first)
	g.b = binary.AppendUvarint(g.b, uint64(len(stored)))
	g.b = append(g.b, stored...)
}

// fileEvent files an event's stored form under idkey and returns its
// filing seq and the seq of the group that holds it (the key's).
func (t *Txn) fileEvent(idkey string, stored []byte) (seq, group uint64, err error) {
	t.evseq++
	g := t.groups[idkey]
	if g == nil {
		if t.groups == nil {
			t.groups = map[string]*openGroup{}
		}
		g = &openGroup{first: t.evseq, b: append(make([]byte, 0, 2*len(stored)+8), eventGroupV1)}
		t.groups[idkey] = g
	}
	g.add(t.evseq, stored)
	if len(g.b) >= t.s.groupBytes || g.n == groupEvents {
		if err := t.sealGroup(idkey, g); err != nil {
			return 0, 0, err
		}
	}
	return t.evseq, g.first, nil
}

// sealEvents writes every group the transaction is filling, so that its
// reads of filed events (which go through Badger's transaction) see
// them; an identifier's next event opens a new group. The commit seals
// what is left.
func (t *Txn) sealEvents() error {
	return t.sealEventsOf("")
}

// sealEventsOf writes the group the transaction is filling for idkey, or
// every group for "": a read of one identifier's events needs its own
// sealed only, a scan of many needs all.
func (t *Txn) sealEventsOf(idkey string) error {
	if idkey != "" {
		if g := t.groups[idkey]; g != nil {
			return t.sealGroup(idkey, g)
		}
		return nil
	}
	for idkey, g := range t.groups {
		if err := t.sealGroup(idkey, g); err != nil {
			return err
		}
	}
	return nil
}

func (t *Txn) sealGroup(idkey string, g *openGroup) error {
	delete(t.groups, idkey)
	return t.putGroup(keyEvent(idkey, g.first), g)
}

// putGroup writes a group under key, with its count in the user meta.
func (t *Txn) putGroup(key []byte, g *openGroup) error {
	return t.setEntry(badger.NewEntry(key, g.b).WithMeta(byte(g.n)))
}

var errMalformedGroup = errors.New("store: malformed event group")

// eachFiled calls fn for each event of a stored value of the v kind whose
// key holds keySeq: a group's events, or the one event filed alone. The
// stored forms fn gets share v's memory.
func eachFiled(keySeq uint64, v []byte, fn func(seq uint64, stored []byte) error) error {
	if len(v) == 0 || v[0] != eventGroupV1 {
		return fn(keySeq, v)
	}
	b := v[1:]
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return errMalformedGroup
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return errMalformedGroup
		}
		b = b[n:]
		if err := fn(keySeq+d, b[:l:l]); err != nil {
			return err
		}
		b = b[l:]
	}
	return nil
}

// filedCount returns how many events an entry of the v kind holds, from
// its user meta alone.
func filedCount(it item) int {
	if n := it.UserMeta(); n > 0 {
		return int(n)
	}
	return 1 // filed alone
}

// groupCache holds the entries of filed events a reader of the change log
// read for one page, up to groupCacheBytes.
type groupCache struct {
	vals  map[string][]byte
	bytes int
}

const groupCacheBytes = 4 << 20

func (c *groupCache) reset() { clear(c.vals); c.bytes = 0 }

// get returns the value under key, from the cache or read (and kept while
// the cache has room), or badger.ErrKeyNotFound.
func (c *groupCache) get(tx kv, key []byte) ([]byte, error) {
	if v, ok := c.vals[string(key)]; ok {
		return v, nil
	}
	it, err := tx.get(key)
	if err != nil {
		return nil, err
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	if c.bytes+len(v) <= groupCacheBytes {
		if c.vals == nil {
			c.vals = map[string][]byte{}
		}
		c.vals[string(key)] = v
		c.bytes += len(v)
	}
	return v, nil
}

// eventKeySeq returns the seq an event key ends with.
func eventKeySeq(key []byte) (uint64, error) {
	if len(key) < 9 {
		return 0, fmt.Errorf("store: malformed event key")
	}
	return binary.BigEndian.Uint64(key[len(key)-8:]), nil
}
