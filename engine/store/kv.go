package store

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/engine/profile"
)

// The writer builds its next transaction while Badger writes the one
// before (see Store.UpdateAsync). Badger opens a transaction only on a
// state its writes have all reached, so the next transaction reads an
// older one, at the commit before the one in flight, and sees the
// in-flight writes through an overlay: kv is that view.

// pending is a write a transaction made: a value and its user meta byte,
// or a delete.
type pending struct {
	val  []byte
	meta byte
	del  bool
}

// overlay holds the writes of a transaction whose commit is in flight,
// for the transaction built after it. It does not change once handed on.
type overlay struct {
	writes map[string]pending
	// states are the profiles the transaction wrote, by component (nil:
	// deleted), decoded, so the next one need not decode them again. They
	// are shared with the caches: the next transaction clones them.
	states map[uint64]*profile.State
	// sorted holds the written keys of each kind (first byte) in order,
	// built on the first iterator over the kind; all, every key.
	sorted map[byte][]string
	all    []string
}

// keys returns the overlay's keys under prefix, in order.
func (o *overlay) keys(prefix []byte) []string {
	if len(o.writes) == 0 {
		return nil
	}
	if len(prefix) == 0 {
		if o.all == nil {
			o.all = slices.Sorted(maps.Keys(o.writes))
		}
		return o.all
	}
	kind := prefix[0]
	all, ok := o.sorted[kind]
	if !ok {
		for k := range o.writes {
			if k[0] == kind {
				all = append(all, k)
			}
		}
		slices.Sort(all)
		if o.sorted == nil {
			o.sorted = map[byte][]string{}
		}
		o.sorted[kind] = all
	}
	if len(prefix) <= 1 {
		return all
	}
	p := string(prefix)
	lo := sort.SearchStrings(all, p)
	hi := lo
	for hi < len(all) && len(all[hi]) >= len(p) && all[hi][:len(p)] == p {
		hi++
	}
	return all[lo:hi]
}

// item is a record an iterator or get found: a Badger item, or a write of
// the overlay.
type item interface {
	Key() []byte
	KeyCopy(dst []byte) []byte
	Value(fn func([]byte) error) error
	ValueCopy(dst []byte) ([]byte, error)
	UserMeta() byte
}

// written is an overlay write as an item.
type written struct {
	key, val []byte
	meta     byte
}

func (w *written) UserMeta() byte                       { return w.meta }
func (w *written) Key() []byte                          { return w.key }
func (w *written) KeyCopy(dst []byte) []byte            { return append(dst[:0], w.key...) }
func (w *written) Value(fn func([]byte) error) error    { return fn(w.val) }
func (w *written) ValueCopy(dst []byte) ([]byte, error) { return append(dst[:0], w.val...), nil }

// kv reads a Badger transaction and, for the writer, the overlay of the
// commit in flight. own holds the writer transaction's own writes, which
// Badger's transaction holds too and which come before the overlay's; a
// snapshot reader has neither.
type kv struct {
	tx   *badger.Txn
	prev *overlay
	own  map[string]pending
}

// get returns the record under key, or badger.ErrKeyNotFound.
func (k kv) get(key []byte) (item, error) {
	if k.prev != nil {
		if _, mine := k.own[string(key)]; !mine {
			if w, ok := k.prev.writes[string(key)]; ok {
				if w.del {
					return nil, badger.ErrKeyNotFound
				}
				return &written{key, w.val, w.meta}, nil
			}
		}
	}
	it, err := k.tx.Get(key)
	if err != nil {
		return nil, err
	}
	return it, nil
}

// iterate opens an iterator; see iterator.
func (k kv) iterate(opts badger.IteratorOptions) *iterator {
	it := &iterator{it: k.tx.NewIterator(opts), reverse: opts.Reverse, prefix: opts.Prefix}
	if k.prev != nil {
		it.prev = k.prev
		it.keys = k.prev.keys(opts.Prefix)
		if it.reverse {
			it.keys = slices.Clone(it.keys)
			slices.Reverse(it.keys)
		}
		// Badger's side holds the transaction's own writes as they are
		// now, so which overlay keys they hide is decided now too: a
		// reader that keeps its iterator (Txn.Scan) must not lose an
		// overlay record the transaction writes later.
		it.mine = make([]bool, len(it.keys))
		for i, key := range it.keys {
			_, it.mine[i] = k.own[key]
		}
	}
	return it
}

// iterator walks Badger's iterator and the overlay's keys under the same
// prefix together, in key order (reversed when Reverse). A key the
// overlay wrote hides the record Badger read under it, unless the
// transaction wrote the key itself; an overlay delete shows nothing.
type iterator struct {
	it      *badger.Iterator
	prev    *overlay
	keys    []string // overlay keys, in iteration order
	mine    []bool   // keys the transaction had written itself when it opened
	i       int
	reverse bool
	prefix  []byte
	cur     item
}

// Rewind goes to the first record. Reversed, it is Badger's: a Seek to
// the prefix, which only the prefix itself is at or before.
func (it *iterator) Rewind() {
	if it.reverse {
		it.Seek(it.prefix)
		return
	}
	it.it.Rewind()
	it.i = 0
	it.settle()
}

// Seek goes to the first record at or after key (at or before it when
// reversed).
func (it *iterator) Seek(key []byte) {
	it.it.Seek(key)
	s := string(key)
	if it.reverse {
		it.i = sort.Search(len(it.keys), func(i int) bool { return it.keys[i] <= s })
	} else {
		it.i = sort.SearchStrings(it.keys, s)
	}
	it.settle()
}

// Valid reports whether the iterator is on a record.
func (it *iterator) Valid() bool { return it.cur != nil }

// ValidForPrefix reports whether it is on a record under prefix.
func (it *iterator) ValidForPrefix(prefix []byte) bool {
	return it.cur != nil && bytes.HasPrefix(it.cur.Key(), prefix)
}

// Item returns the current record; it is valid until Next.
func (it *iterator) Item() item { return it.cur }

// Next moves to the next record.
func (it *iterator) Next() {
	if _, ok := it.cur.(*written); ok {
		it.i++
	} else {
		it.it.Next()
	}
	it.settle()
}

// Close releases Badger's iterator.
func (it *iterator) Close() { it.it.Close() }

// settle makes cur the record the two sides agree is next.
func (it *iterator) settle() {
	it.cur = nil
	for {
		var bk []byte
		if it.it.Valid() {
			bk = it.it.Item().Key()
		}
		if it.i == len(it.keys) {
			if bk != nil {
				it.cur = it.it.Item()
			}
			return
		}
		ok := it.keys[it.i]
		if it.mine[it.i] {
			it.i++ // the transaction's own write: Badger's side has it
			continue
		}
		if bk != nil {
			if before := string(bk) < ok; string(bk) != ok && before != it.reverse {
				it.cur = it.it.Item()
				return
			}
			if string(bk) == ok {
				it.it.Next() // the snapshot's record, which the overlay replaced
			}
		}
		w := it.prev.writes[ok]
		if w.del {
			it.i++
			continue
		}
		it.cur = &written{[]byte(ok), w.val, w.meta}
		return
	}
}

// errNotFound reports whether err is Badger's "no such key".
func errNotFound(err error) bool { return errors.Is(err, badger.ErrKeyNotFound) }
