package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/spinecdp/spine/schemas"
)

// migrationsTable records applied migrations. It is created by the
// migrator itself, in a form every dialect accepts, before any migration.
const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY version`

// Migrate creates the database if missing and applies, in order, the
// migrations of the sink's dialect not yet recorded in schema_migrations.
// Running it again applies nothing. It is not safe to run from two
// processes at once; `spine migrate` and start-up run it from one.
func (s *Sink) Migrate(ctx context.Context) error {
	ms, err := schemas.Migrations(s.dialect)
	if err != nil {
		return fmt.Errorf("clickhouse: migrate: %w", err)
	}
	err = s.withServer(ctx, func(conn driver.Conn) error {
		return conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.cfg.Database)
	})
	if err != nil {
		return fmt.Errorf("clickhouse: create database: %w", classify(err))
	}
	if err := s.conn.Exec(ctx, migrationsTable); err != nil {
		return fmt.Errorf("clickhouse: create schema_migrations: %w", classify(err))
	}
	applied, err := s.Applied(ctx)
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("clickhouse: migrate: database has migration %d, which this binary lacks; upgrade spine", v)
		}
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range m.Statements() {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %s: %w", m.Name, classify(err))
			}
		}
		// Recorded only after every statement succeeded: a failure leaves the
		// migration pending, and its statements are written to be rerun.
		b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
		if err == nil {
			if err = b.Append(uint32(m.Version), m.Name, time.Now().UTC().Truncate(time.Second)); err == nil {
				err = b.Send()
			} else {
				_ = b.Abort()
			}
		}
		if err != nil {
			return fmt.Errorf("clickhouse: record migration %s: %w", m.Name, classify(err))
		}
		s.log.Info("clickhouse migration applied", "version", m.Version, "name", m.Name, "dialect", string(s.dialect))
	}
	return nil
}

// Applied returns the versions recorded in schema_migrations.
func (s *Sink) Applied(ctx context.Context) (map[int]bool, error) {
	rows, err := s.conn.Query(ctx, "SELECT version FROM schema_migrations FINAL")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", classify(err))
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", err)
		}
		out[int(v)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", classify(err))
	}
	return out, nil
}

// WaitMutations waits until the server has finished every mutation
// (erasure, identifier removal) on the sink's database, polling
// system.mutations, which every dialect has (18.16 lacks mutations_sync).
// Bound it with ctx.
func (s *Sink) WaitMutations(ctx context.Context) error {
	for {
		var pending uint64
		err := s.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", s.cfg.Database).Scan(&pending)
		if err != nil {
			return fmt.Errorf("clickhouse: wait for mutations: %w", classify(err))
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse: wait for mutations: %d pending: %w", pending, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
