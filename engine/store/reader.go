package store

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas/canon"
)

// Reader reads a consistent snapshot.
type Reader struct{ tx *badger.Txn }

// Edge is one stored link, seen from one of its ends.
type Edge struct {
	Other    string // the other end's idkey
	Evidence canon.Evidence
}

// Edges lists the links of an identifier.
func (r *Reader) Edges(idkey string) ([]Edge, error) {
	prefix := withLen(pEdge, idkey)
	it := r.tx.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 16})
	defer it.Close()
	var out []Edge
	for it.Rewind(); it.Valid(); it.Next() {
		e := Edge{Other: string(it.Item().Key()[len(prefix):])}
		err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e.Evidence) })
		if err != nil {
			return nil, fmt.Errorf("store: decode edge: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Events calls fn for each event filed under an identifier, oldest first.
func (r *Reader) Events(idkey string, fn func(e *canon.Event) error) error {
	it := r.tx.NewIterator(badger.IteratorOptions{Prefix: withLen(pEvent, idkey), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var e canon.Event
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
			return fmt.Errorf("store: decode event: %w", err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// Positions returns every stored consume position.
func (r *Reader) Positions() (map[canon.Partition]int64, error) {
	out := map[canon.Partition]int64{}
	it := r.tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pOffset}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()[1:]
		if len(k) < 5 || k[len(k)-5] != 0 {
			return nil, fmt.Errorf("store: malformed position key")
		}
		p := canon.Partition{Topic: string(k[:len(k)-5]), Partition: int32(binary.BigEndian.Uint32(k[len(k)-4:]))}
		err := it.Item().Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("store: malformed position")
			}
			out[p] = int64(binary.BigEndian.Uint64(b))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Cursor returns a sink's acknowledged seq.
func (r *Reader) Cursor(sink string) (uint64, error) { return getU64(r.tx, keyCursor(sink)) }

// Changes returns up to max change records with seq > after.
func (r *Reader) Changes(after uint64, max int) ([]canon.Change, error) {
	// The page holding after+1 starts at or before it: find it backwards.
	start := keyLogPage(after+1, 0)
	back := r.tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pLog}, Reverse: true})
	back.Seek(keyLogPage(after+1, ^uint64(0)))
	if back.Valid() {
		if _, last := parseLogKey(back.Item().Key()); last > after {
			start = back.Item().KeyCopy(nil)
		}
	}
	back.Close()

	it := r.tx.NewIterator(badger.IteratorOptions{Prefix: []byte{pLog}, PrefetchValues: true, PrefetchSize: 4})
	defer it.Close()
	var out []canon.Change
	for it.Seek(start); it.Valid() && len(out) < max; it.Next() {
		var page []canon.Change
		err := it.Item().Value(func(b []byte) error {
			if len(b) > 0 && b[0] == '{' { // one record per key
				page = make([]canon.Change, 1)
				return json.Unmarshal(b, &page[0])
			}
			return json.Unmarshal(b, &page)
		})
		if err != nil {
			return nil, fmt.Errorf("store: decode change: %w", err)
		}
		for _, c := range page {
			if c.Seq > after && len(out) < max {
				out = append(out, c)
			}
		}
	}
	return out, nil
}
