// Package normalize turns raw identifier values into their canonical form
// before matching: emails trimmed and lower-cased, phone numbers in E.164
// (github.com/nyaruka/phonenumbers, in a configurable default region), other
// ids trimmed. It also refuses the junk a customer data platform must never
// link on: configurable exact values and patterns (null, unknown, the
// all-zero device id, ...), placeholder email local parts (test@, noreply@)
// and domains reserved for examples (example.com, *.test, ...).
//
// A refused value comes back as an *Error naming the identifier type and the
// rule it broke, never the value, so callers can count drops by rule and log
// them safely. A Normalizer is immutable once built and safe for concurrent
// use; ingest and the lookup API share one so that lookups normalize exactly
// as ingest does.
package normalize
