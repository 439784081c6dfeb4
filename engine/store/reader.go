package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas/canon"
)

// Reader reads a consistent snapshot.
type Reader struct {
	tx kv
	// its holds, for a reader from Txn.Scan, one iterator per kind of
	// record, reused across calls until Close.
	its map[byte]*iterator
	// seal, for a reader of the writer's transaction, writes the event
	// groups it is still filling before a read of filed events: those of
	// the identifier key it is given, or all for "".
	seal func(idkey string) error
}

// Close releases a scanning reader's iterators; it is a no-op otherwise.
func (r *Reader) Close() {
	for _, it := range r.its {
		it.Close()
	}
	clear(r.its)
}

// each calls fn for each record under prefix, whose first byte is its kind.
// A one-off reader opens an iterator for the call; a scanning reader seeks
// its kept iterator instead: Badger sorts an update transaction's pending
// writes each time it opens an iterator, so a profile read one iterator per
// identifier costs one sort of the whole transaction per identifier.
func (r *Reader) each(prefix []byte, fn func(key []byte, it item) error) error {
	return r.eachFrom(prefix, prefix, fn)
}

// eachFrom is each from the key seek on, seek being under prefix.
func (r *Reader) eachFrom(prefix, seek []byte, fn func(key []byte, it item) error) error {
	var it *iterator
	if r.its == nil {
		it = r.tx.iterate(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
	} else if it = r.its[prefix[0]]; it == nil {
		it = r.tx.iterate(badger.IteratorOptions{Prefix: prefix[:1]})
		r.its[prefix[0]] = it
	}
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		if err := fn(it.Item().Key(), it.Item()); err != nil {
			return err
		}
	}
	return nil
}

// Link is one stored link between two identifiers, A the lower idkey.
type Link struct {
	A, B     string
	Evidence canon.Evidence
}

// Links lists the links stored under the identifiers in idkeys. A link is
// stored under its lower idkey (keyLink), so given every identifier of a
// component, as callers do, these are all the component's links, once
// each: a link joins two identifiers of one component. Stores of format 5
// and older also hold each link under its higher idkey, written and
// deleted with the other copy but not rewritten since: it is skipped.
func (r *Reader) Links(idkeys []string) ([]Link, error) {
	var out []Link
	for _, a := range idkeys {
		prefix := withLen(pEdge, a, 0)
		err := r.each(prefix, func(key []byte, item item) error {
			l := Link{A: a, B: string(key[len(prefix):])}
			if l.B < l.A {
				return nil
			}
			if err := item.Value(func(b []byte) error { return decodeEvidence(b, &l.Evidence) }); err != nil {
				return fmt.Errorf("store: decode link: %w", err)
			}
			out = append(out, l)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Link returns the stored link between two identifiers, and whether there
// is one.
func (r *Reader) Link(a, b string) (canon.Evidence, bool, error) {
	var ev canon.Evidence
	item, err := r.tx.get(keyLink(a, b))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ev, false, nil
	}
	if err != nil {
		return ev, false, err
	}
	if err := item.Value(func(v []byte) error { return decodeEvidence(v, &ev) }); err != nil {
		return ev, false, fmt.Errorf("store: decode link: %w", err)
	}
	return ev, true, nil
}

// Events calls fn for each event filed under an identifier, oldest first.
// Events of an earlier holder of the value, erased and not yet purged,
// are not its events and are left out.
func (r *Reader) Events(idkey string, fn func(e *canon.Event) error) error {
	prefix, seek, err := r.eventRange(idkey)
	if err != nil {
		return err
	}
	var evs []canon.Event
	return r.eachFrom(prefix, seek, func(key []byte, item item) error {
		keySeq, err := eventKeySeq(key)
		if err != nil {
			return err
		}
		// Decoded first, then handed on: fn may read the store, and the
		// value is Badger's only inside Value. Each entry's events are
		// new, so fn may keep them.
		evs = nil
		err = item.Value(func(v []byte) error {
			return eachFiled(keySeq, v, func(_ uint64, stored []byte) error {
				evs = append(evs, canon.Event{})
				return decodeEvent(stored, &evs[len(evs)-1])
			})
		})
		if err != nil {
			return fmt.Errorf("store: decode event: %w", err)
		}
		for i := range evs {
			if err := fn(&evs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// eventRange returns the prefix of the events filed under an identifier
// and the first key of those that are its own: past the newest event of
// an erasure whose purge is still running (see Txn.EraseEvents).
func (r *Reader) eventRange(idkey string) (prefix, seek []byte, err error) {
	if r.seal != nil {
		if err := r.seal(idkey); err != nil {
			return nil, nil, err
		}
	}
	prefix = withLen(pEvent, idkey, 0)
	upTo, err := purgeFloor(r.tx, idkey)
	if err != nil || upTo == 0 {
		return prefix, prefix, err
	}
	return prefix, keyEvent(idkey, upTo+1), nil
}

// purgeFloor returns the newest event seq of an identifier's erasure whose
// purge is still running, or 0.
func purgeFloor(tx kv, idkey string) (uint64, error) { return getU64(tx, keyPurge(idkey)) }

// Positions returns every stored consume position.
func (r *Reader) Positions() (map[canon.Partition]int64, error) {
	out := map[canon.Partition]int64{}
	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pOffset}, PrefetchValues: true})
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

// Cursors returns every stored sink cursor, by sink name.
func (r *Reader) Cursors() (map[string]uint64, error) {
	out := map[string]uint64{}
	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pCursor}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		sink := string(it.Item().Key()[1:])
		err := it.Item().Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("store: malformed cursor of sink %q", sink)
			}
			out[sink] = binary.BigEndian.Uint64(b)
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
	back := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pLog}, Reverse: true})
	back.Seek(keyLogPage(after+1, ^uint64(0)))
	if back.Valid() {
		if _, last := parseLogKey(back.Item().Key()); last > after {
			start = back.Item().KeyCopy(nil)
		}
	}
	back.Close()

	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pLog}, PrefetchValues: true, PrefetchSize: 4})
	defer it.Close()
	var out []canon.Change
	// A page's event records mostly refer to a few groups: each is read
	// once per page.
	groups := groupCache{}
	for it.Seek(start); it.Valid() && len(out) < max; it.Next() {
		groups.reset()
		var page []pageChange
		first, last := parseLogKey(it.Item().Key())
		err := it.Item().Value(func(b []byte) (err error) {
			page, err = decodePage(b, first, last)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store: decode change: %w", err)
		}
		for _, pc := range page {
			if pc.Seq <= after || len(out) == max {
				continue
			}
			if pc.Ref != nil {
				if err := r.resolve(&pc.Change, pc.Ref, &groups); err != nil {
					return nil, err
				}
			}
			out = append(out, pc.Change)
		}
	}
	return out, nil
}

// decodePage decodes a stored log page, keyed by the seqs of its first
// and last records.
func decodePage(b []byte, first, last uint64) ([]pageChange, error) {
	if len(b) > 0 && b[0] == pageV1 {
		return decodeBinaryPage(b, first, last)
	}
	if len(b) > 0 && b[0] == '{' { // one record per key
		page := make([]pageChange, 1)
		return page, canon.Decode(b, &page[0])
	}
	var page []pageChange
	return page, canon.Decode(b, &page)
}

// errStop ends an iteration early.
var errStop = errors.New("store: stop")

// Held returns up to max records of erasures with seq > after that a trim
// of the change log kept (Txn.TrimLog), in seq order; an account's record
// holds the account as it is in the snapshot (Superseded when gone).
func (r *Reader) Held(after uint64, max int) ([]canon.Change, error) {
	var out []canon.Change
	err := r.eachFrom([]byte{pHeld}, keyHeld(after+1), func(key []byte, it item) error {
		if len(out) == max {
			return errStop
		}
		var c canon.Change
		if err := it.Value(func(b []byte) error { return json.Unmarshal(b, &c) }); err != nil {
			return fmt.Errorf("store: decode kept erasure %x: %w", key, err)
		}
		if c.Account != nil {
			// Kept by reference (TrimLog): the account as it is now.
			a, err := r.Account(c.Account.ID)
			if err != nil {
				return err
			}
			if a == nil {
				c.Account, c.Superseded = nil, true
			} else {
				c.Account.Traits, c.Account.Members = a.Traits, a.Members
			}
		}
		out = append(out, c)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// HeldRange returns the lowest and highest seq of the erasure records a
// trim kept, 0 and 0 when none is.
func (r *Reader) HeldRange() (low, high uint64, err error) {
	for _, reverse := range []bool{false, true} {
		it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pHeld}, Reverse: reverse})
		if reverse {
			it.Seek(keyHeld(^uint64(0)))
		} else {
			it.Rewind()
		}
		if !it.Valid() {
			it.Close()
			return 0, 0, nil
		}
		k := it.Item().KeyCopy(nil)
		it.Close()
		if len(k) != 9 {
			return 0, 0, fmt.Errorf("store: malformed kept erasure key %x", k)
		}
		if reverse {
			high = binary.BigEndian.Uint64(k[1:])
		} else {
			low = binary.BigEndian.Uint64(k[1:])
		}
	}
	return low, high, nil
}

// pageChange is a change record as the stored log holds it: whole, or
// with a reference to its payload (see pageRef).
type pageChange struct {
	canon.Change
	Ref *pageRef `json:"ref,omitempty"`
}

// resolve fills in the payload of a change stored with a reference, as of
// the reader's snapshot, or marks it Superseded when the payload is gone:
// the profile is at another version or deleted, the event was moved or
// erased (its purge pending or done).
func (r *Reader) resolve(c *canon.Change, ref *pageRef, groups *groupCache) error {
	gone := func() error {
		c.Event, c.Profile, c.Superseded = nil, nil, true
		return nil
	}
	switch {
	case c.Kind == canon.ChangeEvent && c.Event != nil:
		if floor, err := purgeFloor(r.tx, ref.K); err != nil {
			return err
		} else if floor >= ref.N {
			return gone()
		}
		group := ref.G
		if group == 0 {
			group = ref.N // it opened its group, or was filed alone (before state format 5)
		}
		v, err := groups.get(r.tx, keyEvent(ref.K, group))
		if errNotFound(err) {
			return gone()
		}
		if err != nil {
			return fmt.Errorf("store: read the event of change %d: %w", c.Seq, err)
		}
		found := false
		err = eachFiled(group, v, func(seq uint64, stored []byte) error {
			if seq != ref.N {
				return nil
			}
			found = true
			// The properties stay JSON (canon.Change.RawProps): the
			// sinks only write them out.
			if err := decodeEventProps(stored, &c.Event.Event, &c.RawProps); err != nil {
				return err
			}
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return fmt.Errorf("store: decode the event of change %d: %w", c.Seq, err)
		}
		if !found {
			return gone() // moved off the group by a refile
		}
	case c.Kind == canon.ChangeProfile:
		item, err := r.tx.get(keyProfile(ref.C))
		if errNotFound(err) {
			return gone()
		}
		if err != nil {
			return fmt.Errorf("store: read the profile of change %d: %w", c.Seq, err)
		}
		// The stored state is the public profile's members and the
		// engine's own: decoding the profile alone skips the rest.
		var p canon.Profile
		if err := item.Value(func(b []byte) error { return canon.Decode(b, &p) }); err != nil {
			return fmt.Errorf("store: decode the profile of change %d: %w", c.Seq, err)
		}
		if p.Version != ref.V {
			return gone()
		}
		c.Profile = &p
	default:
		return fmt.Errorf("store: change %d of kind %q has a reference", c.Seq, c.Kind)
	}
	return nil
}
