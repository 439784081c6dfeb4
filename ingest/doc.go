// Package ingest owns the turning of channel bytes into canonical events: the
// Decoder type, the table from channel to decoder, and the reasons a message
// is rejected. The decoders themselves live in one subpackage per channel and
// are pure functions; Kafka consumption lives in ingest/consumer.
package ingest
