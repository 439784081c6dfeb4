package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

// Quarantine is what the graph knows about an identifier value that may be
// junk: the profiles its links were refused for, and the first names seen
// with it (hashed). Quarantined values stop linking and attaching.
type Quarantine struct {
	Identifier  canon.Identifier `json:"identifier"`
	Profiles    []string         `json:"profiles,omitempty"`
	Names       []string         `json:"names,omitempty"`
	Quarantined bool             `json:"quarantined"`
	Since       time.Time        `json:"since,omitzero"`
	Reason      string           `json:"reason,omitempty"`
}

// Candidate is a pending link that waits for confirmation.
type Candidate struct {
	A          canon.Identifier `json:"a"`
	B          canon.Identifier `json:"b"`
	Reason     string           `json:"reason"`
	Confidence float64          `json:"confidence"`
	Evidence   canon.Evidence   `json:"evidence"`
}

func getJSON(tx kv, key []byte, v any) (bool, error) {
	item, err := tx.get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Accounts hold group traits as ingest gave them: numbers stay exact.
	return true, item.Value(func(b []byte) error { return canon.Decode(b, v) })
}

func (t *Txn) setJSON(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode: %w", err)
	}
	return t.set(key, b)
}

// AnyErased reports whether any identifier was ever erased in this store.
// When none was, Erased is false for every hash, and a caller can skip
// computing one (a keyed hash per new identifier).
func (t *Txn) AnyErased() bool { return t.s.erased.used.Load() }

// Erased reports whether an identifier with this keyed hash was erased.
func (t *Txn) Erased(hash string) (bool, error) {
	if !t.s.erased.mayContain(hash) {
		return false, nil
	}
	_, err := t.kv().get(keyErased(hash))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Erased reports whether an identifier with this keyed hash was erased, in
// the snapshot.
func (r *Reader) Erased(hash string) (bool, error) {
	_, err := r.tx.get(keyErased(hash))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// MarkErased remembers an erased identifier by its keyed hash only.
func (t *Txn) MarkErased(hash string) error {
	// Added before the commit: if it fails, the filter merely holds a false
	// positive.
	t.s.erased.add(hash)
	return t.set(keyErased(hash), []byte(t.now.Format(time.RFC3339)))
}

// Quarantine returns an identifier's quarantine record, or nil.
func (t *Txn) Quarantine(idkey string) (*Quarantine, error) {
	var q Quarantine
	ok, err := getJSON(t.kv(), keyQuar(idkey), &q)
	if !ok || err != nil {
		return nil, err
	}
	return &q, nil
}

// PutQuarantine stores an identifier's quarantine record.
func (t *Txn) PutQuarantine(idkey string, q *Quarantine) error { return t.setJSON(keyQuar(idkey), q) }

// DeleteQuarantine forgets an identifier's quarantine record.
func (t *Txn) DeleteQuarantine(idkey string) error { return t.del(keyQuar(idkey)) }

// PutCandidate stores a pending link, both ways.
func (t *Txn) PutCandidate(c *Candidate) error {
	a, b := c.A.Key(), c.B.Key()
	if err := t.setJSON(keyCand(a, b), c); err != nil {
		return err
	}
	return t.setJSON(keyCand(b, a), c)
}

// DeleteCandidate removes a pending link.
func (t *Txn) DeleteCandidate(a, b string) error {
	if err := t.del(keyCand(a, b)); err != nil {
		return err
	}
	return t.del(keyCand(b, a))
}

// DeleteCandidates removes every pending link of an identifier.
func (t *Txn) DeleteCandidates(idkey string) error {
	cs, err := t.Reader().Candidates(idkey)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := t.DeleteCandidate(c.A.Key(), c.B.Key()); err != nil {
			return err
		}
	}
	return nil
}

// Candidates lists the pending links of an identifier.
func (r *Reader) Candidates(idkey string) ([]Candidate, error) {
	it := r.tx.iterate(badger.IteratorOptions{Prefix: withLen(pCand, idkey, 0), PrefetchValues: true})
	defer it.Close()
	var out []Candidate
	for it.Rewind(); it.Valid(); it.Next() {
		var c Candidate
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &c) }); err != nil {
			return nil, fmt.Errorf("store: decode candidate: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Quarantined lists quarantined identifiers, at most max.
func (r *Reader) Quarantined(max int) ([]Quarantine, error) {
	it := r.tx.iterate(badger.IteratorOptions{Prefix: []byte{pQuar}, PrefetchValues: true})
	defer it.Close()
	var out []Quarantine
	for it.Rewind(); it.Valid() && len(out) < max; it.Next() {
		var q Quarantine
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &q) }); err != nil {
			return nil, fmt.Errorf("store: decode quarantine: %w", err)
		}
		if q.Quarantined {
			out = append(out, q)
		}
	}
	return out, nil
}

// Profile reads a component's profile in the snapshot, or nil.
func (r *Reader) Profile(comp uint64) (*profile.State, error) {
	st, _, err := getProfile(r.tx, comp)
	return st, err
}
