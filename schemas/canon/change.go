package canon

import "time"

// ChangeKind says what a change record carries.
type ChangeKind string

// Change kinds.
const (
	ChangeEvent   ChangeKind = "event"   // an accepted event and the profile it resolved to
	ChangeProfile ChangeKind = "profile" // a profile's new version
	ChangeDelete  ChangeKind = "delete"  // a profile id is gone (absorbed or erased)
	ChangeMapping ChangeKind = "mapping" // an identifier now maps to a profile (or nothing)
	ChangeLog     ChangeKind = "log"     // an identity-log record: merge, split, conflict, ...
	ChangeErase   ChangeKind = "erase"   // a person was erased: sinks delete their rows
	ChangeAccount ChangeKind = "account" // a B2B account's new version
)

// Change is one record of the engine's change log (the outbox). The engine
// commits changes in the same transaction as the state and offsets that
// caused them; each sink tails the log with its own cursor. Seq is dense and
// increasing. Exactly one of the pointer fields is set, matching Kind.
type Change struct {
	Seq  uint64     `json:"seq"`
	Kind ChangeKind `json:"kind"`
	At   time.Time  `json:"at"` // commit time
	// Restricted is set on event and profile changes of a person whose
	// consent, under the configured analytics policy, keeps them out of
	// analytics: analytics sinks write no new rows of theirs beyond what
	// the policy allows. Operational sinks (the profile stream) ignore it.
	Restricted bool `json:"restricted,omitempty"`
	// Superseded is set on an event or profile change read back from the
	// stored log after what it carried was replaced or removed: a newer
	// version of the profile (or its deletion), an event erased or moved
	// to another identifier (which a later record carries). It has no
	// payload, and sinks skip it.
	Superseded bool `json:"superseded,omitempty"`

	Event   *EventRecord `json:"event,omitempty"`
	Profile *Profile     `json:"profile,omitempty"`
	Delete  *Deletion    `json:"delete,omitempty"`
	Mapping *Mapping     `json:"mapping,omitempty"`
	Log     *LogRecord   `json:"log,omitempty"`
	Erase   *Erasure     `json:"erase,omitempty"`
	Account *Account     `json:"account,omitempty"`

	// Raw, when set, is the JSON of Profile as the engine stored it (map
	// members in any order). Sinks that write the profile as JSON use it
	// instead of encoding Profile again; it is not part of the change's
	// own JSON, so a change read back from storage has none.
	Raw []byte `json:"-"`
	// RawProps, when set on an event change, is the JSON of the event's
	// properties as the engine encoded it (map members in any order). Sinks
	// that store the properties as a JSON string use it instead of encoding
	// them again; like Raw, it is not part of the change's own JSON. An
	// event change the engine reads back from storage usually carries its
	// properties only here (Event.Props nil), so a consumer checks both.
	RawProps []byte `json:"-"`
}

// Account is a B2B account (a Segment group or a CIAM organization): its
// own traits and its members' profile ids as of the change (an absorbed
// member keeps its old id here; profiles map it to the survivor).
type Account struct {
	ID      string         `json:"account_id"`
	Traits  map[string]any `json:"traits,omitempty"`
	Members []string       `json:"members"`
	Version uint64         `json:"version"`
	Deleted bool           `json:"deleted,omitempty"`
}

// EventRecord is an accepted event with the profile it resolved to and the
// identifier it was filed under (its anchor), through which analysts see
// later merges and splits retroactively.
type EventRecord struct {
	Event
	ProfileID string     `json:"profile_id"`
	Anchor    Identifier `json:"anchor"`
	// Refiled marks a record of an event emitted before under another
	// anchor: its anchor was quarantined and the event now belongs to
	// another of its identifiers. It replaces the earlier record (same
	// channel and message id, higher seq).
	Refiled bool `json:"refiled,omitempty"`
}

// Deletion says a profile id no longer exists.
type Deletion struct {
	ProfileID string `json:"profile_id"`
	Reason    string `json:"reason"`             // "absorbed" or "erased"
	Survivor  string `json:"survivor,omitempty"` // for absorbed profiles
}

// Mapping is one row of the identity map. ProfileID is empty when the
// identifier was removed (erasure).
type Mapping struct {
	Identifier Identifier `json:"identifier"`
	ProfileID  string     `json:"profile_id"`
	Version    uint64     `json:"version"`
}

// LogType names an identity-log record.
type LogType string

// Identity-log record types.
const (
	LogMerge      LogType = "merge"
	LogSplit      LogType = "split"
	LogConflict   LogType = "conflict"
	LogQuarantine LogType = "quarantine"
	LogRelease    LogType = "release"
	LogCandidate  LogType = "candidate"
	LogLink       LogType = "link"
	LogUnlink     LogType = "unlink"
	LogErase      LogType = "erase"
)

// LogRecord is one entry of the identity log. Identifiers in it are given as
// type plus a keyed hash for erase records, and in clear otherwise.
type LogRecord struct {
	Type       LogType     `json:"type"`
	ProfileID  string      `json:"profile_id"`       // survivor, or the profile concerned
	Others     []string    `json:"others,omitempty"` // absorbed, split-off or conflicting profiles
	Identifier *Identifier `json:"identifier,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Evidence   *Evidence   `json:"evidence,omitempty"`
}

// Evidence is why a link exists: which message said so, when, how trusted.
type Evidence struct {
	Channel   Channel   `json:"channel"`
	MessageID string    `json:"message_id"`
	Time      time.Time `json:"time"`
	Trust     Trust     `json:"trust"`
}

// Erasure tells sinks to delete a person's rows.
type Erasure struct {
	ProfileIDs []string  `json:"profile_ids"` // the profile and every id it absorbed
	Hashes     []string  `json:"hashes"`      // keyed hashes of the erased identifiers
	At         time.Time `json:"at"`
}
