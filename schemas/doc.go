// Package schemas holds Spine's contract as files, embedded in the binary:
// the JSON Schema of each channel and of the canonical event (json/), the
// HTTP API spec (openapi.yaml), the ClickHouse DDL as ordered migrations
// (clickhouse/NNNN_name.sql), and the Go form of the contract in the canon
// subpackage. Files and ReadFile serve the files; Migrations the DDL.
//
// Migrations are written once, with a few placeholders that Migrations
// expands per Dialect: Modern for current ClickHouse (25.8 and later, what
// users run) and Legacy for the 18.16 server Debian ships, which the
// integration tests run against. The placeholders are:
//
//	{{LowString}}  LowCardinality(String) | String
//	{{Time col}}   col DateTime64(3, 'UTC') | col DateTime('UTC'), col_ms UInt16
//
// Everything else is plain SQL both servers accept: no Map, JSON, TTL,
// CODEC, Bool or IF NOT EXISTS on columns, and JSON kept in String columns.
// Table names are unqualified: the migrator runs them in the configured
// database (spine by default).
//
// Adding a migration: add the next NNNN_name.sql, never edit an applied
// one. Prefer one statement per file, each idempotent where the server
// allows (CREATE ... IF NOT EXISTS), since legacy ALTER ... ADD COLUMN has
// no IF NOT EXISTS and a half-applied migration must be safe to rerun.
package schemas
