package store

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/schemas/canon"
)

// filedEntries returns the keys' seqs of the v entries stored under idkey.
func filedEntries(t *testing.T, s *Store, idkey string) []uint64 {
	t.Helper()
	var seqs []uint64
	err := s.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: withLen(pEvent, idkey, 0)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			seq, err := eventKeySeq(it.Item().Key())
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// messageIDs returns the message ids of the events filed under idkey, in
// the order Events gives them.
func messageIDs(t *testing.T, r *Reader, idkey string) []string {
	t.Helper()
	var ids []string
	if err := r.Events(idkey, func(e *canon.Event) error { ids = append(ids, e.MessageID); return nil }); err != nil {
		t.Fatal(err)
	}
	return ids
}

func storedIDs(t *testing.T, s *Store, idkey string) (ids []string) {
	t.Helper()
	if err := s.View(func(r *Reader) error { ids = messageIDs(t, r, idkey); return nil }); err != nil {
		t.Fatal(err)
	}
	return ids
}

func eventRecord(id canon.Identifier, msg string) *canon.EventRecord {
	return &canon.EventRecord{Event: canon.Event{Channel: canon.Web, MessageID: msg, Kind: canon.KindTrack, Time: now,
		Identifiers: []canon.Observation{{Identifier: id, Trust: canon.Asserted}}}, ProfileID: "p-1", Anchor: id}
}

// A transaction files an identifier's events as one entry; a read of
// filed events within the transaction sees those filed before it, and
// the identifier's next event opens another entry. Every event reads
// back in filing order, through Events and the stored log.
func TestEventGroups(t *testing.T) {
	s := openStore(t, "", nil)
	ann, ben := canon.Identifier{Type: canon.Email, Value: "ann@shop.io"}, canon.Identifier{Type: canon.Email, Value: "ben@shop.io"}
	update(t, s, func(tx *Txn) error {
		for i, id := range []canon.Identifier{ann, ben, ann, ben, ann} {
			if err := tx.PutEventRecord(id.Key(), eventRecord(id, fmt.Sprint("t1-", i)), false, EncodedEvent{}); err != nil {
				return err
			}
		}
		return nil
	})
	if a, b := filedEntries(t, s, ann.Key()), filedEntries(t, s, ben.Key()); !slices.Equal(a, []uint64{1}) || !slices.Equal(b, []uint64{2}) {
		t.Fatalf("entries after one transaction: ann %v, ben %v; want [1] and [2]", a, b)
	}
	update(t, s, func(tx *Txn) error {
		if err := tx.PutEventRecord(ann.Key(), eventRecord(ann, "t2-0"), false, EncodedEvent{}); err != nil {
			return err
		}
		if got := messageIDs(t, tx.Reader(), ann.Key()); !slices.Equal(got, []string{"t1-0", "t1-2", "t1-4", "t2-0"}) {
			return fmt.Errorf("within the transaction, ann's events are %v", got)
		}
		if err := tx.PutEventRecord(ann.Key(), eventRecord(ann, "t2-1"), false, EncodedEvent{}); err != nil {
			return err
		}
		// A scanning reader keeps its iterator: it sees what was filed
		// before its first read of events.
		r := tx.Scan()
		defer r.Close()
		if got := messageIDs(t, r, ann.Key()); !slices.Equal(got, []string{"t1-0", "t1-2", "t1-4", "t2-0", "t2-1"}) {
			return fmt.Errorf("a scanning reader within the transaction reads ann's events as %v", got)
		}
		return tx.PutEventRecord(ann.Key(), eventRecord(ann, "t2-2"), false, EncodedEvent{})
	})
	if a := filedEntries(t, s, ann.Key()); !slices.Equal(a, []uint64{1, 6, 7, 8}) {
		t.Errorf("ann's entries: %v, want [1 6 7 8]", a)
	}
	if got := storedIDs(t, s, ann.Key()); !slices.Equal(got, []string{"t1-0", "t1-2", "t1-4", "t2-0", "t2-1", "t2-2"}) {
		t.Errorf("ann's events: %v", got)
	}
	if err := s.View(func(r *Reader) error {
		changes, err := r.Changes(0, 100)
		if err != nil {
			return err
		}
		want := []string{"t1-0", "t1-1", "t1-2", "t1-3", "t1-4", "t2-0", "t2-1", "t2-2"}
		if len(changes) != len(want) {
			return fmt.Errorf("%d stored changes, want %d", len(changes), len(want))
		}
		for i, c := range changes {
			if c.Superseded || c.Event == nil || c.Event.MessageID != want[i] {
				return fmt.Errorf("stored change %d: %+v, want event %s", i, c, want[i])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A group closes at the store's cap.
	s.groupBytes = 100
	update(t, s, func(tx *Txn) error {
		for i := range 20 {
			if err := tx.PutEvent(ben.Key(), &eventRecord(ben, fmt.Sprint("t3-", i)).Event); err != nil {
				return err
			}
		}
		return nil
	})
	if n := len(filedEntries(t, s, ben.Key())) - 1; n < 5 || n > 15 {
		t.Errorf("20 events of about 60 bytes in groups closed at 100: %d entries", n)
	}
	if got := storedIDs(t, s, ben.Key()); len(got) != 22 || got[2] != "t3-0" || got[21] != "t3-19" {
		t.Errorf("ben's events: %v", got)
	}
}

// A refile takes a group whole, past max, and rewrites what stays under
// its key; an erasure counts events, not entries.
func TestRefileWithinGroup(t *testing.T) {
	s := openStore(t, "", nil)
	from, to := canon.Identifier{Type: canon.Phone, Value: "+15550100"}, canon.Identifier{Type: canon.LoyaltyID, Value: "L1"}
	update(t, s, func(tx *Txn) error {
		for i := range 7 {
			if err := tx.PutEventRecord(from.Key(), eventRecord(from, fmt.Sprint("m", i)), false, EncodedEvent{}); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx *Txn) error {
		moved, next, err := tx.RefileEvents(from.Key(), 0, 3, func(e *canon.Event) (string, error) {
			if e.MessageID == "m1" {
				return "", nil
			}
			return to.Key(), nil
		})
		if err != nil || len(moved) != 6 || next != 0 {
			return fmt.Errorf("RefileEvents = %d moved, next %d, %v; want 6, 0", len(moved), next, err)
		}
		for _, m := range moved {
			tx.EmitRefiled(m, &canon.EventRecord{Event: *m.Event, ProfileID: "p-2", Anchor: to, Refiled: true})
		}
		return nil
	})
	if got := storedIDs(t, s, from.Key()); !slices.Equal(got, []string{"m1"}) {
		t.Errorf("left under the phone: %v", got)
	}
	if got := storedIDs(t, s, to.Key()); !slices.Equal(got, []string{"m0", "m2", "m3", "m4", "m5", "m6"}) {
		t.Errorf("moved to the card: %v", got)
	}
	if e := filedEntries(t, s, from.Key()); !slices.Equal(e, []uint64{1}) {
		t.Errorf("the phone's entries: %v, want its group rewritten under 1", e)
	}
	if err := s.View(func(r *Reader) error {
		changes, err := r.Changes(0, 100)
		if err != nil {
			return err
		}
		for _, c := range changes {
			// The first records: m1 stands, the others moved away; then
			// the refiled records, which find the moved events.
			moved := c.Seq <= 7 && c.Seq != 2
			if c.Superseded != moved || (!moved && (c.Event == nil || c.Event.MessageID == "")) {
				return fmt.Errorf("stored change %d: %+v", c.Seq, c)
			}
		}
		if len(changes) != 13 {
			return fmt.Errorf("%d stored changes, want 13", len(changes))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Txn) error {
		if n, err := tx.EraseEvents(to.Key()); err != nil || n != 6 {
			return fmt.Errorf("EraseEvents = %d, %v; want 6", n, err)
		}
		return nil
	})
}

// Events a store of format 4 filed alone, one per key, still read,
// move, resolve from the stored log and count in an erasure.
func TestFormat4EventsRead(t *testing.T) {
	s := openStore(t, "", nil)
	ann, card := canon.Identifier{Type: canon.Email, Value: "ann@shop.io"}, canon.Identifier{Type: canon.LoyaltyID, Value: "L1"}
	kvs := map[string][]byte{}
	page := newPageWriter(64)
	for seq := uint64(1); seq <= 2; seq++ {
		rec := eventRecord(ann, fmt.Sprint("old-", seq))
		ev, err := EncodeEvent(&rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		kvs[string(keyEvent(ann.Key(), seq))] = ev.Stored
		if err := page.add(&canon.Change{Seq: seq, Kind: canon.ChangeEvent, At: now, Event: rec}, &pageRef{K: ann.Key(), N: seq}); err != nil {
			t.Fatal(err)
		}
	}
	kvs[string(keyLogPage(1, 2))] = page.b
	writeRaw(t, s, kvs)
	s.seq, s.evseq = 2, 2 // as the state's counters say
	update(t, s, func(tx *Txn) error {
		if err := tx.PutEventRecord(ann.Key(), eventRecord(ann, "new"), false, EncodedEvent{}); err != nil {
			return err
		}
		if got := messageIDs(t, tx.Reader(), ann.Key()); !slices.Equal(got, []string{"old-1", "old-2", "new"}) {
			return fmt.Errorf("ann's events within the transaction: %v", got)
		}
		return nil
	})
	if err := s.View(func(r *Reader) error {
		changes, err := r.Changes(0, 100)
		if err != nil {
			return err
		}
		for i, want := range []string{"old-1", "old-2", "new"} {
			if i >= len(changes) || changes[i].Event == nil || changes[i].Event.MessageID != want {
				return fmt.Errorf("stored changes: %+v; want %s at %d", changes, want, i)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Txn) error {
		moved, next, err := tx.RefileEvents(ann.Key(), 0, 10, func(e *canon.Event) (string, error) {
			if e.MessageID == "old-2" {
				return card.Key(), nil
			}
			return "", nil
		})
		if err != nil || len(moved) != 1 || next != 0 {
			return fmt.Errorf("RefileEvents = %v, %d, %v", moved, next, err)
		}
		return nil
	})
	if got := storedIDs(t, s, ann.Key()); !slices.Equal(got, []string{"old-1", "new"}) {
		t.Errorf("ann's events after the refile: %v", got)
	}
	update(t, s, func(tx *Txn) error {
		if n, err := tx.EraseEvents(ann.Key()); err != nil || n != 2 {
			return fmt.Errorf("EraseEvents = %d, %v; want 2", n, err)
		}
		return nil
	})
}

// A group reads back as built; any bytes decode without a panic, and what
// a group reads as, built again, reads the same.
func FuzzEachFiled(f *testing.F) {
	g := openGroup{first: 10, b: []byte{eventGroupV1}}
	g.add(10, []byte{eventV1, 1, 2})
	g.add(12, []byte("{}"))
	f.Add(uint64(10), g.b)
	f.Add(uint64(3), []byte{eventV1})
	f.Add(uint64(1), []byte{eventGroupV1, 0, 200})
	type filed struct {
		seq    uint64
		stored []byte
	}
	read := func(keySeq uint64, v []byte) ([]filed, error) {
		var got []filed
		err := eachFiled(keySeq, v, func(seq uint64, stored []byte) error {
			got = append(got, filed{seq, stored})
			return nil
		})
		return got, err
	}
	f.Fuzz(func(t *testing.T, keySeq uint64, v []byte) {
		got, err := read(keySeq, v)
		if err != nil {
			return
		}
		if len(v) == 0 || v[0] != eventGroupV1 {
			if len(got) != 1 || got[0].seq != keySeq || !bytes.Equal(got[0].stored, v) {
				t.Fatalf("a value filed alone reads as %v", got)
			}
			return
		}
		re := openGroup{first: keySeq, b: []byte{eventGroupV1}}
		for _, e := range got {
			re.add(e.seq, e.stored)
		}
		again, err := read(keySeq, re.b)
		if err != nil || !slices.EqualFunc(got, again, func(a, b filed) bool { return a.seq == b.seq && bytes.Equal(a.stored, b.stored) }) {
			t.Fatalf("group %x read as %v, rebuilt as %x, which reads as %v (%v)", v, got, re.b, again, err)
		}
	})
}

// storedEvents counts the events stored under idkey, erased or not, by
// decoding its entries, and checks that each entry's user meta counts the
// same.
func storedEvents(t *testing.T, s *Store, idkey string) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: withLen(pEvent, idkey, 0), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			seq, err := eventKeySeq(it.Item().Key())
			if err != nil {
				return err
			}
			in := 0
			if err := it.Item().Value(func(v []byte) error {
				return eachFiled(seq, v, func(uint64, []byte) error { in++; return nil })
			}); err != nil {
				return err
			}
			if m := filedCount(it.Item()); m != in {
				t.Errorf("entry %d holds %d events, its user meta says %d", seq, in, m)
			}
			n += in
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An erasure of more groups than one transaction deletes counts every
// event, the deleted and those left to Purge, which deletes the rest.
func TestEraseGroupsAcrossTransactions(t *testing.T) {
	s := openStore(t, "", func(o *Options) { o.MemTableBytes = 1 << 20 })
	s.groupBytes = 40 // two events a group or so
	meter := canon.Identifier{Type: canon.DeviceID, Value: "meter"}.Key()
	const n = 1500
	update(t, s, func(tx *Txn) error {
		for i := range n {
			if err := tx.PutEvent(meter, &canon.Event{Channel: canon.IoT, MessageID: fmt.Sprint("m", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	groups := len(filedEntries(t, s, meter))
	if groups <= s.purgeRoom.n || groups >= n {
		t.Fatalf("setup: %d events in %d groups, want more groups than a transaction deletes (%d) and fewer than events", n, groups, s.purgeRoom.n)
	}
	update(t, s, func(tx *Txn) error {
		if got, err := tx.EraseEvents(meter); err != nil || got != n {
			return fmt.Errorf("EraseEvents = %d, %v; want %d", got, err, n)
		}
		return nil
	})
	left := storedEvents(t, s, meter)
	if left == 0 || left >= n || s.Purging() != 1 {
		t.Fatalf("after the erasure: %d events left, purging %d", left, s.Purging())
	}
	purged := 0
	for s.Purging() > 0 {
		d, err := s.Purge()
		if err != nil {
			t.Fatal(err)
		}
		purged += d
	}
	if purged != left || storedEvents(t, s, meter) != 0 {
		t.Errorf("Purge deleted %d events of %d left; %d remain", purged, left, storedEvents(t, s, meter))
	}
}

// A group's count reads the same through the overlay of the commit in
// flight and after a reopen; a one-off read of one identifier's events
// leaves another's group open.
func TestGroupCountsThroughOverlayAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	ann, ben, cat := "email\x00ann@shop.io", "email\x00ben@shop.io", "email\x00cat@shop.io"
	file := func(tx *Txn, idkey string, n int) error {
		for i := range n {
			if err := tx.PutEvent(idkey, &canon.Event{Channel: canon.Web, MessageID: fmt.Sprint(idkey, i), Kind: canon.KindPage, Time: now}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.UpdateAsync(now, func(tx *Txn) error {
		if err := file(tx, ann, 5); err != nil {
			return err
		}
		if err := file(tx, ben, 3); err != nil {
			return err
		}
		// Reading ann's events seals ann's group only.
		if got := messageIDs(t, tx.Reader(), ann); len(got) != 5 {
			return fmt.Errorf("ann's events within the transaction: %v", got)
		}
		if tx.groups[ann] != nil || tx.groups[ben] == nil {
			return fmt.Errorf("open groups after reading ann's events: %v", slices.Collect(maps.Keys(tx.groups)))
		}
		return file(tx, cat, 4)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAsync(now, func(tx *Txn) error {
		if tx.prev == nil {
			return fmt.Errorf("no commit in flight")
		}
		if n, err := tx.EraseEvents(ann); err != nil || n != 5 {
			return fmt.Errorf("EraseEvents(ann) through the overlay = %d, %v; want 5", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	update(t, s, func(tx *Txn) error {
		if n, err := tx.EraseEvents(ben); err != nil || n != 3 {
			return fmt.Errorf("EraseEvents(ben) after a reopen = %d, %v; want 3", n, err)
		}
		return nil
	})
	if n := storedEvents(t, s, cat); n != 4 {
		t.Errorf("cat's events after a reopen: %d, want 4", n)
	}
}
