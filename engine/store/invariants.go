//go:build invariants

package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// This file gives the invariant checks of the identity graph (built with
// -tags invariants) a raw view of the whole state. It is not part of the
// production build.

func (r *Reader) scan(prefix byte, fn func(key, val []byte) error) error {
	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		key := it.Item().KeyCopy(nil)[1:]
		val, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	return nil
}

func decodeU64(key, val []byte) (uint64, error) {
	if len(val) != 8 {
		return 0, fmt.Errorf("store: key %q: want 8 bytes, have %d", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// splitLen splits a length-prefixed idkey off the front of a key.
func splitLen(key []byte) (string, []byte, error) {
	n, k := binary.Uvarint(key)
	if k <= 0 || uint64(len(key)-k) < n {
		return "", nil, fmt.Errorf("store: malformed length-prefixed key %q", key)
	}
	return string(key[k : k+int(n)]), key[k+int(n):], nil
}

// ScanIDs calls fn for every identifier index entry (raw, flags included).
func (r *Reader) ScanIDs(fn func(idkey string, raw uint64) error) error {
	return r.scan(pID, func(k, v []byte) error {
		u, err := decodeU64(k, v)
		if err != nil {
			return err
		}
		return fn(string(k), u)
	})
}

// ScanAliases calls fn for every profile id and its component.
func (r *Reader) ScanAliases(fn func(pid string, comp uint64) error) error {
	return r.scan(pAlias, func(k, v []byte) error {
		u, err := decodeU64(k, v)
		if err != nil {
			return err
		}
		return fn(string(k), u)
	})
}

// ScanProfiles calls fn for every stored profile.
func (r *Reader) ScanProfiles(fn func(comp uint64, st *profile.State) error) error {
	return r.scan(pProfile, func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("store: malformed profile key %q", k)
		}
		var st profile.State
		if err := canon.Decode(v, &st); err != nil {
			return err
		}
		return fn(binary.BigEndian.Uint64(k), &st)
	})
}

// ScanEdges calls fn for every stored link key: a link once, under its
// lower idkey, or both ways in a store of format 5 or older.
func (r *Reader) ScanEdges(fn func(a, b string, ev canon.Evidence) error) error {
	return r.scan(pEdge, func(k, v []byte) error {
		a, rest, err := splitLen(k)
		if err != nil {
			return err
		}
		var ev canon.Evidence
		if err := decodeEvidence(v, &ev); err != nil {
			return err
		}
		return fn(a, string(rest), ev)
	})
}

// ScanEvents calls fn for every filed event with the idkey it is filed
// under and its seq.
func (r *Reader) ScanEvents(fn func(idkey string, seq uint64, e *canon.Event) error) error {
	if r.seal != nil {
		if err := r.seal(""); err != nil {
			return err
		}
	}
	return r.scan(pEvent, func(k, v []byte) error {
		id, rest, err := splitLen(k)
		if err != nil {
			return err
		}
		if len(rest) != 8 {
			return fmt.Errorf("store: malformed event key %q", k)
		}
		return eachFiled(binary.BigEndian.Uint64(rest), v, func(seq uint64, stored []byte) error {
			var e canon.Event
			if err := decodeEvent(stored, &e); err != nil {
				return err
			}
			return fn(id, seq, &e)
		})
	})
}

// ScanPurging calls fn for every erased identifier whose filed events are
// still being deleted (see EraseEvents), with the newest seq of those.
func (r *Reader) ScanPurging(fn func(idkey string, upTo uint64) error) error {
	return r.scan(pPurge, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("store: malformed purge marker %q", k)
		}
		return fn(string(k), binary.BigEndian.Uint64(v))
	})
}

// ScanRefiles calls fn for every identifier whose filed events are still
// to move off it (Txn.SetRefile).
func (r *Reader) ScanRefiles(fn func(idkey string) error) error {
	return r.scan(pRefile, func(k, _ []byte) error { return fn(string(k)) })
}

// ScanQuarantines calls fn for every quarantine record.
func (r *Reader) ScanQuarantines(fn func(idkey string, q *Quarantine) error) error {
	return r.scan(pQuar, func(k, v []byte) error {
		var q Quarantine
		if err := json.Unmarshal(v, &q); err != nil {
			return err
		}
		return fn(string(k), &q)
	})
}

// ScanCandidates calls fn for every pending link, once per direction.
func (r *Reader) ScanCandidates(fn func(a, b string, c *Candidate) error) error {
	return r.scan(pCand, func(k, v []byte) error {
		a, rest, err := splitLen(k)
		if err != nil {
			return err
		}
		var c Candidate
		if err := json.Unmarshal(v, &c); err != nil {
			return err
		}
		return fn(a, string(rest), &c)
	})
}

func (c *cache[K, V]) entries() map[K]V {
	out := map[K]V{}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, k := range sh.lru.Keys() {
			if e, ok := sh.lru.Peek(k); ok {
				out[k] = e.v
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// CheckCache reports cached identifier entries, aliases and profiles that
// differ from what Badger holds, and caches over their byte budget. Call
// it while the writer is idle.
func (s *Store) CheckCache() error {
	var errs []error
	errs = append(errs, s.ids.check("identifier")...)
	errs = append(errs, s.profiles.check("profile")...)
	ids, profiles := s.ids.entries(), s.profiles.entries()
	err := s.db.View(func(tx *badger.Txn) error {
		for key, v := range ids {
			disk, err := getU64(kv{tx: tx}, []byte(key))
			if err != nil {
				return err
			}
			if disk != v {
				errs = append(errs, fmt.Errorf("store: cache has %q = %#x, Badger has %#x", key, v, disk))
			}
		}
		for comp, c := range profiles {
			st := c.st
			disk, _, err := getProfile(kv{tx: tx}, comp)
			if err != nil {
				return err
			}
			if disk == nil {
				errs = append(errs, fmt.Errorf("store: cache has profile of component %d, Badger has none", comp))
				continue
			}
			a, err := json.Marshal(st)
			if err != nil {
				return err
			}
			b, err := json.Marshal(disk)
			if err != nil {
				return err
			}
			if !bytes.Equal(a, b) {
				errs = append(errs, fmt.Errorf("store: cached profile of component %d differs from Badger:\ncache  %s\nbadger %s", comp, a, b))
			}
			// The cached public JSON, once there, says what the state says.
			if c.json == nil {
				continue
			}
			var pub canon.Profile
			if err := canon.Decode(c.json, &pub); err != nil {
				errs = append(errs, fmt.Errorf("store: cached JSON of component %d: %w", comp, err))
			} else if x, y := mustJSON(&pub), mustJSON(&disk.Profile); !bytes.Equal(x, y) {
				errs = append(errs, fmt.Errorf("store: cached JSON of component %d differs from Badger:\ncache  %s\nbadger %s", comp, x, y))
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mustJSON is v's JSON with sorted keys, for comparisons; an error gives
// its text, which compares unequal to any JSON.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(err.Error())
	}
	return b
}

// StoreLinksBothWays rewrites the state's links as a store of format 5 or
// older holds them, under both idkeys, and marks the state as of format 5
// (reopened, this build marks it 6 again at its first commit): tests run
// this build on such a store with it.
func (s *Store) StoreLinksBothWays(now time.Time) error {
	type link struct {
		a, b string
		v    []byte
	}
	var links []link
	err := s.View(func(r *Reader) error {
		return r.scan(pEdge, func(k, v []byte) error {
			a, rest, err := splitLen(k)
			if err != nil {
				return err
			}
			links = append(links, link{a, string(rest), v})
			return nil
		})
	})
	if err != nil {
		return err
	}
	return s.Update(now, func(tx *Txn) error {
		for _, l := range links {
			if err := tx.set(keyEdge(l.b, l.a), l.v); err != nil {
				return err
			}
		}
		return tx.set(keyMeta("format"), u64(5))
	})
}
