// Package canon is the Go form of Spine's contract: the canonical event every
// channel adapter produces, identifiers and their trust, the unified profile,
// the change records the engine commits to its change log, and the commands
// the API sends to the engine.
//
// It imports only the standard library, so that ingest, engine and sinks can
// all depend on it without depending on each other.
package canon
