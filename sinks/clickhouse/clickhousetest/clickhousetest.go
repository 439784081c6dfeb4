// Package clickhousetest finds the ClickHouse server integration tests and
// benchmarks run against (like net/http/httptest, for tests only).
package clickhousetest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// Addr returns the native-protocol address in SPINE_TEST_CLICKHOUSE (set by
// `source DIR/env` after `bash deploy/clickhouse.sh start DIR`). Without it
// the test is skipped, or fails under CI=true, where a skipped integration
// test would hide a broken pipeline.
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("SPINE_TEST_CLICKHOUSE")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("SPINE_TEST_CLICKHOUSE is not set; start a server with deploy/clickhouse.sh")
		}
		tb.Skip("SPINE_TEST_CLICKHOUSE is not set; run: bash deploy/clickhouse.sh start /tmp/ch-dev && source /tmp/ch-dev/env")
	}
	return addr
}

// Database returns a fresh database name starting with prefix, so that
// tests sharing a server never see each other's rows.
func Database(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
