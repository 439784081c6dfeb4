// Package sinks owns what leaves the engine: the Sink interface each
// destination implements, the ChangeLog it tails, and Run, the loop that
// reads a batch of changes, writes it with retries and acknowledges it.
// Destinations live in subpackages (clickhouse, kafka, parquet, httpapi).
package sinks
