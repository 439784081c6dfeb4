package store

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// TestPipelinedReadsMatchModel checks what a transaction built while the
// one before is in flight reads (its own writes, the overlay, the state
// before both): random sets and deletes over a few prefixes, each
// transaction committed with UpdateAsync, compared after every write with
// a plain map by gets and by prefix iterations forwards and backwards,
// from the start and from random keys. A Wait every few transactions
// mixes in transactions built with nothing in flight.
func TestPipelinedReadsMatchModel(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			s := openStore(t, "", nil)
			r := rand.New(rand.NewPCG(seed, 7))
			model := map[string]string{}
			key := func() string {
				return fmt.Sprintf("%c%c%02d", "QY"[r.IntN(2)], 'a'+r.IntN(3), r.IntN(12))
			}
			for txn := range 40 {
				err := s.UpdateAsync(now, func(tx *Txn) error {
					for range 1 + r.IntN(8) {
						k := key()
						if r.IntN(3) == 0 {
							if err := tx.del([]byte(k)); err != nil {
								return err
							}
							delete(model, k)
						} else {
							v := fmt.Sprint(txn, "/", r.IntN(1000))
							if err := tx.set([]byte(k), []byte(v)); err != nil {
								return err
							}
							model[k] = v
						}
						if err := compareKV(tx.kv(), model, r, key); err != nil {
							return fmt.Errorf("txn %d: %w", txn, err)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if r.IntN(5) == 0 {
					if err := s.Wait(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := s.Wait(); err != nil {
				t.Fatal(err)
			}
			sn, err := s.acquire()
			if err != nil {
				t.Fatal(err)
			}
			defer sn.release()
			if err := compareKV(kv{tx: sn.tx}, model, r, key); err != nil {
				t.Fatalf("after the last commit: %v", err)
			}
		})
	}
}

// compareKV checks reads through k against model.
func compareKV(k kv, model map[string]string, r *rand.Rand, key func() string) error {
	for range 4 {
		kk := key()
		it, err := k.get([]byte(kk))
		want, ok := model[kk]
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if ok {
				return fmt.Errorf("get %s: not found, want %q", kk, want)
			}
		case err != nil:
			return err
		default:
			got, err := it.ValueCopy(nil)
			if err != nil {
				return err
			}
			if !ok || string(got) != want {
				return fmt.Errorf("get %s: %q, want %q (present %v)", kk, got, want, ok)
			}
		}
	}
	for _, prefix := range []string{"Q", "Qb", "Y", "Yc0"} {
		for _, reverse := range []bool{false, true} {
			var want []string
			for _, kk := range slices.Sorted(maps.Keys(model)) {
				if strings.HasPrefix(kk, prefix) {
					want = append(want, kk+"="+model[kk])
				}
			}
			if reverse {
				slices.Reverse(want)
			}
			it := k.iterate(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, Reverse: reverse})
			var got []string
			seek := ""
			switch {
			case r.IntN(2) == 0:
				// Within the prefix, as Badger's iterators require.
				seek = prefix + key()[len(prefix):]
				it.Seek([]byte(seek))
			case reverse && r.IntN(2) == 0:
				// Badger's reverse Rewind is a Seek to the prefix.
				it.Rewind()
				seek = prefix
			case reverse:
				it.Seek([]byte(prefix + "\xff"))
			default:
				it.Rewind()
			}
			for ; it.ValidForPrefix([]byte(prefix)); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				got = append(got, string(it.Item().Key())+"="+string(v))
			}
			it.Close()
			if seek != "" {
				want = slices.DeleteFunc(slices.Clone(want), func(kv string) bool {
					kk, _, _ := strings.Cut(kv, "=")
					if reverse {
						return kk > seek
					}
					return kk < seek
				})
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("iterate %q reverse %v from %q:\n got  %v\n want %v", prefix, reverse, seek, got, want)
			}
		}
	}
	return nil
}

// TestPipelinedTxnSeesCommitInFlight checks the writer's typed reads
// (identifier entries, profiles, dedup marks, edges, events) in a
// transaction built while the one that wrote them is in flight, and that
// readers see that commit once Wait returns.
func TestPipelinedTxnSeesCommitInFlight(t *testing.T) {
	s := openStore(t, "", nil)
	ev := canon.Evidence{Channel: canon.Web, MessageID: "m1", Time: now, Trust: canon.Observed}
	err := s.UpdateAsync(now, func(tx *Txn) error {
		c := tx.NewComp()
		tx.SetID("email\x00a@b.c", c)
		st := profile.New("prf_1", c, tx.NewCreated())
		tx.PutProfile(st)
		if err := tx.MarkSeen(canon.Web, "m1"); err != nil {
			return err
		}
		if err := tx.PutEdge("email\x00a@b.c", "phone\x00+1", ev); err != nil {
			return err
		}
		return tx.PutEvent("email\x00a@b.c", &canon.Event{Channel: canon.Web, MessageID: "m1", Kind: canon.KindPage, Time: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.inflight == nil {
		t.Fatal("UpdateAsync left no commit in flight")
	}
	err = s.UpdateAsync(now, func(tx *Txn) error {
		if tx.prev == nil {
			return errors.New("the transaction does not read through the commit in flight")
		}
		c, err := tx.ID("email\x00a@b.c")
		if err != nil || c == 0 {
			return fmt.Errorf("ID: %d, %v", c, err)
		}
		st, err := tx.Profile(c)
		if err != nil || st == nil || st.ID != "prf_1" {
			return fmt.Errorf("Profile: %v, %v", st, err)
		}
		st.Traits = map[string]any{"plan": "pro"}
		tx.PutProfile(st)
		seen, err := tx.Seen(canon.Web, "m1")
		if err != nil || !seen {
			return fmt.Errorf("Seen: %v, %v", seen, err)
		}
		links, err := tx.Reader().Links([]string{"phone\x00+1"})
		if err != nil || len(links) != 0 {
			return fmt.Errorf("Links under the higher idkey: %v, %v", links, err)
		}
		links, err = tx.Reader().Links([]string{"email\x00a@b.c", "phone\x00+1"})
		if err != nil || len(links) != 1 || links[0].A != "email\x00a@b.c" || links[0].B != "phone\x00+1" {
			return fmt.Errorf("Links: %v, %v", links, err)
		}
		n := 0
		if err := tx.Reader().Events("email\x00a@b.c", func(*canon.Event) error { n++; return nil }); err != nil || n != 1 {
			return fmt.Errorf("Events: %d, %v", n, err)
		}
		return tx.DeleteEdge("email\x00a@b.c", "phone\x00+1")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	c, err := s.LookupID("email\x00a@b.c")
	if err != nil || c == 0 {
		t.Fatalf("LookupID after Wait: %d, %v", c, err)
	}
	st, err := s.LoadProfile(c)
	if err != nil || st == nil || st.Traits["plan"] != "pro" {
		t.Fatalf("LoadProfile after Wait: %+v, %v", st, err)
	}
	err = s.View(func(r *Reader) error {
		links, err := r.Links([]string{"email\x00a@b.c"})
		if err != nil || len(links) != 0 {
			return fmt.Errorf("links after the delete: %v, %v", links, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFailedCommitFailsLaterUpdates checks that a commit Badger refuses
// after UpdateAsync returned fails the next transaction, built on it, and
// every one after, with ErrFailed, and that nothing of them is published.
func TestFailedCommitFailsLaterUpdates(t *testing.T) {
	s := openStore(t, "", nil)
	put := func(tx *Txn) error { return tx.set([]byte("Qk"), []byte("v")) }
	update(t, s, put)
	last := s.LastSeq()
	// Badger refuses writes once it is closing; the store does not know.
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	emit := func(tx *Txn) error {
		tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{Type: canon.LogMerge}})
		return put(tx)
	}
	if err := s.UpdateAsync(now, emit); err != nil {
		t.Fatalf("UpdateAsync reported the write before it was made: %v", err)
	}
	for i := range 2 {
		if err := s.Update(now, emit); !errors.Is(err, ErrFailed) {
			t.Fatalf("update %d after the failed commit: %v, want ErrFailed", i, err)
		}
	}
	if err := s.Wait(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Wait: %v, want ErrFailed", err)
	}
	if got := s.LastSeq(); got != last {
		t.Fatalf("LastSeq %d after failed commits, want %d", got, last)
	}
}

// TestScanKeepsOverlayKeyRewritten: a Scan reader keeps its iterator,
// whose Badger side holds the transaction's pending writes as they were
// when it opened. A key the commit in flight wrote, and the transaction
// rewrites after the Scan's first read of its kind, must still be read
// (from the overlay), not skipped as if Badger's side had it.
func TestScanKeepsOverlayKeyRewritten(t *testing.T) {
	s := openStore(t, "", nil)
	ev := canon.Evidence{Channel: canon.Web, MessageID: "m1", Time: now, Trust: canon.Observed}
	a, b := "email\x00a@b.c", "phone\x00+1"
	if err := s.UpdateAsync(now, func(tx *Txn) error { return tx.PutEdge(a, b, ev) }); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateAsync(now, func(tx *Txn) error {
		if tx.prev == nil {
			t.Fatal("no commit in flight")
		}
		r := tx.Scan()
		defer r.Close()
		before, err := r.Links([]string{a})
		if err != nil {
			return err
		}
		ev2 := ev
		ev2.MessageID = "m2"
		if err := tx.PutEdge(a, b, ev2); err != nil {
			return err
		}
		after, err := r.Links([]string{a})
		if err != nil {
			return err
		}
		fresh, err := tx.Reader().Links([]string{a})
		if err != nil {
			return err
		}
		if len(before) != 1 || len(fresh) != 1 {
			t.Fatalf("setup: before %v fresh %v", before, fresh)
		}
		if len(after) != 1 {
			t.Errorf("Scan reader lost the edge a->b after the transaction rewrote it: got %v", after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
}
