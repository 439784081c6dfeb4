package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// Txn is the writer's transaction. Identifier entries and profiles are read
// through an overlay and written back once at commit, so an identifier or
// profile touched by many events of a batch costs one write. Profiles handed
// out by Profile belong to the transaction: change them in place and call
// PutProfile.
type Txn struct {
	s    *Store
	tx   *badger.Txn
	now  time.Time
	prev *overlay           // the writes of the commit in flight, if any
	own  map[string]pending // every write of this transaction, by key

	u64s      map[string]uint64 // i and x keys; 0 means absent
	dirtyU64  map[string]bool
	profiles  map[uint64]*profile.State // nil value: deleted
	dirtyP    map[uint64]bool
	changes   []canon.Change
	refs      map[uint64]pageRef    // seq -> where the stored log finds an event change's event
	purging   int64                 // erased identifiers marked for Purge, less those it finished
	refiling  int64                 // identifiers marked by SetRefile, less those unmarked
	purgeRoom room                  // deletes of filed events this transaction may still make
	groups    map[string]*openGroup // events filed and not yet written, by idkey (eventgroup.go)

	seq, comp, created, evseq, live uint64
}

// newTxn opens the writer's next transaction. With a commit in flight it
// reads the state before that commit, plus the commit's writes (kv).
func (s *Store) newTxn(now time.Time) *Txn {
	t := &Txn{
		s: s, now: now.UTC(),
		// Sized like the last commit's: a commit of a thousand events
		// writes thousands of keys, and growing the maps rehashed them
		// several times over.
		own:  make(map[string]pending, s.last.own),
		u64s: make(map[string]uint64, s.last.u64s), dirtyU64: map[string]bool{},
		profiles: map[uint64]*profile.State{}, dirtyP: map[uint64]bool{},
		seq: s.seq, comp: s.comp, created: s.created, evseq: s.evseq, live: s.liveW,
		purgeRoom: s.purgeRoom,
		// The window takes each commit's records, so the slice is new
		// every time; sized like the last one's, it is allocated once.
		changes: make([]canon.Change, 0, s.last.changes),
	}
	readTs := s.ts
	if f := s.inflight; f != nil {
		t.prev, readTs = f.ov, f.ts-1
	}
	t.tx = s.db.NewTransactionAt(readTs, true)
	return t
}

func (t *Txn) kv() kv { return kv{tx: t.tx, prev: t.prev, own: t.own} }

func (t *Txn) set(key, val []byte) error {
	if err := t.tx.Set(key, val); err != nil {
		return err
	}
	t.own[string(key)] = pending{val: val}
	return nil
}

func (t *Txn) del(key []byte) error {
	if err := t.tx.Delete(key); err != nil {
		return err
	}
	t.own[string(key)] = pending{del: true}
	return nil
}

func (t *Txn) setEntry(e *badger.Entry) error {
	if err := t.tx.SetEntry(e); err != nil {
		return err
	}
	t.own[string(e.Key)] = pending{val: e.Value, meta: e.UserMeta}
	return nil
}

// Now is the transaction's commit time.
func (t *Txn) Now() time.Time { return t.now }

// Reader gives read access to the transaction's view, with the writes of
// the commit in flight, but without the identifier entries and profiles
// it holds until commit (ID, Profile): edges, dedup and positions are
// written straight through, so the reader sees them, and the group of
// events the transaction is filling for an identifier is written before
// it reads that identifier's events.
func (t *Txn) Reader() *Reader { return &Reader{tx: t.kv(), seal: t.sealEventsOf} }

// Scan is a Reader for many reads in a row (a profile's identifiers, one
// after another): it keeps its iterators until Close, so it does not see
// writes made after its first read of a kind of record.
func (t *Txn) Scan() *Reader {
	// Its iterators, kept from its first read, must see every group.
	return &Reader{tx: t.kv(), its: map[byte]*iterator{}, seal: func(string) error { return t.sealEvents() }}
}

func (t *Txn) getU64(key string) (uint64, error) {
	if v, ok := t.u64s[key]; ok {
		return v, nil
	}
	// The commit in flight comes before the cache, which it has not
	// reached yet.
	if t.prev != nil {
		if w, ok := t.prev.writes[key]; ok {
			v, err := u64Value(w)
			if err != nil {
				return 0, fmt.Errorf("store: read %c: %w", key[0], err)
			}
			t.u64s[key] = v
			return v, nil
		}
	}
	if v, ok := t.s.ids.get(key); ok {
		t.u64s[key] = v
		return v, nil
	}
	if t.s.held.absent(key) {
		t.u64s[key] = 0 // a new identifier: most of an event's are
		return 0, nil
	}
	v, err := getU64(t.kv(), []byte(key))
	if err != nil {
		return 0, fmt.Errorf("store: read %c: %w", key[0], err)
	}
	t.u64s[key] = v
	return v, nil
}

// u64Value decodes an overlay write of an 8-byte value; a delete is 0.
func u64Value(w pending) (uint64, error) {
	if w.del {
		return 0, nil
	}
	if len(w.val) != 8 {
		return 0, fmt.Errorf("want 8 bytes, have %d", len(w.val))
	}
	return binary.BigEndian.Uint64(w.val), nil
}

func (t *Txn) setU64(key string, v uint64) {
	t.u64s[key] = v
	t.dirtyU64[key] = true
}

// ID returns the component of an identifier, 0 if unknown.
func (t *Txn) ID(idkey string) (uint64, error) { return t.getU64(string(keyID(idkey))) }

// SetID files an identifier under comp; 0 removes it.
func (t *Txn) SetID(idkey string, comp uint64) { t.setU64(string(keyID(idkey)), comp) }

// Alias returns the component of a profile id, 0 if unknown.
func (t *Txn) Alias(pid string) (uint64, error) { return t.getU64(string(keyAlias(pid))) }

// SetAlias points a profile id at comp; 0 removes it.
func (t *Txn) SetAlias(pid string, comp uint64) { t.setU64(string(keyAlias(pid)), comp) }

// Profile returns the profile of comp for modification, or nil.
func (t *Txn) Profile(comp uint64) (*profile.State, error) {
	if st, ok := t.profiles[comp]; ok {
		return st, nil
	}
	var st *profile.State
	if w, ok := t.prevState(comp); ok {
		if w != nil {
			st = w.Clone()
		}
	} else if c, ok := t.s.profiles.get(comp); ok {
		st = c.st.Clone()
	} else {
		var err error
		if st, _, err = getProfile(t.kv(), comp); err != nil {
			return nil, err
		}
	}
	t.profiles[comp] = st
	return st, nil
}

// prevState returns the profile the commit in flight wrote for comp (nil
// if it deleted it), and whether it wrote one.
func (t *Txn) prevState(comp uint64) (*profile.State, bool) {
	if t.prev == nil {
		return nil, false
	}
	st, ok := t.prev.states[comp]
	return st, ok
}

// PutProfile marks a profile for writing at commit.
func (t *Txn) PutProfile(st *profile.State) {
	t.profiles[st.Comp] = st
	t.dirtyP[st.Comp] = true
}

// DeleteProfile removes a component's profile at commit.
func (t *Txn) DeleteProfile(comp uint64) {
	if st, _ := t.Profile(comp); st != nil {
		t.live--
	}
	t.profiles[comp] = nil
	t.dirtyP[comp] = true
}

// NewComp allocates a component id.
func (t *Txn) NewComp() uint64 { t.comp++; t.live++; return t.comp }

// NewCreated allocates the next creation number, which orders profiles by age.
func (t *Txn) NewCreated() uint64 { t.created++; return t.created }

// PutEdge stores a link between two identifiers, once (keyLink).
func (t *Txn) PutEdge(a, b string, ev canon.Evidence) error {
	// Room for the version, two lengths, the trust and the time's varints.
	v := make([]byte, 0, 24+len(ev.Channel)+len(ev.MessageID))
	return t.set(keyLink(a, b), appendEvidence(v, ev))
}

// DeleteEdge removes the link between two identifiers. Both keys go: a
// store of format 5 or older holds the link both ways, and the copy left
// behind would still join the two.
func (t *Txn) DeleteEdge(a, b string) error {
	if err := t.del(keyEdge(a, b)); err != nil {
		return err
	}
	return t.del(keyEdge(b, a))
}

// PutEvent files an event under the identifier it was anchored to, so a
// split can rebuild each side's profile from its own events.
func (t *Txn) PutEvent(idkey string, e *canon.Event) error {
	v, err := EncodeEvent(e)
	if err != nil {
		return err
	}
	_, _, err = t.fileEvent(idkey, v.Stored)
	return err
}

// PutEventRecord files an event like PutEvent and appends its change
// record; the event is encoded once for both. encoded is rec.Event as
// EncodeEvent encoded it, or the zero value to encode it here.
func (t *Txn) PutEventRecord(idkey string, rec *canon.EventRecord, restricted bool, encoded EncodedEvent) error {
	ev := encoded
	if ev.Stored == nil {
		var err error
		if ev, err = EncodeEvent(&rec.Event); err != nil {
			return err
		}
	}
	n, g, err := t.fileEvent(idkey, ev.Stored)
	if err != nil {
		return err
	}
	seq := t.Emit(canon.Change{Kind: canon.ChangeEvent, Event: rec, Restricted: restricted, RawProps: ev.Props})
	if t.refs == nil {
		t.refs = map[uint64]pageRef{}
	}
	t.refs[seq] = pageRef{K: idkey, N: n, G: g, size: decodedEventOverhead + len(ev.Stored)}
	return nil
}

// Refiled is an event RefileEvents moved, and the identifier key it is
// filed under now.
type Refiled struct {
	Event *canon.Event
	To    string
	seq   uint64 // its filing seq under To
	group uint64 // the seq of the group holding it (pageRef.G)
	size  int    // its size in the change window (pageRef.size)
}

// EmitRefiled appends the change record of an event RefileEvents moved,
// which refers to the event where it is filed now, like PutEventRecord's.
func (t *Txn) EmitRefiled(m Refiled, rec *canon.EventRecord) uint64 {
	seq := t.Emit(canon.Change{Kind: canon.ChangeEvent, Event: rec})
	if t.refs == nil {
		t.refs = map[uint64]pageRef{}
	}
	t.refs[seq] = pageRef{K: m.To, N: m.seq, G: m.group, size: m.size}
	return seq
}

// RefileEvents moves events filed under idkey with filing seq past
// after, the oldest of them, at most max unless the first group alone
// holds more: dest names, for each, the identifier key to file it under
// instead ("" leaves it). The stored encoding moves as it is; what stays
// is rewritten under its group's key. Each group counts against the
// transaction's room for deletes of filed events (purgeBatch), which with
// max keeps it within Badger's size limit whatever the history: when
// events past the ones it looked at are left, next is the filing seq of
// the last it looked at, to resume after (see SetRefile); 0 when none is
// left. Groups are taken whole, so next is always a group's last.
func (t *Txn) RefileEvents(idkey string, after uint64, max int, dest func(e *canon.Event) (string, error)) (moved []Refiled, next uint64, err error) {
	type filed struct {
		seq    uint64
		stored []byte
		ev     *canon.Event
	}
	type group struct {
		key    []byte
		seq    uint64
		events []filed
	}
	var all []group
	count := 0
	errEnough := errors.New("enough")
	r := t.Reader()
	prefix, seek, err := r.eventRange(idkey)
	if err != nil {
		return nil, 0, err
	}
	if from := keyEvent(idkey, after+1); after > 0 && bytes.Compare(from, seek) > 0 {
		seek = from
	}
	room := t.purgeRoom
	err = r.eachFrom(prefix, seek, func(key []byte, item item) error {
		keySeq, err := eventKeySeq(key)
		if err != nil {
			return err
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		var evs []filed
		err = eachFiled(keySeq, val, func(seq uint64, stored []byte) error {
			var e canon.Event
			if err := decodeEvent(stored, &e); err != nil {
				return fmt.Errorf("store: decode event: %w", err)
			}
			evs = append(evs, filed{seq, stored, &e})
			return nil
		})
		if err != nil {
			return err
		}
		// A group's refile rewrites or deletes its entry and files
		// each event that moves again: at most an entry per event and
		// one, and twice the group's bytes. The first group goes
		// whatever its size, so that a resumed refile always moves on.
		n, cost := 1+len(evs), deleteCost(key)+2*len(val)+(1+len(evs))*(len(key)+16)
		if len(all) > 0 && (count+len(evs) > max || room.n < n || room.bytes < cost) {
			last := all[len(all)-1]
			next = last.events[len(last.events)-1].seq
			return errEnough
		}
		// The forced first may overdraw: the room stays at 0, never below.
		room.n, room.bytes = room.n-min(room.n, n), room.bytes-min(room.bytes, cost)
		if len(evs) > 0 {
			all = append(all, group{bytes.Clone(key), keySeq, evs})
			count += len(evs)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, 0, err
	}
	t.purgeRoom = room
	var out []Refiled
	for _, g := range all {
		stay := openGroup{first: g.seq, b: []byte{eventGroupV1}}
		kept := 0
		for _, f := range g.events {
			to, err := dest(f.ev)
			if err != nil {
				return nil, 0, err
			}
			if to == "" || to == idkey {
				stay.add(f.seq, f.stored)
				kept++
				continue
			}
			seq, in, err := t.fileEvent(to, f.stored)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, Refiled{Event: f.ev, To: to, seq: seq, group: in, size: decodedEventOverhead + len(f.stored)})
		}
		switch kept {
		case len(g.events):
			// Nothing moved: the entry stays as it is.
		case 0:
			err = t.del(g.key)
		default:
			err = t.putGroup(g.key, &stay)
		}
		if err != nil {
			return nil, 0, err
		}
	}
	return out, next, nil
}

// SetRefile records that events filed under idkey past seq after are
// still to move off it (RefileEvents), those without identifiers to the
// identifier key owner; with after 0, that none is.
func (t *Txn) SetRefile(idkey string, after uint64, owner string) error {
	_, had, _, err := t.refileMark(idkey)
	if err != nil {
		return err
	}
	if after == 0 {
		if !had {
			return nil
		}
		t.refiling--
		return t.del(keyRefile(idkey))
	}
	if !had {
		t.refiling++
	}
	return t.set(keyRefile(idkey), append(u64(after), owner...))
}

// RefilePending reports whether events filed under idkey are still to move
// off it (SetRefile).
func (t *Txn) RefilePending(idkey string) (bool, error) {
	_, ok, _, err := t.refileMark(idkey)
	return ok, err
}

// refileMark reads idkey's SetRefile marker.
func (t *Txn) refileMark(idkey string) (after uint64, ok bool, owner string, err error) {
	it, err := t.kv().get(keyRefile(idkey))
	if errNotFound(err) {
		return 0, false, "", nil
	}
	if err != nil {
		return 0, false, "", err
	}
	err = it.Value(func(b []byte) error { after, owner, err = parseRefile(b); return err })
	return after, err == nil, owner, err
}

func parseRefile(b []byte) (after uint64, owner string, err error) {
	if len(b) < 8 {
		return 0, "", errors.New("store: malformed refile marker") // no identifier value in errors
	}
	return binary.BigEndian.Uint64(b), string(b[8:]), nil
}

// NextRefile returns an identifier key whose filed events are still to
// move (SetRefile), the seq they are past and where those without
// identifiers go, or "" when none is. It takes the first key after past,
// from the start again when none is, so that one value whose refile
// keeps failing does not hold back the others.
func (t *Txn) NextRefile(past string) (idkey string, after uint64, owner string, err error) {
	r := t.Reader()
	first := func(seek []byte) error {
		err := r.eachFrom([]byte{pRefile}, seek, func(key []byte, it item) error {
			idkey = string(key[1:])
			if err := it.Value(func(b []byte) (err error) { after, owner, err = parseRefile(b); return err }); err != nil {
				return err
			}
			return errStop
		})
		if errors.Is(err, errStop) {
			err = nil
		}
		return err
	}
	if past != "" {
		if err := first(append(keyRefile(past), 0)); err != nil || idkey != "" {
			return idkey, after, owner, err
		}
	}
	err = first([]byte{pRefile})
	return idkey, after, owner, err
}

// Refiling reports how many identifiers have filed events still to move
// off them (SetRefile).
func (s *Store) Refiling() int64 { return s.refiling.Load() }

// EraseEvents removes the events filed under an identifier and returns how
// many there were. A transaction deletes only as many as Store.purgeRoom
// allows (a device that reports every minute files tens of thousands a
// month, and Badger refuses a transaction past a size its memtable sets);
// the rest stay behind a marker (z) until Purge, which the writer calls
// while Purging reports any, deletes them, so a restart resumes where it
// was. Nothing reads them meanwhile: they are reached only through the
// erased identifier, and readers skip them should the value come back to
// someone before the purge ends (a quarantined value is not remembered as
// erased): the marker holds the newest event seq at the erasure, and
// Purge deletes no event filed later.
func (t *Txn) EraseEvents(idkey string) (int, error) {
	if err := t.sealEventsOf(idkey); err != nil {
		return 0, err
	}
	prefix := withLen(pEvent, idkey, 0)
	n, more, err := t.deleteEvents(prefix, nil, &t.purgeRoom)
	if err != nil || !more {
		return n, err
	}
	it := t.kv().iterate(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	left := 0
	for it.Rewind(); it.Valid(); it.Next() {
		left += filedCount(it.Item())
	}
	if left > 0 {
		marked, err := purgeFloor(t.kv(), idkey)
		if err != nil {
			return 0, err
		}
		if err := t.set(keyPurge(idkey), u64(t.evseq)); err != nil {
			return 0, err
		}
		if marked == 0 {
			t.purging++
		}
	}
	return n + left, nil
}

// Purging reports how many erased identifiers still have filed events
// that Purge is to delete.
func (s *Store) Purging() int64 { return s.purging.Load() }

// Purge deletes filed events of erased identifiers (see EraseEvents), as
// many as one transaction takes, and drops an identifier's marker once none
// of its erased events is left. It returns how many it deleted. Only the
// writer may call it.
func (s *Store) Purge() (int, error) {
	var deleted int
	err := s.Update(time.Now(), func(tx *Txn) error {
		deleted = 0
		it := tx.kv().iterate(badger.IteratorOptions{Prefix: []byte{pPurge}, PrefetchValues: true})
		type mark struct {
			key  []byte
			upTo uint64 // newest event seq at the erasure
		}
		var marks []mark
		for it.Rewind(); it.Valid() && len(marks) < s.purgeRoom.n; it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			if len(v) != 8 {
				it.Close()
				return errors.New("malformed purge marker") // no identifier value in errors
			}
			marks = append(marks, mark{it.Item().KeyCopy(nil), binary.BigEndian.Uint64(v)})
		}
		it.Close()
		for _, m := range marks {
			// The marker's own delete is reserved first.
			if tx.purgeRoom.n == 0 || tx.purgeRoom.bytes < deleteCost(m.key) {
				break
			}
			tx.purgeRoom.n--
			tx.purgeRoom.bytes -= deleteCost(m.key)
			idkey := string(m.key[1:])
			n, more, err := tx.deleteEvents(withLen(pEvent, idkey, 0), keyEvent(idkey, m.upTo+1), &tx.purgeRoom)
			if err != nil {
				return err
			}
			deleted += n
			if more {
				break // out of room
			}
			if err := tx.del(m.key); err != nil {
				return err
			}
			tx.purging--
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge erased events: %w", err)
	}
	return deleted, nil
}

// deleteEvents deletes filed events' keys under prefix, below stop when
// stop is not nil, while r has room for them. It returns how many events
// it deleted, and whether it stopped for lack of room with keys left.
func (t *Txn) deleteEvents(prefix, stop []byte, r *room) (n int, more bool, err error) {
	it := t.kv().iterate(badger.IteratorOptions{Prefix: prefix})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if stop != nil && bytes.Compare(k, stop) >= 0 {
			break
		}
		if r.n == 0 || deleteCost(k) > r.bytes {
			more = true
			break
		}
		r.n--
		r.bytes -= deleteCost(k)
		n += filedCount(it.Item())
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := t.del(k); err != nil {
			return 0, false, err
		}
	}
	return n, more, nil
}

// Seen reports whether a message id was already applied within the window.
func (t *Txn) Seen(ch canon.Channel, msgID string) (bool, error) {
	key := keyDedup(ch, msgID)
	if t.s.dedup.absentBytes(key) {
		return false, nil
	}
	_, err := t.kv().get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read dedup: %w", err)
	}
	return true, nil
}

// MarkSeen remembers a message id for the dedup window.
func (t *Txn) MarkSeen(ch canon.Channel, msgID string) error {
	key := keyDedup(ch, msgID)
	// Added before the commit: if it fails, the filter merely holds a
	// false positive.
	t.s.dedup.addBytes(key)
	return t.setEntry(badger.NewEntry(key, nil).WithTTL(t.s.opts.DedupTTL))
}

// SetPosition stores the next offset to consume for a partition.
func (t *Txn) SetPosition(p canon.Partition, next int64) error {
	return t.set(keyOffset(p), u64(uint64(next)))
}

// Emit appends a change record to the change log; it gets its Seq and At
// here, and a mapping its Version. Emit returns the Seq.
func (t *Txn) Emit(c canon.Change) uint64 {
	t.seq++
	c.Seq = t.seq
	c.At = t.now
	if c.Mapping != nil {
		c.Mapping.Version = c.Seq
	}
	t.changes = append(t.changes, c)
	return c.Seq
}

// Pending returns the changes emitted so far in this transaction.
func (t *Txn) Pending() []canon.Change { return t.changes }

// SetCursor stores a sink's acknowledged seq.
func (t *Txn) SetCursor(sink string, seq uint64) error {
	return t.set(keyCursor(sink), u64(seq))
}

// DeleteCursor forgets a sink.
func (t *Txn) DeleteCursor(sink string) error { return t.del(keyCursor(sink)) }

// TrimLog deletes change-log records with seq in (from, to], whole pages
// only, at most most records unless the first page alone holds more. It
// returns the highest seq deleted (from when none was). The erasures
// among them with seq past keepAfter are kept (Reader.Held), for a sink
// that has read up to keepAfter only: its destination still holds the
// erased people's rows, and an erasure is what it must not miss (see
// erasure for the records it is). heldLow and heldHigh are the lowest and
// highest seq kept, 0 when none.
func (t *Txn) TrimLog(from, to uint64, most int, keepAfter uint64) (last, heldLow, heldHigh uint64, err error) {
	it := t.kv().iterate(badger.IteratorOptions{Prefix: []byte{pLog}})
	var keys [][]byte
	var keep []canon.Change
	last, n := from, 0
	for it.Seek(keyLogPage(from+1, 0)); it.Valid(); it.Next() {
		first, end := parseLogKey(it.Item().Key())
		if end > to || (len(keys) > 0 && n+int(end-first+1) > most) {
			break
		}
		if end > keepAfter {
			err := it.Item().Value(func(b []byte) error {
				if !bytes.Contains(b, erasureMark) {
					return nil // most pages: no need to decode them
				}
				page, err := decodePage(b, first, end)
				for _, pc := range page {
					if pc.Seq > max(from, keepAfter) && erasure(&pc.Change) {
						if a := pc.Account; a != nil {
							// By reference: an account can hold a hundred
							// thousand members. Reader.Held reads it as it
							// is then.
							pc.Account = &canon.Account{ID: a.ID, Version: a.Version}
						}
						keep = append(keep, pc.Change)
					}
				}
				return err
			})
			if err != nil {
				// Sinks cannot read the page either; failing the trim
				// would fail every transaction of events with it.
				t.s.opts.Logger.Error("store: a trimmed change-log page could not be read for the erasures it may hold; a sink away now may miss them",
					"first_seq", first, "last_seq", end, "err", err)
			}
		}
		keys = append(keys, it.Item().KeyCopy(nil))
		last, n = end, n+int(end-first+1)
	}
	it.Close()
	for i := range keep {
		b, err := marshal(&keep[i])
		if err != nil {
			return from, 0, 0, fmt.Errorf("store: keep erasure %d: %w", keep[i].Seq, err)
		}
		if err := t.set(keyHeld(keep[i].Seq), b); err != nil {
			return from, 0, 0, err
		}
	}
	if len(keep) > 0 {
		heldLow, heldHigh = keep[0].Seq, keep[len(keep)-1].Seq
	}
	for _, k := range keys {
		if err := t.del(k); err != nil {
			return from, 0, 0, err
		}
	}
	return last, heldLow, heldHigh, nil
}

// erasure reports whether c, a record of a log page holding an erase
// record (the erasure's transaction), is part of what a sink needs of the
// erasure: the erase record; the removals of the erased identifiers
// (mappings to no profile, which only erasure makes), which name the rows
// filed under them; the profiles' deletions; the erase log record (the
// receipt); and accounts' versions, rewritten without the erased members
// (a sink deletes every version naming them). An erasure's records are
// all on its transaction's page. Other profiles it rewrote without the
// erased ids (their recent conflicts) are not kept.
func erasure(c *canon.Change) bool {
	switch c.Kind {
	case canon.ChangeErase, canon.ChangeAccount:
		return true
	case canon.ChangeMapping:
		return c.Mapping != nil && c.Mapping.ProfileID == ""
	case canon.ChangeDelete:
		return c.Delete != nil && c.Delete.Reason == "erased"
	case canon.ChangeLog:
		return c.Log != nil && c.Log.Type == canon.LogErase
	}
	return false
}

// erasureMark is in the JSON of every erase record of a log page (and may
// be elsewhere: a page holding it is decoded to find out).
var erasureMark = []byte(`"kind":"erase"`)

// DropHeld deletes the erasure records TrimLog kept with seq up to upTo
// (every sink has read them), as many as the transaction's room for
// deletes allows, and returns the lowest and highest seq still kept, 0
// and 0 when none is (a lowest at or below upTo: more to drop).
func (t *Txn) DropHeld(upTo uint64) (low, high uint64, err error) {
	it := t.kv().iterate(badger.IteratorOptions{Prefix: []byte{pHeld}})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) == 9 && (binary.BigEndian.Uint64(k[1:]) > upTo || t.purgeRoom.n == 0 || t.purgeRoom.bytes < deleteCost(k)) {
			low = binary.BigEndian.Uint64(k[1:])
			break
		}
		t.purgeRoom.n--
		t.purgeRoom.bytes -= deleteCost(k)
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := t.del(k); err != nil {
			return 0, 0, err
		}
	}
	if low == 0 {
		return 0, 0, nil
	}
	_, high, err = t.Reader().HeldRange()
	return low, high, err
}

// sized is a profile a commit wrote, as the cache is to hold it, with
// the bytes it costs there.
type sized struct {
	cachedProfile
	size int64
}

// flight is a commit Badger is writing.
type flight struct {
	ts   uint64
	ov   *overlay
	done chan struct{}
	err  error // set before done is closed
}

// commit encodes the transaction's overlay, counters and change records
// and hands them to Badger, once the commit before is in. It returns
// without waiting for Badger's write: Store.finish publishes it.
func (t *Txn) commit() error {
	if err := t.sealEvents(); err != nil {
		return err
	}
	written := make(map[uint64]sized, len(t.dirtyP))
	// The JSON of each profile as written, by id: its change record, when
	// it is of the same version, refers to the stored state in the log and
	// carries these bytes in memory (canon.Change.Raw).
	type encoded struct {
		comp, version uint64
		json          []byte
	}
	profJSON := make(map[string]encoded, len(t.dirtyP))
	var toEncode []*profile.State
	for comp := range t.dirtyP {
		st := t.profiles[comp]
		if st != nil {
			toEncode = append(toEncode, st)
			continue
		}
		// A profile created and absorbed in this transaction (comp past
		// the stored counter) was never stored: nothing to delete.
		if comp <= t.s.comp {
			if err := t.del(keyProfile(comp)); err != nil {
				return err
			}
		}
		written[comp] = sized{}
	}
	encs, err := encodeStates(toEncode, t.s.opts.Background)
	if err != nil {
		return err
	}
	for i, st := range toEncode {
		v, prof := encs[i].state, encs[i].prof
		if err := t.set(keyProfile(st.Comp), v); err != nil {
			return err
		}
		written[st.Comp] = sized{cachedProfile{st, prof}, stateBytes(len(v)) + int64(len(prof))}
		profJSON[st.ID] = encoded{st.Comp, st.Version, prof}
	}
	for key := range t.dirtyU64 {
		var err error
		if v := t.u64s[key]; v == 0 {
			err = t.del([]byte(key))
		} else {
			// Added before the commit: if it fails, the filter merely
			// holds a false positive.
			t.s.held.add(key)
			err = t.set([]byte(key), u64(v))
		}
		if err != nil {
			return err
		}
	}
	// The transaction's change records are stored as one page: one Badger
	// entry instead of one per record (they are a third of all entries).
	// An event's record, and a profile's of the version the transaction
	// stores, refer to the stored event or profile instead of holding a
	// second copy (see pageRef).
	sizes := make([]int, len(t.changes))
	pageBytes := 0
	if len(t.changes) > 0 {
		refs := make([]*pageRef, len(t.changes))
		for i, c := range t.changes {
			if r, ok := t.refs[c.Seq]; ok && c.Event != nil {
				refs[i] = &r
			}
			if p := c.Profile; p != nil {
				if e, ok := profJSON[p.ID]; ok && e.version == p.Version {
					// The window holds the profile decoded, about the
					// size of its JSON, besides the JSON.
					refs[i] = &pageRef{C: e.comp, V: e.version, size: len(e.json)}
					// Sinks that write the profile as JSON take these
					// bytes instead of encoding it again.
					t.changes[i].Raw = e.json
				}
			}
		}
		page := newPageWriter(t.s.last.pageRoom(len(t.changes)))
		for i := range t.changes {
			c := &t.changes[i]
			start := len(page.b)
			if err := page.add(c, refs[i]); err != nil {
				return fmt.Errorf("store: encode change: %w", err)
			}
			// The window holds the record with its payload and, for a
			// profile, its JSON; for an event, its properties' JSON.
			sizes[i] = changeOverhead + len(page.b) - start + len(c.Raw) + len(c.RawProps)
			if refs[i] != nil {
				sizes[i] += refs[i].size
			}
		}
		if err := t.set(keyLogPage(t.changes[0].Seq, t.seq), page.b); err != nil {
			return err
		}
		pageBytes = len(page.b)
	}
	for name, v := range map[string]uint64{"seq": t.seq, "comp": t.comp, "created": t.created, "evseq": t.evseq, "live": t.live} {
		if err := t.set(keyMeta(name), u64(v)); err != nil {
			return err
		}
	}
	if t.s.format < stateFormat {
		// With this build's first commit, which may write its layout.
		if err := t.set(keyMeta("format"), u64(stateFormat)); err != nil {
			return err
		}
	}
	states := make(map[uint64]*profile.State, len(written))
	for comp, w := range written {
		states[comp] = w.st
	}
	// One commit in flight at a time: the one before must be in, so that
	// this transaction's successor reads at a state Badger has.
	s := t.s
	if err := s.Wait(); err != nil {
		return err
	}
	s.seq, s.comp, s.created, s.evseq, s.format = t.seq, t.comp, t.created, t.evseq, stateFormat
	if len(t.changes) > 0 {
		s.last = txnSizes{len(t.changes), len(t.own), len(t.u64s), pageBytes}
	}
	s.liveW = t.live
	// The engine's loop arms its purge and refile timers from these; a
	// failed commit stops every later one, so counting it early is harmless.
	s.purging.Add(t.purging)
	s.refiling.Add(t.refiling)
	s.ts++
	f := &flight{ts: s.ts, ov: &overlay{writes: t.own, states: states}, done: make(chan struct{})}
	s.inflight = f
	if err := t.tx.CommitAt(f.ts, func(err error) { s.finish(f, err, t, written, sizes) }); err != nil {
		return fmt.Errorf("store: commit: %w", err) // not with a callback; kept for the API's contract
	}
	return nil
}

// finish runs once Badger has written a commit, or failed to: it makes
// the commit visible to readers (caches, snapshot, change window) in
// commit order, since the next commit waits for it before it is sent.
func (s *Store) finish(f *flight, err error, t *Txn, written map[uint64]sized, sizes []int) {
	defer close(f.done)
	if err != nil {
		// Nothing of the overlay reached the caches, so they stay right.
		f.err = fmt.Errorf("store: commit: %w", err)
		return
	}
	next := s.openSnapshot(f.ts)
	comps := make([]uint64, 0, len(written))
	for comp := range written {
		comps = append(comps, comp)
	}
	keys := make([]string, 0, len(t.dirtyU64))
	for key := range t.dirtyU64 {
		keys = append(keys, key)
	}
	s.mu.Lock()
	s.profiles.update(comps, func(comp uint64, old cachedProfile, had bool) (cachedProfile, int64, bool) {
		w := written[comp]
		switch {
		case w.st == nil:
			return cachedProfile{}, 0, false
		case !had || old.json == nil:
			// The new version's JSON is kept only for a profile that was
			// looked up since its last change: the one likely to be again.
			return cachedProfile{st: w.st}, w.size - int64(len(w.json)), true
		}
		return w.cachedProfile, w.size, true
	})
	s.ids.update(keys, func(key string, _ uint64, _ bool) (uint64, int64, bool) {
		return t.u64s[key], idEntryBytes(key), true
	})
	s.live.Store(t.live) // Profiles counts what readers can see
	old := s.publish(next)
	// The writer's next transaction reads at f.ts-1 at the lowest.
	s.discardBelow(f.ts - 1)
	s.mu.Unlock()
	old.release()
	if len(t.changes) > 0 {
		s.recent.add(t.changes, sizes)
		s.lastSeq.Store(t.seq)
		s.notifyMu.Lock()
		close(s.notify)
		s.notify = make(chan struct{})
		s.notifyMu.Unlock()
	}
}
