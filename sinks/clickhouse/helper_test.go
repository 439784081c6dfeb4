package clickhouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/sinks/clickhouse"
	"github.com/spinecdp/spine/sinks/clickhouse/clickhousetest"
)

// serverAddr returns the test server's native address from
// SPINE_TEST_CLICKHOUSE (bash deploy/clickhouse.sh start DIR && source
// DIR/env). Without it the test is skipped, or fails under CI=true, where a
// skipped integration test would hide a broken pipeline.
func serverAddr(t *testing.T) string {
	t.Helper()
	return clickhousetest.Addr(t)
}

// testDialect is legacy unless SPINE_TEST_CLICKHOUSE_DIALECT says
// otherwise: the server we can install is 18.16.
func testDialect() schemas.Dialect {
	if d := os.Getenv("SPINE_TEST_CLICKHOUSE_DIALECT"); d != "" {
		return schemas.Dialect(d)
	}
	return clickhouse.DialectAuto
}

// testConfig returns a config for a fresh database of its own, dropped
// when the test ends.
func testConfig(t *testing.T, addr string) clickhouse.Config {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg := clickhouse.DefaultConfig(addr)
	cfg.Database = "spine_test_" + hex.EncodeToString(b)
	cfg.Dialect = testDialect()
	t.Cleanup(func() {
		conn := query(t, addr, "")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

// openSink opens and migrates a sink on its own database.
func openSink(t *testing.T) (*clickhouse.Sink, driver.Conn) {
	t.Helper()
	addr := serverAddr(t)
	cfg := testConfig(t, addr)
	s, err := clickhouse.Open(t.Context(), cfg, nil, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, query(t, addr, cfg.Database)
}

// query opens a plain connection for the test's own queries.
func query(t *testing.T, addr, database string) driver.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Database: database}})
	if err != nil {
		t.Fatalf("ch.Open: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func count(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func strings1(t *testing.T, conn driver.Conn, q string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}
