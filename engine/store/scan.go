package store

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// EachProfile calls fn for every profile in the snapshot. The state passed
// to fn is fn's to keep.
func (r *Reader) EachProfile(fn func(st *profile.State) error) error {
	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pProfile}, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var st profile.State
		if err := it.Item().Value(func(b []byte) error { return canon.Decode(b, &st) }); err != nil {
			return fmt.Errorf("store: decode profile: %w", err)
		}
		if err := fn(&st); err != nil {
			return err
		}
	}
	return nil
}

// EachIdentifier calls fn for every identifier in the snapshot with its raw
// index entry (component, possibly with the graph's flag bits).
func (r *Reader) EachIdentifier(fn func(id canon.Identifier, entry uint64) error) error {
	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pID}, PrefetchValues: true, PrefetchSize: 1024})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		key := string(it.Item().Key()[1:])
		t, v, ok := strings.Cut(key, "\x00")
		if !ok {
			return fmt.Errorf("store: malformed identifier key")
		}
		var entry uint64
		err := it.Item().Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("store: malformed identifier entry")
			}
			entry = binary.BigEndian.Uint64(b)
			return nil
		})
		if err != nil {
			return err
		}
		if err := fn(canon.Identifier{Type: canon.IDType(t), Value: v}, entry); err != nil {
			return err
		}
	}
	return nil
}
