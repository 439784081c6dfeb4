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
// Roll-ups (rollup.go) are recounted from the deduplicated base tables
// after each batch and written with the batch's seq as their version, never
// incremented, so they stay exact when an insert is retried: ClickHouse
// 18.16 cannot deduplicate inserts. schemas/queries/README.md has the
// argument; the analyst queries there see merges and splits retroactively
// through each event's anchor identifier (anchor_type, anchor_hash) and
// identity_map.
//
// Accounts: the table exists (migration 0007) and accountRow renders it,
// but canon has no account change yet. The engine is to emit
// canon.ChangeAccount carrying {ID, Traits, Members, Version, Deleted}
// whenever an account's traits or members change, including when a member
// is absorbed (its id replaced by the survivor's) or erased; Write then
// gains one case.
//
// The sink speaks two schema dialects (see package schemas): Modern for
// current servers and Legacy for ClickHouse 18.16. The Go side differs only
// in how a time is split into columns (Dialect.TimeColumns). The roll-up
// statements and analyst queries are one text for both, checked on 18.16
// by the integration tests and on ClickHouse 26 by the chdb-tagged test
// (internal/chdb, deploy/chdb.sh).
package clickhouse
