package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/sinks"
)

const name = "clickhouse"

// Sink writes change-log batches to ClickHouse. It implements sinks.Sink.
// Like every sink it is used by one goroutine at a time.
type Sink struct {
	cfg     Config
	dialect schemas.Dialect
	conn    driver.Conn // pool whose default database is cfg.Database
	log     *slog.Logger
	metrics *metrics
	snap    snapshotState // profile snapshots not yet refreshed (rollup.go)
	recount recountState  // event roll-ups not yet recounted (rollup.go)
	dash    dashCache     // the dashboard's last document (dashboard.go)
}

var (
	_ sinks.Sink     = (*Sink)(nil)
	_ sinks.Deferrer = (*Sink)(nil)
)

// Open connects to the server in cfg, checks it answers and settles the
// dialect. The database need not exist yet: Migrate creates it. log and reg
// may be nil. Connection failures are marked sinks.Retryable.
func Open(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: register metrics: %w", err)
	}
	s := &Sink{cfg: cfg, dialect: cfg.Dialect, log: log.With("sink", name), metrics: m}

	// The first round trip goes through a connection without a default
	// database, because the server refuses a handshake naming a database
	// that does not exist, and before Migrate it may not.
	err = s.withServer(ctx, func(conn driver.Conn) error {
		v, err := conn.ServerVersion()
		if err != nil {
			return err
		}
		if s.dialect == DialectAuto {
			s.dialect = schemas.Modern
			if v.Version.Major < 20 {
				s.dialect = schemas.Legacy
			}
		}
		s.log.Debug("clickhouse connected", "server_version", v.Version.String(), "dialect", string(s.dialect))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: connect: %w", classify(err))
	}
	if s.conn, err = s.open(cfg.Database); err != nil {
		return nil, fmt.Errorf("clickhouse: connect: %w", classify(err))
	}
	return s, nil
}

// open makes a connection pool. Nothing is dialled until first use.
func (s *Sink) open(database string) (driver.Conn, error) {
	return ch.Open(&ch.Options{
		Addr: []string{s.cfg.Addr},
		Auth: ch.Auth{
			Database: database,
			Username: s.cfg.Username,
			Password: s.cfg.Password,
		},
		DialTimeout:  s.cfg.DialTimeout,
		ReadTimeout:  s.cfg.ReadTimeout,
		MaxOpenConns: s.cfg.MaxOpenConns,
		MaxIdleConns: s.cfg.MaxOpenConns,
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	})
}

// withServer runs fn on a short-lived connection that names no database.
func (s *Sink) withServer(ctx context.Context, fn func(driver.Conn) error) error {
	conn, err := s.open("")
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		return err
	}
	return fn(conn)
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return name }

var _ sinks.Batcher = (*Sink)(nil)

// MaxBatch implements sinks.Batcher.
func (s *Sink) MaxBatch() int { return s.cfg.MaxBatch }

// Database returns the database that holds the sink's tables.
func (s *Sink) Database() string { return s.cfg.Database }

// Dialect returns the schema dialect the sink writes.
func (s *Sink) Dialect() schemas.Dialect { return s.dialect }

// Close implements sinks.Sink: it recounts the event days and refreshes a
// profile snapshot that Config.RollupInterval and SnapshotInterval held
// back, then closes the connection pool. Failing that loses nothing the
// next start cannot redo: its first batch recounts the days left over,
// and the next batch that changes a profile snapshots all of them again.
func (s *Sink) Close(ctx context.Context) error {
	var errs []error
	if len(s.recount.days) > 0 {
		if err := s.recountDays(ctx, time.Now().UTC()); err != nil {
			errs = append(errs, err)
		}
	}
	if s.snap.pending {
		if err := s.snapshot(ctx, time.Now().UTC()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.conn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse: close: %w", err))
	}
	return errors.Join(errs...)
}

// transientCodes are server error codes worth retrying: overload, timeouts
// and replica trouble. Everything else (unknown table, type mismatch,
// syntax) needs a person and stops the sink.
var transientCodes = map[int32]bool{
	3:   true, // UNEXPECTED_END_OF_FILE
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	236: true, // ABORTED
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	285: true, // TOO_FEW_LIVE_REPLICAS
	319: true, // UNKNOWN_STATUS_OF_INSERT
	394: true, // QUERY_WAS_CANCELLED
	425: true, // SYSTEM_ERROR
	999: true, // KEEPER_EXCEPTION
}

// classify marks connection, network and timeout failures (and transient
// server errors) with sinks.Retryable, so the runner retries the batch.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ex *ch.Exception
	if errors.As(err, &ex) {
		if transientCodes[ex.Code] {
			return sinks.Retryable(err)
		}
		return err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// The caller is shutting down; retrying would be pointless.
		return err
	case errors.As(err, &ne),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ch.ErrAcquireConnTimeout),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return sinks.Retryable(err)
	}
	return err
}
