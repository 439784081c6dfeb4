package canon

import (
	"errors"
	"time"
)

// Errors the engine returns to callers such as the API.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid request")
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the answer cannot be given now, but may be later (a
	// lookup replica that no longer follows the profile stream).
	ErrUnavailable = errors.New("unavailable")
)

// CommandKind names an operation requested through the API.
type CommandKind string

// Commands.
const (
	CmdErase   CommandKind = "erase"   // erase the person of ProfileID
	CmdConsent CommandKind = "consent" // set Consent on ProfileID
	CmdLink    CommandKind = "link"    // link Pair (confirms a candidate)
	CmdUnlink  CommandKind = "unlink"  // remove the link of Pair
	CmdRelease CommandKind = "release" // release the quarantined Identifier
)

// Command is a request to change state from outside the event stream.
type Command struct {
	Kind       CommandKind     `json:"kind"`
	ProfileID  string          `json:"profile_id,omitempty"`
	Pair       *Pair           `json:"pair,omitempty"`
	Identifier *Identifier     `json:"identifier,omitempty"`
	Consent    map[string]bool `json:"consent,omitempty"`
	Actor      string          `json:"actor,omitempty"` // who asked, for the audit log
	Time       time.Time       `json:"time"`
}

// Result is what a command did.
type Result struct {
	Profile *Profile `json:"profile,omitempty"`
	Receipt *Receipt `json:"receipt,omitempty"`
}

// Receipt documents an erasure: what was erased, where, when.
type Receipt struct {
	ProfileIDs  []string  `json:"profile_ids"`
	Identifiers int       `json:"identifiers"` // how many identifiers were erased
	Links       int       `json:"links"`
	Events      int       `json:"events"`
	Sinks       []string  `json:"sinks"` // where deletions were sent
	At          time.Time `json:"at"`
}
