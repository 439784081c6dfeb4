// Package clickhouse is the ClickHouse sink: it writes the engine's change
// log into the tables of schemas/clickhouse over the native protocol,
// applies those migrations, and keeps the dashboard roll-ups current.
//
// Writes are idempotent: every base table (events, profiles, identity_map,
// merges, accounts) is a ReplacingMergeTree whose sorting key is the row's
// natural key (event id, profile id, identifier, log seq, account id) and
// whose version is the change-log seq, so a replayed batch leaves every
// query that uses FINAL (or argMax by seq) unchanged. Each table gets one
// INSERT per batch (more only past Config.MaxInsertRows, or around an
// erasure in the middle of the batch). Erasure and identifier removal are
// mutations (ALTER TABLE ... DELETE), run after the rows that precede them
// in the batch are inserted, and before the rows that follow.
//
// Roll-ups (rollup.go) are recounted from the deduplicated base tables,
// at most once per Config.RollupInterval for the days of the batches
// written since the last recount, and written with the last seq written as
// their version, never incremented, so they stay exact when an insert is retried: ClickHouse
// 18.16 cannot deduplicate inserts. schemas/queries/README.md has the
// argument; the analyst queries there see merges and splits retroactively
// through each event's anchor identifier (anchor_type, anchor_hash) and
// identity_map.
//
// Accounts (migration 0007) get a row per canon.ChangeAccount, which the
// engine emits whenever an account's traits or members change.
//
// The sink speaks two schema dialects (see package schemas): Modern for
// current servers and Legacy for ClickHouse 18.16. The Go side differs only
// in how a time is split into columns (Dialect.TimeColumns). The roll-up
// statements and analyst queries are one text for both, checked on 18.16
// by the integration tests and on ClickHouse 26 by the chdb-tagged test
// (internal/chdb, deploy/chdb.sh).
package clickhouse
