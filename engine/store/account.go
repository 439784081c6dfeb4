package store

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Account is a B2B account: its own traits and the profile ids of its
// members (ids are resolved through aliases when read, so merges need no
// rewrite here).
type Account struct {
	ID           string                       `json:"account_id"`
	Traits       map[string]any               `json:"traits,omitempty"`
	TraitSources map[string]canon.TraitSource `json:"trait_sources,omitempty"`
	Members      []string                     `json:"members"`
}

// MaxAccountMembers bounds the member list one account record keeps.
const MaxAccountMembers = 100_000

// Account returns an account, or nil.
func (t *Txn) Account(id string) (*Account, error) {
	var a Account
	ok, err := getJSON(t.kv(), keyAccount(id), &a)
	if !ok || err != nil {
		return nil, err
	}
	return &a, nil
}

// PutAccount stores an account.
func (t *Txn) PutAccount(a *Account) error { return t.setJSON(keyAccount(a.ID), a) }

// SaveAccount stores an account and records the change for the sinks.
func (t *Txn) SaveAccount(a *Account) error {
	if err := t.PutAccount(a); err != nil {
		return err
	}
	rec := &canon.Account{ID: a.ID, Traits: a.Traits, Members: a.Members}
	rec.Version = t.Emit(canon.Change{Kind: canon.ChangeAccount, Account: rec})
	return nil
}

// Account reads an account in the snapshot, or nil.
func (r *Reader) Account(id string) (*Account, error) {
	var a Account
	ok, err := getJSON(r.tx, keyAccount(id), &a)
	if !ok || err != nil {
		return nil, err
	}
	return &a, nil
}

// Alias reads the component of a profile id in the snapshot, 0 if none.
func (r *Reader) Alias(pid string) (uint64, error) { return getU64(r.tx, keyAlias(pid)) }

// ID reads an identifier's raw index entry in the snapshot, 0 if none.
func (r *Reader) ID(idkey string) (uint64, error) { return getU64(r.tx, keyID(idkey)) }

// Secret returns the state's own random secret named name, creating it on
// first use. It keys the hashes kept of erased identifiers when no secret
// is configured.
func (s *Store) Secret(name string) ([]byte, error) {
	key := keyMeta("secret:" + name)
	var out []byte
	err := s.Update(time.Now(), func(t *Txn) error {
		item, err := t.kv().get(key)
		if err == nil {
			out, err = item.ValueCopy(nil)
			return err
		}
		if !errNotFound(err) {
			return err
		}
		out = make([]byte, 32)
		if _, err := rand.Read(out); err != nil {
			return err
		}
		return t.set(key, out)
	})
	if err != nil {
		return nil, fmt.Errorf("store: secret: %w", err)
	}
	return out, nil
}
