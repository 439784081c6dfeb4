package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// quarantineBit marks an identifier's index entry as quarantined, so the
// one read that resolves an identifier also says whether it may link.
const quarantineBit = uint64(1) << 63

// entry reads an identifier's component and quarantine flag.
func entry(tx *store.Txn, key string) (comp uint64, quarantined bool, err error) {
	v, err := tx.ID(key)
	return v &^ quarantineBit, v&quarantineBit != 0, err
}

// relabel files an identifier under another component, keeping its
// quarantine flag: a quarantined value stays quarantined when its profile
// merges or splits.
func relabel(tx *store.Txn, key string, comp uint64) error {
	v, err := tx.ID(key)
	if err != nil {
		return err
	}
	tx.SetID(key, comp|v&quarantineBit)
	return nil
}

// parkedPrefix starts the key events are parked under. Identifier keys
// start with their type, so none starts like it.
const parkedPrefix = "\x00parked\x00"

// ParkedKey is the key an event is filed under when every identifier it
// carries is quarantined (junk shared by many, which names nobody): idkey
// is the key of its highest-priority one. Parked events count for no
// profile while the value is quarantined; once an admin releases it, they
// count for the value's profile (refolds read them beside the value's own
// events, Release refolds), and its erasure erases them.
func ParkedKey(idkey string) string { return parkedPrefix + idkey }

// Comp strips the quarantine flag from an identifier's index entry.
func Comp(v uint64) uint64 { return v &^ quarantineBit }

// noteConflict counts a refused link of id into a profile; past the
// threshold of distinct profiles the value is quarantined.
func (g *Graph) noteConflict(tx *store.Txn, id canon.Identifier, refusedBy string) (bool, error) {
	q, err := g.quarantineRecord(tx, id)
	if err != nil || q.Quarantined {
		return false, err
	}
	if !slices.Contains(q.Profiles, refusedBy) {
		q.Profiles = append(q.Profiles, refusedBy)
	}
	if len(q.Profiles) >= g.quarantineAfter {
		return true, g.quarantine(tx, id, q, fmt.Sprintf("links refused in %d profiles", len(q.Profiles)))
	}
	return false, tx.PutQuarantine(id.Key(), q)
}

// noteName counts the first names seen with an email or phone; a shared
// made-up value collects many.
func (g *Graph) noteName(tx *store.Txn, id canon.Identifier, name string) (bool, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return false, nil
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:6]) // names are PII: keep a short hash only
	q, err := g.quarantineRecord(tx, id)
	if err != nil || q.Quarantined || slices.Contains(q.Names, h) {
		return false, err
	}
	q.Names = append(q.Names, h)
	if len(q.Names) > g.quarantineNames {
		return true, g.quarantine(tx, id, q, fmt.Sprintf("seen with more than %d first names", g.quarantineNames))
	}
	return false, tx.PutQuarantine(id.Key(), q)
}

func (g *Graph) quarantineRecord(tx *store.Txn, id canon.Identifier) (*store.Quarantine, error) {
	q, err := tx.Quarantine(id.Key())
	if err != nil {
		return nil, err
	}
	if q == nil {
		q = &store.Quarantine{Identifier: id}
	}
	return q, nil
}

func (g *Graph) quarantine(tx *store.Txn, id canon.Identifier, q *store.Quarantine, reason string) error {
	comp, _, err := entry(tx, id.Key())
	if err != nil {
		return err
	}
	q.Quarantined, q.Since, q.Reason = true, tx.Now(), reason
	q.Names = nil
	if err := tx.PutQuarantine(id.Key(), q); err != nil {
		return err
	}
	owner := ""
	if comp != 0 {
		tx.SetID(id.Key(), comp|quarantineBit)
		if st, err := tx.Profile(comp); err == nil && st != nil {
			owner = st.ID
		}
	}
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogQuarantine, ProfileID: owner, Others: q.Profiles, Identifier: &id, Reason: reason,
	}})
	return nil
}

// Release lifts a quarantine and forgets its counts. It reports false when
// the value was not quarantined.
//
// Events that carried no identifier but quarantined ones were filed under
// the value with no profile (parked, see the engine's applyEvent): when
// any wait, the released value's profile is refolded with them, or one is
// created for the value if it has none. It returns the components whose
// profiles changed.
func (g *Graph) Release(tx *store.Txn, id canon.Identifier) ([]uint64, bool, error) {
	q, err := tx.Quarantine(id.Key())
	if err != nil || q == nil || !q.Quarantined {
		return nil, false, err
	}
	comp, _, err := entry(tx, id.Key())
	if err != nil {
		return nil, false, err
	}
	tx.SetID(id.Key(), comp) // 0 when its profile was erased: unknown again
	if err := tx.DeleteQuarantine(id.Key()); err != nil {
		return nil, false, err
	}
	parked, err := hasEvents(tx, ParkedKey(id.Key()))
	if err != nil {
		return nil, false, err
	}
	if comp == 0 && parked {
		comp = g.create(tx, canon.Observation{Identifier: id, Trust: canon.Observed}, q.Since).Comp
	}
	owner := ""
	if st, err := tx.Profile(comp); err == nil && st != nil {
		owner = st.ID
	}
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogRelease, ProfileID: owner, Identifier: &id, Reason: "released by an admin",
	}})
	if comp == 0 || !parked {
		return nil, true, nil // nothing parked: no profile changes
	}
	touched, err := g.rebuild(tx, comp, &id, nil, true)
	return touched, true, err
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// hasEvents reports whether any event is filed under idkey.
func hasEvents(tx *store.Txn, idkey string) (bool, error) {
	found := false
	err := tx.Reader().Events(idkey, func(*canon.Event) error {
		found = true
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	return found, nil
}
