// Package engine owns Spine's state machine: one writer goroutine applies
// batches of canonical events (resolution, profile updates, dedup) and
// commands, and commits state, consume positions and change records in one
// Badger transaction. Readers (the API, the sinks) read concurrently.
//
// The engine knows nothing of Kafka or ClickHouse: it takes canon.Batch and
// canon.Command in, and hands canon.Change records out through Read and Ack.
package engine
