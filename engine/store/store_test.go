package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

var now = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)

// openStore opens a store in dir (a new temporary one when empty) and
// closes it at cleanup.
func openStore(t *testing.T, dir string, change func(*Options)) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	o := DefaultOptions(dir)
	o.SyncWrites = false
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if change != nil {
		change(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func update(t *testing.T, s *Store, fn func(tx *Txn) error) {
	t.Helper()
	if err := s.Update(now, fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s *Store, fn func(r *Reader) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatal(err)
	}
}

// The byte count stays within the budget, shard by shard, and equals the
// sum of the entries' sizes, for a cache of one LRU and a sharded one.
func TestCacheByteBound(t *testing.T) {
	for _, tc := range []struct {
		budget int64
		shards int
	}{{4000, 1}, {16 << 20, 16}} {
		t.Run(fmt.Sprint(tc.budget), func(t *testing.T) {
			c := newCache[int, int](tc.budget, func(k int) uint64 { return hashU64(uint64(k)) })
			if len(c.shards) != tc.shards {
				t.Fatalf("%d shards, want %d", len(c.shards), tc.shards)
			}
			per := tc.budget / int64(tc.shards)
			keys := 300 * tc.shards
			r := rand.New(rand.NewPCG(1, 2))
			for i := range 20_000 {
				k, size := r.IntN(keys), int64(1+r.IntN(int(per/3)))
				switch r.IntN(10) {
				case 0:
					c.remove(k)
				case 1:
					c.grow(k, func(int) bool { return true }, i, size)
				case 2:
					ks := []int{k, r.IntN(keys), r.IntN(keys)}
					c.update(ks, func(k, old int, had bool) (int, int64, bool) { return i, size, r.IntN(4) > 0 })
				default:
					c.put(k, i, size)
				}
				checkCacheBytes(t, c, i+1)
			}
			// An entry larger than a quarter of its shard is not kept, and
			// it drops the stale value of its key.
			c.put(7, 1, 10)
			c.put(7, 2, per/4+1)
			if _, ok := c.get(7); ok {
				t.Error("an oversized entry stayed in the cache, or the stale value did")
			}
		})
	}
}

func checkCacheBytes(t *testing.T, c *cache[int, int], ops int) {
	t.Helper()
	if _, bytes := c.size(); bytes > c.budget || bytes < 0 {
		t.Fatalf("after %d operations the cache holds %d bytes, budget %d", ops, bytes, c.budget)
	}
	if errs := c.check("test"); len(errs) > 0 {
		t.Fatalf("after %d operations: %v", ops, errors.Join(errs...))
	}
}

// update applies every key's function once, with the key's current value.
func TestCacheUpdate(t *testing.T) {
	c := newCache[int, int](16<<20, func(k int) uint64 { return hashU64(uint64(k)) })
	for k := range 1000 {
		c.put(k, k, 100)
	}
	ks := make([]int, 0, 1500)
	for k := 500; k < 2000; k++ {
		ks = append(ks, k)
	}
	seen := map[int]bool{}
	c.update(ks, func(k, old int, had bool) (int, int64, bool) {
		if seen[k] {
			t.Fatalf("key %d updated twice", k)
		}
		seen[k] = true
		if had != (k < 1000) || (had && old != k) {
			t.Fatalf("key %d: old value %d, had %v", k, old, had)
		}
		return -k, 100, k%3 != 0
	})
	if len(seen) != len(ks) {
		t.Fatalf("%d keys updated, want %d", len(seen), len(ks))
	}
	for k := range 2000 {
		v, ok := c.get(k)
		switch {
		case k < 500 && (!ok || v != k):
			t.Fatalf("key %d: %d, %v; want it untouched", k, v, ok)
		case k >= 500 && k%3 == 0 && ok:
			t.Fatalf("key %d kept; want it removed", k)
		case k >= 500 && k%3 != 0 && (!ok || v != -k):
			t.Fatalf("key %d: %d, %v; want %d", k, v, ok, -k)
		}
	}
}

func TestStoreCachesStayWithinBudget(t *testing.T) {
	const budget = 32 << 10
	s := openStore(t, "", func(o *Options) { o.CacheBytes = budget })
	for i := range 200 {
		update(t, s, func(tx *Txn) error {
			for j := range 20 {
				st := profile.New(fmt.Sprint("prf_", i, "_", j), tx.NewComp(), tx.NewCreated())
				st.AddIdentifier(canon.ProfileIdentifier{Type: canon.AnonymousID, Value: fmt.Sprint("anon-", i, "-", j)})
				tx.PutProfile(st)
				tx.SetID(canon.Identifier{Type: canon.AnonymousID, Value: fmt.Sprint("anon-", i, "-", j)}.Key(), st.Comp)
				tx.SetAlias(st.ID, st.Comp)
			}
			return nil
		})
		_, ib, _, pb := s.CacheStats()
		if ib > budget/4 || pb > budget-budget/4 || ib+pb > budget {
			t.Fatalf("after %d commits the caches hold %d + %d bytes, budget %d", i+1, ib, pb, budget)
		}
	}
	if got := s.Profiles(); got != 4000 {
		t.Errorf("Profiles() = %d, want 4000", got)
	}
}

// A reader that read Badger before a commit must not put what it read
// into the cache after the commit refreshed it.
func TestFillAfterCommitIsRefused(t *testing.T) {
	s := openStore(t, "", nil)
	key := keyID(canon.Identifier{Type: canon.Email, Value: "a@x.io"}.Key())
	before := s.commits.Load()
	update(t, s, func(tx *Txn) error { tx.SetID("email\x00a@x.io", 7); return nil })
	filled := false
	s.fill(before, func() { filled = true })
	if filled {
		t.Fatal("a value read before a commit was put into the cache after it")
	}
	s.fill(s.commits.Load(), func() { filled = true })
	if !filled {
		t.Fatal("a value read after the last commit was refused")
	}
	// Evicted from the cache, the entry is read from Badger and cached.
	s.ids.remove(string(key))
	if v, err := s.LookupID("email\x00a@x.io"); err != nil || v != 7 {
		t.Fatalf("LookupID = %d, %v; want 7", v, err)
	}
	if v, ok := s.ids.get(string(key)); !ok || v != 7 {
		t.Errorf("cache after a read = %d, %v; want 7", v, ok)
	}
}

// Readers racing the writer never leave a stale value behind: once the
// writer is done, every read sees its last value.
func TestReadersNeverCacheStaleValues(t *testing.T) {
	s := openStore(t, "", func(o *Options) { o.CacheBytes = 64 << 10 })
	const keys, rounds = 8, 300
	idkey := func(k int) string { return canon.Identifier{Type: canon.DeviceID, Value: fmt.Sprint("d", k)}.Key() }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := rng.IntN(keys)
				if rng.IntN(3) == 0 {
					s.ids.remove(string(keyID(idkey(k)))) // force a read from Badger
				}
				if _, err := s.LookupID(idkey(k)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.LoadProfile(uint64(1 + k)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i <= rounds; i++ {
		update(t, s, func(tx *Txn) error {
			k := i % keys
			tx.SetID(idkey(k), uint64(i))
			st, err := tx.Profile(uint64(1 + k))
			if err != nil {
				return err
			}
			if st == nil {
				st = profile.New(fmt.Sprint("prf_", k), uint64(1+k), uint64(1+k))
			}
			st.Version = uint64(i)
			tx.PutProfile(st)
			return nil
		})
	}
	close(stop)
	wg.Wait()
	for k := range keys {
		var want uint64 // the last round that wrote key k
		for i := 1; i <= rounds; i++ {
			if i%keys == k {
				want = uint64(i)
			}
		}
		if v, err := s.LookupID(idkey(k)); err != nil || v != want {
			t.Errorf("LookupID(d%d) = %d, %v; want %d", k, v, err, want)
		}
		if st, err := s.LoadProfile(uint64(1 + k)); err != nil || st == nil || st.Version != want {
			t.Errorf("LoadProfile(%d) = %+v, %v; want version %d", 1+k, st, err, want)
		}
	}
}

// A failed transaction leaves the caches and counters as they were, even
// when it changed a cached profile in place.
func TestFailedUpdateLeavesCaches(t *testing.T) {
	s := openStore(t, "", nil)
	update(t, s, func(tx *Txn) error {
		st := profile.New("prf_a", tx.NewComp(), tx.NewCreated())
		tx.PutProfile(st)
		tx.SetID("user_id\x00u1", st.Comp)
		return nil
	})
	boom := errors.New("boom")
	err := s.Update(now, func(tx *Txn) error {
		st, err := tx.Profile(1)
		if err != nil {
			return err
		}
		st.ID = "prf_changed"
		tx.PutProfile(st)
		tx.SetID("user_id\x00u1", 99)
		tx.NewComp()
		tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{Type: canon.LogMerge}})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if st, _ := s.LoadProfile(1); st == nil || st.ID != "prf_a" {
		t.Errorf("profile after a failed update = %+v", st)
	}
	if v, _ := s.LookupID("user_id\x00u1"); v != 1 {
		t.Errorf("identifier after a failed update = %d", v)
	}
	if s.LastSeq() != 0 || s.Profiles() != 1 {
		t.Errorf("LastSeq %d, Profiles %d after a failed update", s.LastSeq(), s.Profiles())
	}
}

func TestChangeLogReadAndTrim(t *testing.T) {
	s := openStore(t, "", nil)
	changed := s.Changed()
	update(t, s, func(tx *Txn) error { return tx.SetCursor("x", 0) }) // no changes
	select {
	case <-changed:
		t.Fatal("a commit without changes woke the readers")
	default:
	}
	for i := range 10 {
		update(t, s, func(tx *Txn) error {
			for j := range 3 {
				seq := tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: canon.Identifier{Type: canon.Email, Value: fmt.Sprint(i, "-", j)}}})
				if seq != uint64(3*i+j+1) {
					return fmt.Errorf("Emit = %d, want %d", seq, 3*i+j+1)
				}
			}
			return nil
		})
	}
	select {
	case <-changed:
	default:
		t.Fatal("commits with changes did not wake the readers")
	}
	if s.LastSeq() != 30 {
		t.Fatalf("LastSeq = %d, want 30", s.LastSeq())
	}
	read := func(after uint64, max int) []canon.Change {
		t.Helper()
		var out []canon.Change
		if err := s.View(func(r *Reader) error {
			var err error
			out, err = r.Changes(after, max)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := read(5, 10)
	if len(got) != 10 || got[0].Seq != 6 || got[9].Seq != 15 || got[0].Mapping.Version != 6 || !got[0].At.Equal(now) {
		t.Fatalf("Changes(5, 10) = %d records from %d", len(got), got[0].Seq)
	}
	var last uint64
	update(t, s, func(tx *Txn) error {
		var err error
		last, _, _, err = tx.TrimLog(0, 20, 12, 20)
		return err
	})
	if last != 12 {
		t.Errorf("TrimLog(0, 20, max 12) = %d, want 12", last)
	}
	if got := read(0, 100); len(got) != 18 || got[0].Seq != 13 {
		t.Errorf("after the trim: %d records from %d, want 18 from 13", len(got), got[0].Seq)
	}
	update(t, s, func(tx *Txn) error {
		var err error
		last, _, _, err = tx.TrimLog(12, 30, 1000, 30)
		return err
	})
	if got := read(0, 100); last != 30 || len(got) != 0 {
		t.Errorf("after trimming everything: TrimLog = %d, %d records left", last, len(got))
	}
}

func TestPositionsAndCountersSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	want := map[canon.Partition]int64{
		{Topic: "spine.web", Partition: 0}:         42,
		{Topic: "spine.web", Partition: 11}:        0,
		{Topic: "spine.pos", Partition: 2}:         1 << 40,
		{Topic: "prefix.spine.ciam", Partition: 7}: 9,
	}
	s := openStore(t, dir, nil)
	update(t, s, func(tx *Txn) error {
		for p, off := range want {
			if err := tx.SetPosition(p, off); err != nil {
				return err
			}
		}
		st := profile.New("prf_x", tx.NewComp(), tx.NewCreated())
		tx.PutProfile(st)
		tx.Emit(canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "gone"}})
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	var got map[canon.Partition]int64
	if err := s.View(func(r *Reader) error {
		var err error
		got, err = r.Positions()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Positions = %v, want %v", got, want)
	}
	if s.LastSeq() != 1 || s.Profiles() != 1 || s.comp != 1 || s.created != 1 {
		t.Errorf("counters after reopen: seq %d, live %d, comp %d, created %d", s.LastSeq(), s.Profiles(), s.comp, s.created)
	}
	update(t, s, func(tx *Txn) error {
		if c := tx.NewComp(); c != 2 {
			return fmt.Errorf("NewComp after reopen = %d, want 2", c)
		}
		return nil
	})
}

func TestDedupMarkerHasTTL(t *testing.T) {
	const ttl = 90 * time.Minute
	s := openStore(t, "", func(o *Options) { o.DedupTTL = ttl })
	update(t, s, func(tx *Txn) error {
		seen, err := tx.Seen(canon.Web, "m1")
		if err != nil || seen {
			return fmt.Errorf("Seen before marking = %v, %v", seen, err)
		}
		return tx.MarkSeen(canon.Web, "m1")
	})
	update(t, s, func(tx *Txn) error {
		for _, c := range []struct {
			ch   canon.Channel
			id   string
			want bool
		}{{canon.Web, "m1", true}, {canon.Mobile, "m1", false}, {canon.Web, "m2", false}} {
			if seen, err := tx.Seen(c.ch, c.id); err != nil || seen != c.want {
				return fmt.Errorf("Seen(%s, %s) = %v, %v; want %v", c.ch, c.id, seen, err, c.want)
			}
		}
		return nil
	})
	// The marker expires with the window; Badger keeps expiry in seconds.
	err := s.db.View(func(tx *badger.Txn) error {
		item, err := tx.Get(keyDedup(canon.Web, "m1"))
		if err != nil {
			return err
		}
		exp := time.Unix(int64(item.ExpiresAt()), 0)
		if want := time.Now().Add(ttl); exp.Before(want.Add(-time.Minute)) || exp.After(want.Add(time.Minute)) {
			return fmt.Errorf("marker expires at %v, want about %v", exp, want)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestLinksAndEventsByIdentifier(t *testing.T) {
	s := openStore(t, "", nil)
	a, b, ab := "email\x00a", "email\x00b", "email\x00a\x00b" // ab must not read as a's
	ev := canon.Evidence{Channel: canon.Web, MessageID: "m1", Time: now, Trust: canon.Asserted}
	update(t, s, func(tx *Txn) error {
		if err := tx.PutEdge(b, a, ev); err != nil {
			return err
		}
		if err := tx.PutEdge(ab, b, ev); err != nil {
			return err
		}
		for i := range 3 {
			if err := tx.PutEvent(a, &canon.Event{Channel: canon.Web, MessageID: fmt.Sprint("a", i)}); err != nil {
				return err
			}
		}
		return tx.PutEvent(ab, &canon.Event{Channel: canon.Web, MessageID: "ab"})
	})
	view(t, s, func(r *Reader) error {
		links, err := r.Links([]string{a})
		if err != nil || len(links) != 1 || links[0] != (Link{A: a, B: b, Evidence: ev}) {
			return fmt.Errorf("Links(a) = %+v, %v", links, err)
		}
		// Each link is stored once, under its lower idkey.
		if under, _ := r.Links([]string{b}); len(under) != 0 {
			return fmt.Errorf("Links(b) = %+v, want none stored under b", under)
		}
		if all, _ := r.Links([]string{b, ab, a}); len(all) != 2 {
			return fmt.Errorf("Links(b, ab, a) = %+v, want both links", all)
		}
		if got, ok, err := r.Link(b, a); err != nil || !ok || got != ev {
			return fmt.Errorf("Link(b, a) = %+v, %v, %v", got, ok, err)
		}
		if _, ok, err := r.Link(a, ab); err != nil || ok {
			return fmt.Errorf("Link(a, ab) = %v, %v, want none", ok, err)
		}
		var ids []string
		if err := r.Events(a, func(e *canon.Event) error { ids = append(ids, e.MessageID); return nil }); err != nil {
			return err
		}
		if fmt.Sprint(ids) != "[a0 a1 a2]" {
			return fmt.Errorf("Events(a) = %v, want a0 a1 a2 in order", ids)
		}
		return nil
	})
	update(t, s, func(tx *Txn) error {
		if err := tx.DeleteEdge(a, b); err != nil {
			return err
		}
		if err := tx.DeleteEdge(b, ab); err != nil {
			return err
		}
		if n, err := tx.EraseEvents(a); err != nil || n != 3 {
			return fmt.Errorf("EraseEvents(a) = %d, %v", n, err)
		}
		return nil
	})
	view(t, s, func(r *Reader) error {
		if l, _ := r.Links([]string{a, b, ab}); len(l) != 0 {
			return fmt.Errorf("Links after delete = %+v", l)
		}
		n := 0
		if err := r.Events(ab, func(*canon.Event) error { n++; return nil }); err != nil || n != 1 {
			return fmt.Errorf("Events(ab) = %d, %v; want the one event", n, err)
		}
		return nil
	})
}

// TestLinksStoredBothWays reads links as a store of format 5 or older
// holds them, under both idkeys: listed once, with the copy under the
// lower idkey (the one PutEdge rewrites), and deleted whole.
func TestLinksStoredBothWays(t *testing.T) {
	s := openStore(t, "", nil)
	a, b, c := "email\x00a", "email\x00b", "email\x00c"
	old := canon.Evidence{Channel: canon.Web, MessageID: "m1", Time: now, Trust: canon.Observed}
	newer := canon.Evidence{Channel: canon.CIAM, MessageID: "m2", Time: now, Trust: canon.Verified}
	update(t, s, func(tx *Txn) error {
		for _, k := range [][]byte{keyEdge(a, b), keyEdge(b, a), keyEdge(b, c), keyEdge(c, b)} {
			if err := tx.set(k, appendEvidence(nil, old)); err != nil {
				return err
			}
		}
		return tx.PutEdge(b, a, newer) // rewrites the copy under a only
	})
	view(t, s, func(r *Reader) error {
		links, err := r.Links([]string{c, b, a})
		want := []Link{{A: b, B: c, Evidence: old}, {A: a, B: b, Evidence: newer}}
		if err != nil || !slices.Equal(links, want) {
			return fmt.Errorf("Links = %+v, %v; want %+v", links, err, want)
		}
		if got, ok, err := r.Link(b, a); err != nil || !ok || got != newer {
			return fmt.Errorf("Link(b, a) = %+v, %v, %v; want the copy under a", got, ok, err)
		}
		return nil
	})
	update(t, s, func(tx *Txn) error {
		if err := tx.DeleteEdge(a, b); err != nil {
			return err
		}
		return tx.DeleteEdge(c, b)
	})
	view(t, s, func(r *Reader) error {
		for _, k := range [][]byte{keyEdge(a, b), keyEdge(b, a), keyEdge(b, c), keyEdge(c, b)} {
			if _, err := r.tx.get(k); !errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("link key %q after the deletes: %v", k, err)
			}
		}
		return nil
	})
}

// Message ids marked before a restart are found after it, with the
// in-memory filter loaded, and new ids are answered from the filter.
func TestDedupFilterAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	update(t, s, func(tx *Txn) error {
		for i := range 500 {
			if err := tx.MarkSeen(canon.Web, fmt.Sprint("old-", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	eventually := time.Now().Add(10 * time.Second)
	for !s.dedup.ready.Load() || !s.held.ready.Load() {
		if time.Now().After(eventually) {
			t.Fatal("the message-id filter never loaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if fs := s.KeyFilters(); len(fs) != 2 || fs[0].Name != "message_ids" || !fs[0].Usable || fs[0].Keys < 500 || fs[0].Limit != 13_981_013 || !fs[1].Usable {
		t.Errorf("KeyFilters() = %+v; want both usable, the 500 stored message ids in the first", fs)
	}
	absent := 0
	update(t, s, func(tx *Txn) error {
		for i := range 500 {
			if seen, err := tx.Seen(canon.Web, fmt.Sprint("old-", i)); err != nil || !seen {
				return fmt.Errorf("old-%d after restart: seen %v, %v", i, seen, err)
			}
			if s.dedup.absentBytes(keyDedup(canon.Web, fmt.Sprint("new-", i))) {
				absent++
			}
			if seen, err := tx.Seen(canon.Web, fmt.Sprint("new-", i)); err != nil || seen {
				return fmt.Errorf("new-%d: seen %v, %v", i, seen, err)
			}
		}
		// Marked in this transaction: a second delivery in the same batch.
		if err := tx.MarkSeen(canon.Web, "new-0"); err != nil {
			return err
		}
		if seen, err := tx.Seen(canon.Web, "new-0"); err != nil || !seen {
			return fmt.Errorf("new-0 after marking: seen %v, %v", seen, err)
		}
		return nil
	})
	if absent < 490 {
		t.Errorf("the filter answered %d of 500 new ids; want nearly all", absent)
	}
}

// Identifiers filed before a restart are found after it with the filter
// loaded, and so are identifiers filed since.
func TestHeldFilterAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	update(t, s, func(tx *Txn) error {
		for i := range 300 {
			tx.SetID(fmt.Sprint("email\x00old-", i), uint64(i+1))
		}
		tx.SetAlias("prf_old", 7)
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, func(o *Options) { o.CacheBytes = 1 }) // no cache: every read is the filter's or Badger's
	deadline := time.Now().Add(10 * time.Second)
	for !s.held.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the identifier filter never loaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	update(t, s, func(tx *Txn) error {
		tx.SetID("email\x00new", 999)
		return nil
	})
	for i := range 300 {
		if c, err := s.LookupID(fmt.Sprint("email\x00old-", i)); err != nil || c != uint64(i+1) {
			t.Fatalf("old-%d after restart = %d, %v", i, c, err)
		}
	}
	if c, err := s.LookupID("email\x00new"); err != nil || c != 999 {
		t.Errorf("an identifier filed after the restart = %d, %v", c, err)
	}
	if c, err := s.LookupAlias("prf_old"); err != nil || c != 7 {
		t.Errorf("alias after restart = %d, %v", c, err)
	}
	if c, err := s.LookupID("email\x00never"); err != nil || c != 0 {
		t.Errorf("an identifier never filed = %d, %v", c, err)
	}
	if !s.held.absent(string(keyID("email\x00never"))) {
		t.Error("the filter did not answer for an identifier never filed")
	}
}

// Profiles rewritten many times leave dead versions in the value log;
// CollectGarbage reclaims them once compactions have counted them, and
// the live versions survive the rewrite.
func TestCollectGarbageReclaimsDeadValues(t *testing.T) {
	s := openStore(t, "", func(o *Options) { o.MemTableBytes = 1 << 20; o.ValueLogFileBytes = 8 << 20 })
	blob := strings.Repeat("x", 2000)
	for round := range 100 {
		update(t, s, func(tx *Txn) error {
			for i := range 200 {
				st := profile.New(fmt.Sprint("prf_", i), uint64(i+1), uint64(i+1))
				st.Traits = map[string]any{"blob": blob, "round": round}
				tx.PutProfile(st)
			}
			for j := range 1000 { // keys that fill memtables, so tables flush and compact
				tx.SetID(fmt.Sprint("anonymous_id\x00", round, "-", j), uint64(j+1))
			}
			return nil
		})
	}
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	n, err := s.CollectGarbage(0.5, 8)
	if err != nil || n == 0 {
		t.Fatalf("CollectGarbage = %d files, %v; want some rewritten", n, err)
	}
	s.profiles.remove(7) // read the live version back from Badger
	st, err := s.LoadProfile(7)
	if err != nil || st == nil || fmt.Sprint(st.Traits["round"]) != "99" {
		t.Errorf("profile after GC = %+v, %v; want round 99", st, err)
	}
}

func TestKeyFilterSize(t *testing.T) {
	for _, c := range []struct {
		bytes int64
		log2  uint
		limit uint64
	}{{0, 23, 873_813}, {1 << 20, 23, 873_813}, {16 << 20, 27, 13_981_013}, {100 << 20, 29, 55_924_053}} {
		f := newKeyFilter(keyFilterLog2Bits(c.bytes), pID)
		if got := keyFilterLog2Bits(c.bytes); got != c.log2 || f.limit != c.limit || len(f.bloom.bits)*8 != 1<<(c.log2-3) {
			t.Errorf("%d bytes: 2^%d bits, limit %d, %d bytes; want 2^%d, %d", c.bytes, got, f.limit, len(f.bloom.bits)*8, c.log2, c.limit)
		}
	}
}

// A key added again does not count toward the filter's limit (identifiers
// are re-added at every relabel), and string and byte keys hash alike.
func TestKeyFilterCountsDistinctKeys(t *testing.T) {
	f := newKeyFilter(keyFilterLog2Bits(16<<20), pID)
	f.ready.Store(true)
	for range 1000 {
		f.add("i" + "email\x00a@b.io")
	}
	if n := f.adds.Load(); n != 1 {
		t.Errorf("one key added 1000 times counts %d", n)
	}
	f.addBytes([]byte("iemail\x00c@d.io"))
	if f.absent("iemail\x00c@d.io") || f.absentBytes([]byte("iemail\x00a@b.io")) {
		t.Error("a key added as bytes is absent as a string, or the reverse")
	}
	if !f.absent("iemail\x00never@b.io") {
		t.Error("a key never added is not answered from the filter")
	}
	f.limit = 1
	if f.absent("iemail\x00never@b.io") {
		t.Error("a filter past its limit still answers")
	}
}

// TestProfileChangeCarriesItsJSON checks that a profile change in the
// in-memory window carries the profile's stored JSON, which decodes to the
// change's profile, and that a change of an older version than the one
// stored carries none (its profile is not what was written).
func TestProfileChangeCarriesItsJSON(t *testing.T) {
	s := openStore(t, "", nil)
	var comp uint64
	update(t, s, func(tx *Txn) error {
		comp = tx.NewComp()
		st := profile.New("p-1", comp, 1)
		st.Traits = map[string]any{"name": "Ann"}
		st.Version = 1
		old := st.Profile
		old.Version = 0
		tx.Emit(canon.Change{Kind: canon.ChangeProfile, Profile: &old})
		tx.PutProfile(st)
		tx.Emit(canon.Change{Kind: canon.ChangeProfile, Profile: &st.Profile})
		return nil
	})
	got, ok := s.RecentChanges(0, 10)
	if !ok || len(got) != 2 {
		t.Fatalf("RecentChanges = %d records, %v", len(got), ok)
	}
	if got[0].Raw != nil {
		t.Errorf("a change of an older version carries %s", got[0].Raw)
	}
	var p canon.Profile
	if err := json.Unmarshal(got[1].Raw, &p); err != nil {
		t.Fatalf("Raw %q: %v", got[1].Raw, err)
	}
	if p.ID != "p-1" || p.Version != 1 || p.Traits["name"] != "Ann" {
		t.Errorf("Raw decodes to %+v", p)
	}
	// Read back from Badger, the same records carry none.
	if err := s.View(func(r *Reader) error {
		stored, err := r.Changes(0, 10)
		if err != nil {
			return err
		}
		if len(stored) != 2 || stored[1].Raw != nil || stored[1].Profile.Traits["name"] != "Ann" {
			t.Errorf("stored changes: %+v", stored)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// storedProps decodes the properties of an event change read from storage,
// which carries them as JSON (canon.Change.RawProps).
func storedProps(t *testing.T, c *canon.Change) map[string]any {
	t.Helper()
	if c.Event == nil || c.Event.Props != nil {
		t.Errorf("change %d: the stored event's properties are decoded", c.Seq)
		return nil
	}
	var props map[string]any
	if err := json.Unmarshal(c.RawProps, &props); err != nil {
		t.Errorf("change %d: properties %q: %v", c.Seq, c.RawProps, err)
	}
	return props
}

// An event's change record carries its properties' JSON, from the window
// and read back from Badger alike; the one read back has them only so.
func TestEventChangeCarriesItsProperties(t *testing.T) {
	s := openStore(t, "", nil)
	ev := canon.Event{Channel: canon.Web, MessageID: "m1", Kind: canon.KindTrack, Time: now,
		Props: map[string]any{"plan": "pro", "seats": json.Number("3")}}
	update(t, s, func(tx *Txn) error {
		rec := &canon.EventRecord{Event: ev, ProfileID: "p-1", Anchor: canon.Identifier{Type: canon.Email, Value: "a@b.c"}}
		if err := tx.PutEventRecord(rec.Anchor.Key(), rec, false, EncodedEvent{}); err != nil {
			return err
		}
		bare := &canon.EventRecord{Event: canon.Event{Channel: canon.Web, MessageID: "m2", Kind: canon.KindPage, Time: now}, ProfileID: "p-1"}
		return tx.PutEventRecord(rec.Anchor.Key(), bare, false, EncodedEvent{})
	})
	got, ok := s.RecentChanges(0, 10)
	if !ok || len(got) != 2 {
		t.Fatalf("RecentChanges = %d records, %v", len(got), ok)
	}
	var props map[string]any
	if err := json.Unmarshal(got[0].RawProps, &props); err != nil || props["plan"] != "pro" || props["seats"] != 3.0 || len(props) != 2 {
		t.Errorf("RawProps %s: %v", got[0].RawProps, err)
	}
	if got[1].RawProps != nil {
		t.Errorf("an event without properties carries %s", got[1].RawProps)
	}
	if err := s.View(func(r *Reader) error {
		stored, err := r.Changes(0, 10)
		if err != nil {
			return err
		}
		// Read back, the properties stay JSON: the sinks only write them.
		if len(stored) != 2 || storedProps(t, &stored[0])["plan"] != "pro" || stored[1].RawProps != nil {
			t.Errorf("stored changes: %+v", stored)
		}
		return r.Events(canon.Identifier{Type: canon.Email, Value: "a@b.c"}.Key(), func(e *canon.Event) error {
			if e.MessageID == "m1" && e.Props["plan"] != "pro" {
				t.Errorf("filed event %+v", e)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
}

// A quarantine moves a bounded number of events in one transaction, and
// the next transaction resumes after the last it looked at, past the
// events it leaves where they are: with an entry per event, as in a busy
// identifier's history of many groups, and with groups of several events,
// which it takes whole.
func TestRefileEventsIsBounded(t *testing.T) {
	type step struct {
		after, next uint64
		moved       int
	}
	for _, tc := range []struct {
		name       string
		groupBytes int    // 0: the store's
		batches    int    // transactions of events
		perBatch   int    // events each
		stays      string // the one event with nowhere else to go
		max        int    // events a refile moves past the first group
		steps      []step // refiles, one transaction each
		moved      int    // events under the card at the end
	}{
		{"an entry per event", 1, 1, 7, "m1", 3, []step{{0, 3, 2}, {3, 6, 3}, {6, 0, 1}}, 6},
		{"groups of three", 0, 3, 3, "m4", 4, []step{{0, 3, 3}, {3, 6, 2}, {6, 0, 3}}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "", nil)
			if tc.groupBytes > 0 {
				s.groupBytes = tc.groupBytes
			}
			from, to := canon.Identifier{Type: canon.Phone, Value: "+15550100"}.Key(), canon.Identifier{Type: canon.LoyaltyID, Value: "L1"}.Key()
			for b := range tc.batches { // filing seqs from 1 on
				update(t, s, func(tx *Txn) error {
					for i := range tc.perBatch {
						if err := tx.PutEvent(from, &canon.Event{Channel: canon.POS, MessageID: fmt.Sprint("m", b*tc.perBatch+i), Kind: canon.KindOrder}); err != nil {
							return err
						}
					}
					return nil
				})
			}
			dest := func(e *canon.Event) (string, error) {
				if e.MessageID == tc.stays {
					return "", nil
				}
				return to, nil
			}
			for i, want := range tc.steps {
				update(t, s, func(tx *Txn) error {
					if i > 0 {
						key, after, owner, err := tx.NextRefile("")
						if err != nil || key != from || after != want.after || owner != "own" {
							return fmt.Errorf("NextRefile = %q, %d, %q, %v; want the phone, %d, own", key, after, owner, err, want.after)
						}
					}
					moved, next, err := tx.RefileEvents(from, want.after, tc.max, dest)
					if err != nil || len(moved) != want.moved || next != want.next || moved[0].To != to {
						return fmt.Errorf("RefileEvents(after %d, max %d) = %d moved, next %d, %v; want %d, %d", want.after, tc.max, len(moved), next, err, want.moved, want.next)
					}
					return tx.SetRefile(from, next, "own")
				})
				if n, want := s.Refiling(), int64(min(1, want.next)); n != want {
					t.Errorf("step %d: Refiling = %d, want %d", i, n, want)
				}
			}
			if got := storedIDs(t, s, from); !slices.Equal(got, []string{tc.stays}) {
				t.Errorf("left under the phone: %v", got)
			}
			if a, b := len(storedIDs(t, s, to)), storedEvents(t, s, to); a != tc.moved || b != tc.moved {
				t.Errorf("after the refiles: %d events read under the card, %d in its entries; want %d", a, b, tc.moved)
			}
			if a := storedEvents(t, s, from); a != 1 {
				t.Errorf("%d events left in the phone's entries, want 1", a)
			}
		})
	}
}

// NextRefile takes the first value after the one it is given, from the
// start again past the last, so that one failing value holds no other back.
func TestNextRefileGoesRound(t *testing.T) {
	s := openStore(t, "", nil)
	a, b := canon.Identifier{Type: canon.Phone, Value: "+15550100"}.Key(), canon.Identifier{Type: canon.Phone, Value: "+15550101"}.Key()
	update(t, s, func(tx *Txn) error {
		if err := tx.SetRefile(a, 7, ""); err != nil {
			return err
		}
		return tx.SetRefile(b, 9, "")
	})
	update(t, s, func(tx *Txn) error {
		for _, step := range []struct{ past, want string }{{"", a}, {a, b}, {b, a}} {
			key, _, _, err := tx.NextRefile(step.past)
			if err != nil || key != step.want {
				return fmt.Errorf("NextRefile(%q) = %q, %v; want %q", step.past, key, err, step.want)
			}
		}
		return nil
	})
}

// A reader keeps the snapshot it started with while the writer commits
// (the writer discards a replaced snapshot only after its last reader),
// and the next reader sees the commit.
func TestViewKeepsItsSnapshotAcrossCommits(t *testing.T) {
	s := openStore(t, "", nil)
	key := canon.Identifier{Type: canon.Email, Value: "a@x.io"}.Key()
	err := s.View(func(r *Reader) error {
		for i := range 3 {
			update(t, s, func(tx *Txn) error { tx.SetID(key, uint64(7+i)); return nil })
			if v, err := r.ID(key); err != nil || v != 0 {
				t.Fatalf("after commit %d the open snapshot reads %d, %v; want 0", i, v, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ids.remove(string(keyID(key)))
	if v, err := s.LookupID(key); err != nil || v != 9 {
		t.Fatalf("LookupID after the commits = %d, %v; want 9", v, err)
	}
	if err := s.View(func(r *Reader) error {
		if v, err := r.ID(key); err != nil || v != 9 {
			t.Errorf("a new snapshot reads %d, %v; want 9", v, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// AnyErased lets resolution skip the keyed hash of new identifiers only
// until the first erasure, and remembers that erasure across a restart.
func TestAnyErased(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	update(t, s, func(tx *Txn) error {
		if tx.AnyErased() {
			t.Error("a new store reports an erasure")
		}
		return tx.MarkErased("0123456789abcdef0123456789abcdef")
	})
	update(t, s, func(tx *Txn) error {
		if !tx.AnyErased() {
			t.Error("AnyErased is false after an erasure")
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	update(t, s, func(tx *Txn) error {
		if !tx.AnyErased() {
			t.Error("AnyErased is false after a restart")
		}
		return nil
	})
}

// After Close a read fails with an error instead of reading a discarded
// transaction.
func TestReadAfterClose(t *testing.T) {
	s := openStore(t, "", nil)
	update(t, s, func(tx *Txn) error { tx.SetID("email\x00a@x.io", 7); return nil })
	s.ids.remove(string(keyID("email\x00a@x.io")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.View(func(r *Reader) error { return nil })
	if !errors.Is(err, badger.ErrDBClosed) {
		t.Errorf("View after Close = %v; want ErrDBClosed", err)
	}
	if _, err := s.LookupID("email\x00a@x.io"); err == nil {
		t.Error("LookupID after Close succeeded")
	}
}

// TestEraseEventsPurgesAcrossTransactions: an identifier with more filed
// events than one transaction may delete loses the first purgeRoom.n of them
// with the erasure and the rest to Purge, which a restart resumes; two
// identifiers erased in one transaction share its budget; an event filed
// under the value after its erasure is not purged.
func TestEraseEventsPurgesAcrossTransactions(t *testing.T) {
	dir := t.TempDir()
	small := func(o *Options) { o.MemTableBytes = 1 << 20 }
	s := openStore(t, dir, small)
	s.groupBytes = 1 // an entry per event: the room counts entries
	a, b := "device_id\x00meter", "user_id\x00u1"
	n := 3*s.purgeRoom.n + 17
	for from := 0; from < n; from += s.purgeRoom.n {
		update(t, s, func(tx *Txn) error {
			for i := from; i < min(from+s.purgeRoom.n, n); i++ {
				if err := tx.PutEvent(a, &canon.Event{Channel: canon.IoT, MessageID: fmt.Sprint("m", i)}); err != nil {
					return err
				}
			}
			return tx.PutEvent(b, &canon.Event{Channel: canon.Web, MessageID: fmt.Sprint("w", from)})
		})
	}
	count := func(s *Store, idkey string) int { t.Helper(); return storedEvents(t, s, idkey) }
	wantB := count(s, b)
	update(t, s, func(tx *Txn) error {
		if got, err := tx.EraseEvents(a); err != nil || got != n {
			return fmt.Errorf("EraseEvents(a) = %d, %v; want %d", got, err, n)
		}
		if got, err := tx.EraseEvents(b); err != nil || got != wantB {
			return fmt.Errorf("EraseEvents(b) = %d, %v; want %d", got, err, wantB)
		}
		return nil
	})
	if got := count(s, a) + count(s, b); got != n+wantB-s.purgeRoom.n {
		t.Fatalf("%d events left after the erasure, want %d", got, n+wantB-s.purgeRoom.n)
	}
	if s.Purging() != 2 {
		t.Fatalf("Purging = %d, want 2", s.Purging())
	}
	// The first marker's delete is reserved out of the transaction's room.
	if d, err := s.Purge(); err != nil || d != s.purgeRoom.n-1 {
		t.Fatalf("Purge = %d, %v; want %d", d, err, s.purgeRoom.n-1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, small)
	s.groupBytes = 1
	if s.Purging() != 2 && s.Purging() != 1 {
		t.Fatalf("Purging after a restart = %d, want the identifiers still marked", s.Purging())
	}
	// The value comes back to someone before the purge ends: their event
	// is filed after the erasure and stays.
	update(t, s, func(tx *Txn) error {
		return tx.PutEvent(a, &canon.Event{Channel: canon.IoT, MessageID: "after"})
	})
	for i := 0; s.Purging() > 0; i++ {
		if i > 10 {
			t.Fatalf("Purging = %d after %d rounds", s.Purging(), i)
		}
		if _, err := s.Purge(); err != nil {
			t.Fatal(err)
		}
	}
	if left := count(s, a) + count(s, b); left != 1 {
		t.Errorf("%d events left after Purge, want the one filed after the erasure", left)
	}
	if d, err := s.Purge(); err != nil || d != 0 {
		t.Errorf("Purge with nothing marked = %d, %v", d, err)
	}
}

// TestEraseEventsLongIdentifier: deletes are bounded in bytes too, so an
// identifier of the longest length erases and purges within Badger's
// limits; the value coming back before the purge ends sees none of the
// erased events, and a second erasure of it is counted once.
func TestEraseEventsLongIdentifier(t *testing.T) {
	s := openStore(t, "", func(o *Options) { o.MemTableBytes = 1 << 20 })
	s.groupBytes = 1 // an entry per event: the room counts entries
	long := "email\x00" + strings.Repeat("x", canon.MaxIDLen-len("@x.io")) + "@x.io"
	const n = 2000
	file := func(from, to int, prefix string) {
		for i := from; i < to; i += 100 {
			update(t, s, func(tx *Txn) error {
				for j := i; j < min(i+100, to); j++ {
					if err := tx.PutEvent(long, &canon.Event{Channel: canon.Web, MessageID: fmt.Sprint(prefix, j)}); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	events := func() []string {
		t.Helper()
		var ids []string
		if err := s.View(func(r *Reader) error {
			return r.Events(long, func(e *canon.Event) error { ids = append(ids, e.MessageID); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	file(0, n, "old")
	erase := func(want int) {
		t.Helper()
		update(t, s, func(tx *Txn) error {
			if got, err := tx.EraseEvents(long); err != nil || got != want {
				return fmt.Errorf("EraseEvents = %d, %v; want %d", got, err, want)
			}
			return nil
		})
	}
	erase(n)
	if s.Purging() != 1 {
		t.Fatalf("Purging = %d, want 1", s.Purging())
	}
	// The value comes back to someone before the purge ends.
	file(0, 3, "new")
	if got := events(); !slices.Equal(got, []string{"new0", "new1", "new2"}) {
		t.Fatalf("Events of the new holder = %v, want only its own 3", got)
	}
	erase(storedEvents(t, s, long)) // what is left of both
	if s.Purging() != 1 {
		t.Fatalf("Purging after a second erasure = %d, want 1", s.Purging())
	}
	for i := 0; s.Purging() > 0; i++ {
		if i > n {
			t.Fatalf("Purging = %d after %d rounds", s.Purging(), i)
		}
		if _, err := s.Purge(); err != nil {
			t.Fatal(err)
		}
	}
	if got := events(); len(got) != 0 {
		t.Errorf("%d events left after the purge", len(got))
	}
}

// TestProfileJSONKeptForLookedUpProfiles: the cache keeps a profile's
// public JSON once it is looked up, carries it over the profile's next
// commits, and spends nothing on profiles nobody looks up.
func TestProfileJSONKeptForLookedUpProfiles(t *testing.T) {
	s := openStore(t, "", nil)
	var a, b uint64
	update(t, s, func(tx *Txn) error {
		sa, sb := profile.New("prf_a", tx.NewComp(), tx.NewCreated()), profile.New("prf_b", tx.NewComp(), tx.NewCreated())
		a, b = sa.Comp, sb.Comp
		tx.PutProfile(sa)
		tx.PutProfile(sb)
		return nil
	})
	cachedJSON := func(comp uint64) []byte {
		c, ok := s.profiles.peek(comp)
		if !ok {
			t.Fatalf("profile %d is not cached", comp)
		}
		return c.json
	}
	if cachedJSON(a) != nil || cachedJSON(b) != nil {
		t.Fatal("JSON cached for profiles nobody looked up")
	}
	got, err := s.LoadProfileJSON(a)
	if err != nil || !bytes.Equal(got, cachedJSON(a)) || !strings.Contains(string(got), `"prf_a"`) {
		t.Fatalf("LoadProfileJSON = %s, %v; cached %s", got, err, cachedJSON(a))
	}
	update(t, s, func(tx *Txn) error {
		for _, comp := range []uint64{a, b} {
			st, err := tx.Profile(comp)
			if err != nil {
				return err
			}
			st.Traits = map[string]any{"plan": "gold"}
			tx.PutProfile(st)
		}
		return nil
	})
	if j := cachedJSON(a); !strings.Contains(string(j), `"gold"`) {
		t.Errorf("looked-up profile after its next commit: cached JSON %s, want the new version's", j)
	}
	if cachedJSON(b) != nil {
		t.Error("JSON cached for a profile nobody looked up, after its commit")
	}
}

// At its limit, a key filter holds every key it was given and answers
// "maybe" for few keys it was not: the blocked layout (one cache line per
// key) costs a little accuracy against seven probes over the whole filter.
func TestBloomFalsePositives(t *testing.T) {
	f := newKeyFilter(23, pID)
	keys := make([]string, f.limit)
	for i := range keys {
		keys[i] = fmt.Sprint("i\x00email\x00held-", i)
		f.add(keys[i])
	}
	f.ready.Store(true)
	for _, k := range keys {
		if f.absent(k) {
			t.Fatalf("%q was added but the filter says it is absent", k)
		}
	}
	const asked = 500_000
	maybe := 0
	for i := range asked {
		if !f.absent(fmt.Sprint("i\x00email\x00other-", i)) {
			maybe++
		}
	}
	rate := float64(maybe) / asked
	t.Logf("false positives at %d keys in 2^23 bits: %.3f %%", f.limit, 100*rate)
	if rate > 0.02 {
		t.Errorf("false-positive rate %.3f %%, want under 2 %%", 100*rate)
	}
}

// DiskUsage counts each file by its kind, at its allocated size.
func TestDiskUsageByKind(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"000001.sst": 10_000, "000002.sst": 5000, "000001.vlog": 20_000, "00003.mem": 7000, "MANIFEST": 100} {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := DiskUsage(dir)
	// Allocated sizes round up to the file system's blocks.
	for _, c := range []struct {
		what       string
		got, least int64
	}{{"tables", d.LSM, 15_000}, {"value log", d.VLog, 20_000}, {"WAL", d.WAL, 7000}, {"other", d.Other, 100}} {
		if c.got < c.least || c.got > c.least+3*8192 {
			t.Errorf("%s: %d bytes, want about %d", c.what, c.got, c.least)
		}
	}
	if d.Total() != d.LSM+d.VLog+d.WAL+d.Other {
		t.Errorf("Total() = %d, not the sum of %+v", d.Total(), d)
	}
	if got := DiskUsage(filepath.Join(dir, "missing")); got != (Disk{}) {
		t.Errorf("a missing directory: %+v, want nothing", got)
	}
}

// With a key, nothing the store writes holds an identifier or a profile in
// clear: not the tables, the value log nor the write-ahead log. The same
// key reads the state back; another key cannot open it.
func TestEncryptionAtRest(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	open := func(k []byte) (*Store, error) {
		o := DefaultOptions(dir)
		o.SyncWrites = true
		o.EncryptionKey = k
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		return Open(o)
	}
	const marker = "plaintext-marker@shop.io"
	idkey := canon.Identifier{Type: canon.Email, Value: marker}.Key()
	s, err := open(key)
	if err != nil {
		t.Fatal(err)
	}
	var comp uint64
	err = s.Update(now, func(tx *Txn) error {
		st := profile.New("prf_enc", tx.NewComp(), tx.NewCreated())
		st.AddIdentifier(canon.ProfileIdentifier{Type: canon.Email, Value: marker, Trust: canon.Verified})
		tx.PutProfile(st)
		tx.SetID(idkey, st.Comp)
		comp = st.Comp
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files++
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s holds the identifier in clear", filepath.Base(path))
		}
		return nil
	})
	if files == 0 {
		t.Fatal("the store wrote no files")
	}
	if _, err := open(bytes.Repeat([]byte{8}, 32)); err == nil {
		t.Error("a store encrypted with one key opened with another")
	}
	s, err = open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.LookupID(idkey); err != nil || got != comp {
		t.Errorf("LookupID after reopening = %d, %v; want %d", got, err, comp)
	}
	if st, err := s.LoadProfile(comp); err != nil || st == nil || st.ID != "prf_enc" {
		t.Errorf("LoadProfile after reopening = %v, %v", st, err)
	}
}

// The stored log keeps one copy of each event and profile: an event's and
// a profile's records refer to what the store holds anyway, and a reader
// of the log gets them whole while they stand, and Superseded once a
// newer version replaced the profile or the event was erased or moved.
func TestStoredLogRefersToEventsAndProfiles(t *testing.T) {
	s := openStore(t, "", nil)
	ann, ben := canon.Identifier{Type: canon.Email, Value: "ann@x.io"}, canon.Identifier{Type: canon.Email, Value: "ben@x.io"}
	uben := canon.Identifier{Type: canon.UserID, Value: "u-ben"}
	ev := func(msg string, anchor canon.Identifier) *canon.EventRecord {
		return &canon.EventRecord{Event: canon.Event{Channel: canon.Web, MessageID: msg, Kind: canon.KindTrack, Time: now,
			Props: map[string]any{"secret": "s-" + msg}}, ProfileID: "p-1", Anchor: anchor}
	}
	var st *profile.State
	update(t, s, func(tx *Txn) error {
		st = profile.New("p-1", tx.NewComp(), 1)
		st.Traits = map[string]any{"name": "Ann"}
		st.Version = 1
		tx.PutProfile(st)
		tx.Emit(canon.Change{Kind: canon.ChangeProfile, Profile: &st.Profile})
		if err := tx.PutEventRecord(ann.Key(), ev("m1", ann), false, EncodedEvent{}); err != nil {
			return err
		}
		if err := tx.PutEventRecord(ben.Key(), ev("m2", ben), false, EncodedEvent{}); err != nil {
			return err
		}
		return tx.PutEventRecord(ben.Key(), ev("m3", ben), false, EncodedEvent{})
	})
	stored := func() []canon.Change {
		t.Helper()
		var out []canon.Change
		if err := s.View(func(r *Reader) error {
			var err error
			out, err = r.Changes(0, 100)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := stored()
	if len(got) != 4 || got[0].Profile == nil || got[0].Profile.Traits["name"] != "Ann" || got[0].Superseded {
		t.Fatalf("stored changes: %+v", got)
	}
	for i, msg := range []string{"m1", "m2", "m3"} {
		e := got[i+1].Event
		if got[i+1].Superseded || e == nil || e.MessageID != msg || storedProps(t, &got[i+1])["secret"] != "s-"+msg || e.ProfileID != "p-1" || e.Time.IsZero() {
			t.Errorf("stored event change %d: %+v", i, got[i+1])
		}
	}
	// One copy: the log's page holds no event's properties.
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pLog}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if bytes.Contains(v, []byte("s-m1")) || bytes.Contains(v, []byte(`"Ann"`)) {
				t.Errorf("the stored log holds a second copy: %s", v)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A newer profile version, Ann's event erased, one of Ben's moved
	// out of the group it shares with the other.
	update(t, s, func(tx *Txn) error {
		st.Version = 2
		tx.PutProfile(st)
		tx.Emit(canon.Change{Kind: canon.ChangeProfile, Profile: &st.Profile})
		if _, err := tx.EraseEvents(ann.Key()); err != nil {
			return err
		}
		moved, _, err := tx.RefileEvents(ben.Key(), 0, 1, func(e *canon.Event) (string, error) {
			if e.MessageID == "m3" {
				return "", nil
			}
			return uben.Key(), nil
		})
		if err != nil || len(moved) != 1 {
			return fmt.Errorf("RefileEvents = %v, %v", moved, err)
		}
		tx.EmitRefiled(moved[0], &canon.EventRecord{Event: *moved[0].Event, ProfileID: "p-1", Anchor: uben, Refiled: true})
		return nil
	})
	got = stored()
	if len(got) != 6 {
		t.Fatalf("stored changes after: %d, want 6", len(got))
	}
	if r := got[5]; r.Superseded || r.Event == nil || r.Event.MessageID != "m2" || storedProps(t, &r)["secret"] != "s-m2" || r.Event.Anchor != uben {
		t.Errorf("the refiled event's record: %+v", r)
	}
	// Ben's new identifier erased: the refiled record goes too.
	update(t, s, func(tx *Txn) error { _, err := tx.EraseEvents(uben.Key()); return err })
	if got = stored(); len(got) != 6 || !got[5].Superseded || got[5].Event != nil {
		t.Errorf("the refiled event's record after its erasure: %+v", got[5])
	}
	for i, want := range []bool{true, true, true, false, false} {
		c := got[i]
		if c.Superseded != want || (want && (c.Event != nil || c.Profile != nil)) {
			t.Errorf("change %d (%s): superseded %v, want %v: %+v", c.Seq, c.Kind, c.Superseded, want, c)
		}
	}
	if got[3].Event == nil || got[3].Event.MessageID != "m3" || got[4].Profile == nil || got[4].Profile.Version != 2 {
		t.Errorf("the standing records: %+v, %+v", got[3].Event, got[4].Profile)
	}
}

// An erased identifier's events that wait for Purge are still stored; the
// log's records of them come back Superseded all the same.
func TestStoredLogSkipsEventsAwaitingPurge(t *testing.T) {
	s := openStore(t, "", func(o *Options) { o.MemTableBytes = 1 << 20 })
	s.groupBytes = 1 // an entry per event: the room counts entries
	meter := canon.Identifier{Type: canon.DeviceID, Value: "meter"}
	n := s.purgeRoom.n + 5
	for from := 0; from < n; from += s.purgeRoom.n {
		update(t, s, func(tx *Txn) error {
			for i := from; i < min(from+s.purgeRoom.n, n); i++ {
				rec := &canon.EventRecord{Event: canon.Event{Channel: canon.IoT, MessageID: fmt.Sprint("m", i), Time: now}, ProfileID: "p-1", Anchor: meter}
				if err := tx.PutEventRecord(meter.Key(), rec, false, EncodedEvent{}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	update(t, s, func(tx *Txn) error { _, err := tx.EraseEvents(meter.Key()); return err })
	if left := storedEvents(t, s, meter.Key()); s.Purging() != 1 || left == 0 {
		t.Fatalf("setup: purging %d, %d events await it", s.Purging(), left)
	}
	if err := s.View(func(r *Reader) error {
		got, err := r.Changes(0, n+1)
		if err != nil {
			return err
		}
		if len(got) != n {
			t.Fatalf("%d stored changes, want %d", len(got), n)
		}
		for _, c := range got {
			if !c.Superseded || c.Event != nil {
				t.Fatalf("change %d of an erased event: %+v", c.Seq, c)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The value comes back to someone before the purge ends: the record
	// of their event, filed after the erasure, stands.
	update(t, s, func(tx *Txn) error {
		rec := &canon.EventRecord{Event: canon.Event{Channel: canon.IoT, MessageID: "after", Time: now}, ProfileID: "p-2", Anchor: meter}
		return tx.PutEventRecord(meter.Key(), rec, false, EncodedEvent{})
	})
	if err := s.View(func(r *Reader) error {
		got, err := r.Changes(uint64(n), 10)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Superseded || got[0].Event == nil || got[0].Event.MessageID != "after" {
			t.Errorf("the record of the event filed after the erasure: %+v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Pages written before records referred to their payload hold whole
// records, in an array or one per key; they read back as they were.
func TestStoredLogReadsWholeRecords(t *testing.T) {
	s := openStore(t, "", nil)
	p := canon.Profile{ID: "p-1", Version: 1, Traits: map[string]any{"name": "Ann"}}
	rec := &canon.EventRecord{Event: canon.Event{Channel: canon.Web, MessageID: "m1", Time: now, Props: map[string]any{"k": "v"}}, ProfileID: "p-1"}
	var page []byte
	page = append(page, '[')
	page, _ = appendChange(page, canon.Change{Seq: 1, Kind: canon.ChangeProfile, At: now, Profile: &p}, nil)
	page = append(page, ',')
	page, _ = appendChange(page, canon.Change{Seq: 2, Kind: canon.ChangeEvent, At: now, Event: rec}, nil)
	page = append(page, ']')
	single, _ := appendChange(nil, canon.Change{Seq: 3, Kind: canon.ChangeEvent, At: now, Event: rec}, nil)
	r := writeRaw(t, s, map[string][]byte{string(keyLogPage(1, 2)): page, string(keyLogPage(3, 3)): single})
	got, err := r.Changes(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Profile == nil || got[0].Profile.Traits["name"] != "Ann" || got[1].Event == nil || got[1].Event.Props["k"] != "v" ||
		got[2].Event == nil || got[2].Event.MessageID != "m1" || got[1].Superseded || got[2].Superseded {
		t.Errorf("whole records read back as %+v", got)
	}
}

// writeRaw commits kvs to s's Badger as they are, as an earlier build
// wrote them, and returns a reader of the result.
func writeRaw(t *testing.T, s *Store, kvs map[string][]byte) *Reader {
	t.Helper()
	wtx := s.db.NewTransactionAt(s.ts, true)
	for k, v := range kvs {
		if err := wtx.Set([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	s.ts++
	if err := wtx.CommitAt(s.ts, nil); err != nil {
		t.Fatal(err)
	}
	return &Reader{tx: kv{tx: s.db.NewTransactionAt(s.ts, false)}}
}

// A store of format 2 filed events as JSON and wrote JSON pages whose
// records refer to them: this build reads them, payload resolved.
func TestStoredLogReadsFormat2(t *testing.T) {
	s := openStore(t, "", nil)
	ann := canon.Identifier{Type: canon.Email, Value: "ann@shop.io"}
	ev := canon.Event{Channel: canon.Web, MessageID: "m1", Kind: canon.KindTrack, Time: now,
		Identifiers: []canon.Observation{{Identifier: ann, Trust: canon.Asserted}}, Props: map[string]any{"k": "v"}}
	props, err := marshal(ev.Props)
	if err != nil {
		t.Fatal(err)
	}
	rec := &canon.EventRecord{Event: ev, ProfileID: "p-1", Anchor: ann}
	page, err := appendChange([]byte{'['}, canon.Change{Seq: 1, Kind: canon.ChangeEvent, At: now, Event: rec}, &pageRef{K: ann.Key(), N: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := writeRaw(t, s, map[string][]byte{
		string(keyEvent(ann.Key(), 1)): appendEvent(nil, &ev, props, nil, nil),
		string(keyLogPage(1, 1)):       append(page, ']'),
	})
	got, err := r.Changes(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Event == nil || got[0].Superseded || got[0].Event.MessageID != "m1" || got[0].Event.Props["k"] != "v" ||
		got[0].Event.Anchor != ann || got[0].Event.ProfileID != "p-1" || !got[0].Event.Time.Equal(now) {
		t.Errorf("a format-2 record reads back as %+v", got)
	}
	var n int
	if err := r.Events(ann.Key(), func(e *canon.Event) error {
		n++
		if e.MessageID != "m1" || len(e.Identifiers) != 1 {
			t.Errorf("a JSON event reads back as %+v", e)
		}
		return nil
	}); err != nil || n != 1 {
		t.Errorf("%d JSON events read, %v", n, err)
	}
}

// A trim keeps the erasures (erase records and identifier removals) a sink
// that read up to keepAfter has not seen, and DropHeld lets them go once
// every sink has.
func TestTrimKeepsErasures(t *testing.T) {
	s := openStore(t, "", nil)
	// Pages of four, seq 4i+1 .. 4i+4: a mapping, then an erasure (the
	// removal of an identifier, the erase record and the deletion).
	for i := range 10 {
		update(t, s, func(tx *Txn) error {
			tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: canon.Identifier{Type: canon.Email, Value: fmt.Sprint("kept-", i)}, ProfileID: "p-1"}})
			tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: canon.Identifier{Type: canon.Email, Value: fmt.Sprint(i)}}})
			tx.Emit(canon.Change{Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: []string{fmt.Sprint("p-", i)}, Hashes: []string{"h"}}})
			tx.Emit(canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: fmt.Sprint("p-", i), Reason: "erased"}})
			return nil
		})
	}
	held := func(after uint64) []uint64 {
		t.Helper()
		var seqs []uint64
		if err := s.View(func(r *Reader) error {
			out, err := r.Held(after, 100)
			for _, c := range out {
				switch {
				case c.Seq%4 == 2 && c.Mapping != nil && c.Mapping.Identifier.Value == fmt.Sprint(c.Seq/4):
				case c.Seq%4 == 3 && c.Erase != nil && len(c.Erase.ProfileIDs) == 1:
				case c.Seq%4 == 0 && c.Delete != nil:
				default:
					return fmt.Errorf("kept record %d is %+v", c.Seq, c)
				}
				seqs = append(seqs, c.Seq)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	var low, high uint64
	update(t, s, func(tx *Txn) error {
		// A sink read up to 6: the erasures of the pages from 5 on are
		// kept, but for what it read (removal 6).
		var err error
		_, low, high, err = tx.TrimLog(0, 20, 1000, 6)
		return err
	})
	if got := held(0); !slices.Equal(got, []uint64{7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20}) || low != 7 || high != 20 {
		t.Fatalf("after a trim to 20 for a sink at 6: kept %v (%d..%d), want [7 8 10 11 12 14 15 16 18 19 20]", got, low, high)
	}
	if got := held(10); !slices.Equal(got, []uint64{11, 12, 14, 15, 16, 18, 19, 20}) {
		t.Errorf("Held(10) = %v, want [11 12 14 15 16 18 19 20]", got)
	}
	update(t, s, func(tx *Txn) error {
		// Every sink read the trimmed part: nothing more is kept.
		_, low, high, err := tx.TrimLog(20, 28, 1000, 28)
		if low != 0 || high != 0 {
			return fmt.Errorf("trim for sinks that read it all kept %d..%d", low, high)
		}
		return err
	})
	update(t, s, func(tx *Txn) error {
		var err error
		low, high, err = tx.DropHeld(14)
		return err
	})
	if got := held(0); !slices.Equal(got, []uint64{15, 16, 18, 19, 20}) || low != 15 || high != 20 {
		t.Fatalf("after DropHeld(14): kept %v (%d..%d), want [15 16 18 19 20]", got, low, high)
	}
	if err := s.View(func(r *Reader) error {
		l, h, err := r.HeldRange()
		if l != 15 || h != 20 {
			return fmt.Errorf("HeldRange = %d, %d, want 15, 20", l, h)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Txn) error {
		var err error
		low, high, err = tx.DropHeld(40)
		return err
	})
	if got := held(0); len(got) != 0 || low != 0 || high != 0 {
		t.Fatalf("after DropHeld(30): kept %v (%d..%d)", got, low, high)
	}
}

// A state records its format with its first commit, and a build that does
// not know the recorded format refuses to open it instead of misreading
// its pages.
func TestStateFormatIsChecked(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	format := func() uint64 {
		t.Helper()
		var v uint64
		if err := s.View(func(r *Reader) error {
			var err error
			v, err = getU64(r.tx, keyMeta("format"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if f := format(); f != 0 {
		t.Fatalf("format %d before any commit", f)
	}
	update(t, s, func(tx *Txn) error { return tx.SetCursor("x", 0) })
	if f := format(); f != stateFormat {
		t.Fatalf("format %d after a commit, want %d", f, stateFormat)
	}
	update(t, s, func(tx *Txn) error { return tx.set(keyMeta("format"), u64(stateFormat+1)) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions(dir)
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if s, err := Open(o); err == nil || !strings.Contains(err.Error(), "newer Spine") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("opening a state of a newer format: %v", err)
	}
}

// An account's record kept with an erasure is kept by reference, and read
// back as the account is then; gone, it reads as superseded.
func TestKeptAccountIsReadAsItIs(t *testing.T) {
	s := openStore(t, "", nil)
	update(t, s, func(tx *Txn) error {
		if err := tx.SaveAccount(&Account{ID: "acct-1", Members: []string{"p-1", "p-2"}}); err != nil {
			return err
		}
		tx.Emit(canon.Change{Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: []string{"p-2"}, Hashes: []string{"h"}}})
		return tx.SaveAccount(&Account{ID: "acct-1", Members: []string{"p-1"}})
	})
	var high uint64
	update(t, s, func(tx *Txn) error {
		var err error
		_, _, high, err = tx.TrimLog(0, s.LastSeq(), 1000, 0)
		return err
	})
	if high != 3 {
		t.Fatalf("kept up to %d, want the page's three records", high)
	}
	var raw []byte
	if err := s.View(func(r *Reader) (err error) {
		it, err := r.tx.get(keyHeld(3))
		if err == nil {
			raw, err = it.ValueCopy(nil)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("p-1")) {
		t.Errorf("the kept account record holds its members: %s", raw)
	}
	held := func() []canon.Change {
		t.Helper()
		var out []canon.Change
		if err := s.View(func(r *Reader) (err error) { out, err = r.Held(0, 10); return err }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	update(t, s, func(tx *Txn) error { return tx.PutAccount(&Account{ID: "acct-1", Members: []string{"p-1", "p-3"}}) })
	got := held()
	if len(got) != 3 || got[2].Account == nil || !slices.Equal(got[2].Account.Members, []string{"p-1", "p-3"}) || got[2].Account.Version != 3 {
		t.Fatalf("kept records %+v, want the account as it is now at version 3", got)
	}
	update(t, s, func(tx *Txn) error { return tx.del(keyAccount("acct-1")) })
	if got := held(); !got[2].Superseded || got[2].Account != nil {
		t.Errorf("a kept record of an account gone = %+v, want superseded", got[2])
	}
}

// TestCloseWaitsForOlderSnapshots: Close waits for a reader that still
// reads a snapshot later commits replaced, and the reader finishes its
// read on an open database.
func TestCloseWaitsForOlderSnapshots(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	opts.SyncWrites = false
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(now, func(tx *Txn) error {
		for range 200 {
			tx.PutProfile(profile.New("prf_x", tx.NewComp(), tx.NewCreated()))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	inView, goOn := make(chan struct{}), make(chan struct{})
	viewed := make(chan error, 1)
	profiles := 0
	go func() {
		viewed <- s.View(func(r *Reader) error {
			close(inView)
			<-goOn
			return r.EachProfile(func(*profile.State) error { profiles++; return nil })
		})
	}()
	<-inView
	// A commit replaces the snapshot the reader holds.
	if err := s.Update(now, func(tx *Txn) error { tx.SetID("email\x00a@b.io", 1); return nil }); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a reader still held an older snapshot", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(goOn)
	if err := <-viewed; err != nil || profiles != 200 {
		t.Errorf("the reader's view = %v with %d profiles, want nil and 200", err, profiles)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
}

// TestStoredTraitNumbersReadBack checks that a profile whose traits hold
// numbers a float64 cannot (out of its range, or finer than it) reads back
// from Badger as it was written, once no cache holds it.
func TestStoredTraitNumbersReadBack(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	traits := map[string]any{"huge": json.Number("1e400"), "fine": json.Number("0.10000000000000000001"), "n": json.Number("36")}
	var comp uint64
	update(t, s, func(tx *Txn) error {
		st := profile.New("prf_n", tx.NewComp(), tx.NewCreated())
		st.Traits = traits
		comp = st.Comp
		tx.PutProfile(st)
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	view(t, s, func(r *Reader) error {
		st, err := r.Profile(comp)
		if err != nil {
			return err
		}
		if st == nil || !reflect.DeepEqual(st.Traits, traits) {
			t.Errorf("traits read back: %+v", st)
		}
		return nil
	})
}

// TestStoredAccountNumbersReadBack checks the same for an account's group
// traits: accounts are read from Badger on every group event, so one that
// did not read back would fail each later event of its account.
func TestStoredAccountNumbersReadBack(t *testing.T) {
	s := openStore(t, "", nil)
	traits := map[string]any{"employees": json.Number("1e400"), "arr": json.Number("0.10000000000000000001")}
	update(t, s, func(tx *Txn) error {
		return tx.SaveAccount(&Account{ID: "acme", Traits: traits, Members: []string{"prf_1"}})
	})
	update(t, s, func(tx *Txn) error {
		a, err := tx.Account("acme")
		if err != nil {
			return err
		}
		if a == nil || !reflect.DeepEqual(a.Traits, traits) {
			t.Errorf("account read back: %+v", a)
		}
		return nil
	})
}
