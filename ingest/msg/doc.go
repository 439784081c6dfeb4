// Package msg holds what every channel decoder shares: the Reject error with
// its bounded set of reasons, bounded reading of JSON messages (Parse), typed
// readers over a message's fields (Object), the assembly of a canonical
// event's identifiers (IDs) and its final checks (Finish), and NewDecoder,
// which runs them in order around a channel's Envelope.
//
// Shared rules every channel follows: JSON null is an absent field; ids
// (message ids, identifiers) may be strings or integers; amounts are exact
// decimals in micros, never negative; currencies are upper-cased ISO 4217
// codes; fields outside the contract are kept in Event.Props (Keep), never
// dropped; a refused identifier is dropped and counted in Event.Dropped by
// normalize rule; an event with no usable identifier is no_identifier.
//
// Parse checks a message in a fixed order, so each bad message gets one
// stable reason: size over Limits.MaxBytes (oversize), invalid UTF-8
// (invalid_utf8), invalid JSON (invalid_json), a top level that is not an
// object (not_object), nesting deeper than Limits.MaxDepth (too_deep). The
// package's own parser decodes the message into exactly the tree
// encoding/json builds for an any with UseNumber (map[string]any, []any,
// string, json.Number, bool, nil), without its reflection and with fewer
// allocations. It stops at Limits.MaxDepth, so hostile input cannot grow a
// deep structure in memory. JSON numbers are kept exact (json.Number), and
// JSON null reads as an absent field.
//
// Readers keep the first problem they meet (like bufio.Scanner) so decoders
// read straight down a message and check Object.Err once. Every Reject names
// the field and the rule, never a value from the message.
package msg
