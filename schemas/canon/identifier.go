package canon

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
)

// IDType names a kind of identifier. The defaults are listed in priority
// order in DefaultIDTypes; the engine's configuration may change the order.
type IDType string

// The canonical identifier types.
const (
	UserID      IDType = "user_id"      // CIAM account
	CRMID       IDType = "crm_id"       // CRM / support-desk contact
	Email       IDType = "email"        // trimmed and lower-cased
	Phone       IDType = "phone"        // E.164
	LoyaltyID   IDType = "loyalty_id"   // loyalty card
	CardFP      IDType = "card_fp"      // payment card fingerprint
	DeviceID    IDType = "device_id"    // mobile install or smart device
	AnonymousID IDType = "anonymous_id" // web cookie / SDK anonymous id
)

// DefaultIDTypes lists the identifier types, highest priority first.
var DefaultIDTypes = []IDType{UserID, CRMID, Email, Phone, LoyaltyID, CardFP, DeviceID, AnonymousID}

// Valid reports whether t is one of the canonical identifier types.
func (t IDType) Valid() bool {
	for _, d := range DefaultIDTypes {
		if t == d {
			return true
		}
	}
	return false
}

// Identifier is one normalized identifier value.
type Identifier struct {
	Type  IDType `json:"type"`
	Value string `json:"value"`
}

// String returns "type:value". It contains the value: never log it; Identifier
// logs through LogValue instead.
func (i Identifier) String() string { return string(i.Type) + ":" + i.Value }

// Key is the identifier's storage key: type, a NUL byte, value.
func (i Identifier) Key() string { return string(i.Type) + "\x00" + i.Value }

// ParseKey is the inverse of Identifier.Key.
func ParseKey(key string) (Identifier, bool) {
	t, v, ok := strings.Cut(key, "\x00")
	return Identifier{Type: IDType(t), Value: v}, ok
}

// logKey keys the tags that stand for identifiers in logs (ShortHash), once
// SetLogKey has run; until then the tags are unkeyed hashes.
var logKey atomic.Pointer[[]byte]

// SetLogKey keys, from now on, the tags that stand for identifiers in logs
// and error messages. Without the key a tag cannot be matched by hashing
// candidate values: a phone number's space is small enough to try whole,
// and four bytes of an unkeyed hash narrow it to a few numbers. The
// process sets it from its state's secret, so tags stay comparable across
// restarts of one deployment and differ between deployments.
func SetLogKey(key []byte) {
	k := slices.Clone(key)
	logKey.Store(&k)
}

// ShortHash is a short, stable, non-reversible tag for an identifier, for
// logs and error messages that must not carry PII (keyed, see SetLogKey).
func (i Identifier) ShortHash() string {
	if k := logKey.Load(); k != nil {
		m := hmac.New(sha256.New, *k)
		m.Write([]byte("spine-log:" + i.Key()))
		return hex.EncodeToString(m.Sum(nil)[:4])
	}
	sum := sha256.Sum256([]byte("spine-log:" + i.Key()))
	return hex.EncodeToString(sum[:4])
}

// Pseudonym replaces the value with a keyed hash of it (HMAC-SHA256 with
// key), for records that outlive an erasure (an append-only log): the same
// identifier always gives the same pseudonym under one key, so records
// still correlate, but the value is gone, and without the key it cannot be
// found again by hashing candidate values (a phone number's space is small
// enough to try whole).
func (i Identifier) Pseudonym(key []byte) Identifier {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("spine-pseudonym:" + i.Key()))
	return Identifier{Type: i.Type, Value: "hmac:" + hex.EncodeToString(m.Sum(nil)[:16])}
}

// LogValue implements slog.LogValuer: the type plus a short hash, never the value.
func (i Identifier) LogValue() slog.Value {
	return slog.StringValue(string(i.Type) + "#" + i.ShortHash())
}

// Trust is how strongly a source vouches for a link between identifiers.
type Trust uint8

// Trust levels, weakest first.
const (
	Observed Trust = iota + 1 // co-occurrence on a device or cookie
	Asserted                  // typed into a form, or given to a cashier or agent
	Verified                  // verified by the CIAM
)

var trustNames = map[Trust]string{Observed: "observed", Asserted: "asserted", Verified: "verified"}

func (t Trust) String() string {
	if s, ok := trustNames[t]; ok {
		return s
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (t Trust) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Trust) UnmarshalText(b []byte) error {
	for k, v := range trustNames {
		if v == string(b) {
			*t = k
			return nil
		}
	}
	return &FieldError{Field: "trust", Rule: "must be observed, asserted or verified"}
}

// Observation is an identifier as one event carries it, with the trust the
// event gives it.
type Observation struct {
	Identifier
	Trust Trust `json:"trust"`
}
