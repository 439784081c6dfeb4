// Package clickhouse is the ClickHouse sink: it writes the engine's change
// log into the tables of schemas/clickhouse (events, profiles, identity_map,
// merges) over the native protocol, and applies those migrations.
//
// Writes are idempotent: every table is a ReplacingMergeTree whose sorting
// key is the row's natural key (event id, profile id, identifier, log seq)
// and whose version is the change-log seq, so a replayed batch leaves every
// query that uses FINAL (or argMax by seq) unchanged. Erasure and identifier
// removal are mutations (ALTER TABLE ... DELETE), run after the rows that
// precede them in the batch are inserted, and before the rows that follow.
//
// The sink speaks two schema dialects (see package schemas): Modern for
// current servers and Legacy for ClickHouse 18.16. The Go side differs only
// in how a time is split into columns (Dialect.TimeColumns).
package clickhouse
