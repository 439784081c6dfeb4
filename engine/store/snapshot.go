package store

import (
	"slices"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// snapshot is a read transaction opened right after a commit and shared by
// every reader until the next commit replaces it.
//
// It reads at the newest commit Badger has written (the store picks commit
// timestamps itself), so readers never see a commit in flight, and they
// only take a reference instead of opening a transaction each.
type snapshot struct {
	tx *badger.Txn
	ts uint64 // the commit it reads at
	// commit is the number of commits it includes (Store.commits when it
	// was published): a reader fills the caches with what it read only if
	// no commit followed.
	commit uint64
	refs   atomic.Int64  // the store's own reference plus one per reader
	done   chan struct{} // closed when the last reference is released
}

// release drops a reference; the last one discards the transaction.
func (sn *snapshot) release() {
	if sn.refs.Add(-1) == 0 {
		sn.tx.Discard()
		close(sn.done)
	}
}

// acquire returns the newest snapshot with a reference the caller must
// release, or badger.ErrDBClosed once the store is closing.
func (s *Store) acquire() (*snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn := s.snap
	if sn == nil {
		return nil, badger.ErrDBClosed
	}
	sn.refs.Add(1)
	return sn, nil
}

// openSnapshot opens a read transaction at commit ts, to publish with
// publish once Badger has written that commit.
func (s *Store) openSnapshot(ts uint64) *snapshot {
	sn := &snapshot{tx: s.db.NewTransactionAt(ts, false), ts: ts, done: make(chan struct{})}
	sn.refs.Store(1)
	return sn
}

// publish makes sn the snapshot new readers take, counting a commit. The
// caller holds s.mu, so the caches it refreshed and the snapshot change
// together.
func (s *Store) publish(sn *snapshot) (old *snapshot) {
	sn.commit = s.commits.Add(1)
	old, s.snap = s.snap, sn
	s.snaps = append(s.snaps, sn)
	return old
}

// closeSnapshot stops handing out snapshots and waits for the readers of
// every snapshot still held, the last one's and older ones' (a reader that
// took a snapshot before later commits), so none reads Badger after it is
// closed.
func (s *Store) closeSnapshot() {
	s.mu.Lock()
	sn := s.snap
	s.snap = nil
	held := slices.Clone(s.snaps)
	s.mu.Unlock()
	if sn != nil {
		sn.release() // the store's own reference
	}
	for _, old := range held {
		if old.refs.Load() > 0 {
			<-old.done
		}
	}
}
