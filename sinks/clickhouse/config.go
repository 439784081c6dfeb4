package clickhouse

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas"
)

// DialectAuto picks the dialect from the server's version at Open:
// Legacy before ClickHouse 20, Modern from 20 on.
const DialectAuto schemas.Dialect = "auto"

// Config configures the sink. Start from DefaultConfig.
type Config struct {
	// Addr is the server's native-protocol address, host:port (port 9000
	// by default on a server).
	Addr string
	// Database holds Spine's tables; Migrate creates it. Default "spine".
	Database string
	// Dialect is the schema dialect: schemas.Modern (default),
	// schemas.Legacy for ClickHouse 18.16, or DialectAuto.
	Dialect schemas.Dialect
	// Username and Password authenticate; Username defaults to "default".
	Username string
	Password string
	// DialTimeout bounds connecting, ReadTimeout each server round trip.
	DialTimeout time.Duration
	ReadTimeout time.Duration
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns int
	// MaxBatch bounds the changes of one Write (sinks.Batcher). ClickHouse
	// pays per INSERT (a part per partition and table, merged later), so a
	// catch-up goes faster in large batches: with 20,000 instead of 5,000 the
	// sink caught up 25-38 s after a bench began instead of 49-56 s
	// (bench/RESULTS.md).
	MaxBatch int
	// MaxInsertRows bounds the rows of one INSERT; larger groups are split.
	// At MaxBatch or more, a batch reaches each table in one INSERT.
	MaxInsertRows int
	// MaxDeleteKeys bounds the keys listed in one ALTER TABLE ... DELETE
	// (and the days in one roll-up refresh).
	MaxDeleteKeys int
	// SnapshotInterval is the least time between two recounts of the
	// profile snapshots (identity levels, lifecycle funnel, consent rates),
	// which read every live profile; a new day always gets one. Zero
	// recounts after every batch that changed a profile.
	SnapshotInterval time.Duration
	// RollupInterval is the least time between two recounts of the event
	// roll-ups (rollup_channel_daily): the days of the batches written in
	// between are recounted together, so a stream of small batches does
	// not recount the same days after each one. A batch with an erasure
	// recounts at once. Zero recounts after every batch.
	RollupInterval time.Duration
}

// DefaultConfig returns the defaults for a server on addr.
func DefaultConfig(addr string) Config {
	return Config{
		Addr:          addr,
		Database:      "spine",
		Dialect:       schemas.Modern,
		Username:      "default",
		DialTimeout:   5 * time.Second,
		ReadTimeout:   60 * time.Second,
		MaxOpenConns:  4,
		MaxBatch:      20_000,
		MaxInsertRows: 20_000,
		MaxDeleteKeys: 1_000,

		SnapshotInterval: time.Minute,
		RollupInterval:   5 * time.Second,
	}
}

// identifier is what the sink accepts as a database name: it is spliced
// into SQL, so it must need no quoting.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var b strings.Builder
	if c.Addr == "" {
		b.WriteString("clickhouse: Addr is required\n")
	}
	if !identifier.MatchString(c.Database) {
		fmt.Fprintf(&b, "clickhouse: Database %q must match %s\n", c.Database, identifier)
	}
	if !c.Dialect.Valid() && c.Dialect != DialectAuto {
		fmt.Fprintf(&b, "clickhouse: Dialect %q must be modern, legacy or auto\n", c.Dialect)
	}
	if c.DialTimeout <= 0 || c.ReadTimeout <= 0 {
		b.WriteString("clickhouse: DialTimeout and ReadTimeout must be positive\n")
	}
	if c.MaxOpenConns < 1 {
		b.WriteString("clickhouse: MaxOpenConns must be at least 1\n")
	}
	if c.MaxBatch < 1 || c.MaxInsertRows < 1 || c.MaxDeleteKeys < 1 {
		b.WriteString("clickhouse: MaxBatch, MaxInsertRows and MaxDeleteKeys must be at least 1\n")
	}
	if c.SnapshotInterval < 0 || c.RollupInterval < 0 {
		b.WriteString("clickhouse: SnapshotInterval and RollupInterval must not be negative\n")
	}
	if b.Len() == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.TrimSuffix(b.String(), "\n"))
}
