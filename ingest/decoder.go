package ingest

import "github.com/spinecdp/spine/schemas/canon"

// Decoder turns one message's bytes into a canonical event. It is a pure
// function: no I/O, no clock, no shared state. Bad input returns a
// *msg.Reject naming the field and the rule.
type Decoder func(raw []byte) (canon.Event, error)
