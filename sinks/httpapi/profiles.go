package httpapi

import (
	"context"
	"encoding/json"

	"github.com/spinecdp/spine/schemas/canon"
)

// Profiles is what the API needs from the engine. *engine.Engine is meant to
// satisfy it directly; the method set uses only canon types so that the
// engine does not import this package.
//
// Implementations must be safe for concurrent use: the server calls them
// from every request's goroutine at once. Each call gets the request's
// context, which ends when the client goes away or Config.RequestTimeout
// passes. The server only reads returned values (to encode them), and the
// implementation must not change them after returning.
type Profiles interface {
	// Lookup returns the profile holding the normalized identifier id, or an
	// error wrapping canon.ErrNotFound when no profile holds it.
	Lookup(ctx context.Context, id canon.Identifier) (canon.Profile, error)
	// Profile returns the profile with id. An id absorbed by a merge answers
	// with the survivor, whose MergedFrom holds the asked id; an unknown or
	// erased id is canon.ErrNotFound.
	Profile(ctx context.Context, id string) (canon.Profile, error)
}

// Commander is a Profiles that carries out commands: erase, consent, link,
// unlink or release. The engine is one; a read-only replica is not, and
// those endpoints then answer 501.
type Commander interface {
	// Do carries out a command. Errors wrapping canon.ErrNotFound,
	// canon.ErrInvalid and canon.ErrConflict reach the client as 404, 400
	// and 409; any other error is a 500 and is logged, not shown. A
	// command that fails must have no effect, so that the client may
	// retry it.
	Do(ctx context.Context, c canon.Command) (canon.Result, error)
}

// RawProfiles is a Profiles that also answers lookups with a profile's JSON
// (canon.Profile) encoded once when it was stored, so the server writes
// those bytes instead of encoding the profile for every request. The
// server only reads the returned bytes.
type RawProfiles interface {
	LookupJSON(ctx context.Context, id canon.Identifier) ([]byte, error)
	ProfileJSON(ctx context.Context, id string) ([]byte, error)
}

// Normalizer normalizes an identifier value exactly as ingest does, so that
// "Bob@Example.com" finds the profile ingest filed under "bob@example.com".
// An error means the value can never match anything (blocked, invalid,
// empty): lookups answer it with 404, link bodies with 400. The error's text
// is not shown to the client, since it might quote the value.
//
// Implementations must be safe for concurrent use.
type Normalizer interface {
	Normalize(t canon.IDType, raw string) (canon.Identifier, error)
}

// The optional capabilities below are discovered by type assertion on the
// Profiles value given to New, so that the engine can add them one at a time
// without breaking this package or its other users (the franz-go hooks
// style). While a capability is missing its endpoint answers 501. Like
// Profiles, each must be safe for concurrent use and must report unknown ids
// with canon.ErrNotFound.
//
// Graph, export and account documents are json.RawMessage: their shape is
// the engine's (documented in schemas/openapi.yaml), there is no canon type
// for them yet, and a type declared here would force the engine to import
// this package. The server checks that the bytes are valid JSON.

// Grapher serves GET /v1/profiles/{id}/graph: the profile's identifiers, the
// links between them with their evidence, and its pending candidate links.
type Grapher interface {
	Graph(ctx context.Context, profileID string) (json.RawMessage, error)
}

// Exporter serves GET /v1/profiles/{id}/export: everything held about the
// person (the right of access), as one JSON document.
type Exporter interface {
	Export(ctx context.Context, profileID string) (json.RawMessage, error)
}

// QuarantineLister serves GET /v1/quarantine: identifier values that stopped
// linking because they looked like shared junk. Each record is of type
// canon.LogQuarantine, with the Identifier in clear (an admin needs the value
// to release it), the Reason, and the profiles involved. At most limit
// records are returned, oldest first.
type QuarantineLister interface {
	Quarantined(ctx context.Context, limit int) ([]canon.LogRecord, error)
}

// Accounts serves GET /v1/accounts/{id}: a B2B account with its traits, its
// members and the roll-up of their computed values.
type Accounts interface {
	Account(ctx context.Context, accountID string) (json.RawMessage, error)
}
