package bench

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/schemas/canon"
)

// The peer: identity stitching the way warehouse-native tools do it. Every
// event's identifiers land in a table of (event_id, id_type, id_value),
// and connected components are computed in SQL by label propagation: each
// identifier starts as its own label, and each round sets every label to
// the least label among the identifiers it shares an event with, with
// INSERT INTO ... SELECT into a fresh table, until no label changes. The
// SQL uses only what ClickHouse 18.16 has (GROUP BY, min, ALL INNER JOIN),
// so it runs on the legacy server as on a current one.
//
// What it lacks, by design of the approach: type limits, conflicts,
// quarantine, blocked values beyond the shared normalizer, and unlinks.
// Comparing its accuracy with Spine's on the same stream is the point.
//
// This file talks to ClickHouse through clickhouse-go directly rather than
// through sinks/clickhouse: the peer and the visibility probe need ad-hoc
// SQL that the sink rightly does not expose, and they are benchmark code.

// Occurrence is one identifier seen in one event.
type Occurrence struct {
	EventID string // channel/message_id
	ID      canon.Identifier
}

// Occurrences decodes raw with dec and returns the identifiers of the event
// as the engine would see them: the event's identifiers plus the pair a
// link event asserts. Messages the decoder rejects give none.
func Occurrences(ch canon.Channel, dec ingest.Decoder, raw []byte, out []Occurrence) []Occurrence {
	ev, err := dec(raw)
	if err != nil {
		return out
	}
	eid := string(ch) + "/" + ev.MessageID
	for _, o := range ev.Identifiers {
		out = append(out, Occurrence{eid, o.Identifier})
	}
	if ev.Link != nil {
		for _, id := range []canon.Identifier{ev.Link.A, ev.Link.B} {
			if id.Value != "" {
				out = append(out, Occurrence{eid, id})
			}
		}
	}
	return out
}

// Warehouse is a ClickHouse connection for the peer and for the bench's
// visibility probe. It is safe for use by one goroutine at a time.
type Warehouse struct {
	conn driver.Conn
	db   string
}

var sqlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// OpenWarehouse connects to the native-protocol address addr and makes
// sure database db exists; the peer's tables live in it.
func OpenWarehouse(ctx context.Context, addr, db string) (*Warehouse, error) {
	if !sqlName.MatchString(db) {
		return nil, fmt.Errorf("bench: database name %q must match %s", db, sqlName)
	}
	conn, err := ch.Open(&ch.Options{
		Addr:         []string{addr},
		Auth:         ch.Auth{Username: "default"},
		DialTimeout:  5 * time.Second,
		ReadTimeout:  10 * time.Minute,
		MaxOpenConns: 2,
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("bench: clickhouse: %w", err)
	}
	w := &Warehouse{conn: conn, db: db}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: clickhouse: create database: %w", err)
	}
	return w, nil
}

// Close closes the connection.
func (w *Warehouse) Close() error { return w.conn.Close() }

// Exec runs one statement.
func (w *Warehouse) Exec(ctx context.Context, sql string) error {
	if err := w.conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("bench: clickhouse: %w", err)
	}
	return nil
}

// Present returns which of the message ids of channel are in the events
// table of database db. It reads without FINAL: a row that is there at
// all is visible, and merging duplicates on read made this probe, asked
// every 100 ms, the largest user of ClickHouse's CPU in a bench. The ids
// must be plain tokens; the bench makes them.
func (w *Warehouse) Present(ctx context.Context, db string, channel canon.Channel, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if !sqlName.MatchString(db) {
		return nil, fmt.Errorf("bench: database name %q must match %s", db, sqlName)
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		if strings.ContainsAny(id, `'\`) {
			return nil, errors.New("bench: message id needs quoting")
		}
		quoted[i] = "'" + id + "'"
	}
	q := fmt.Sprintf("SELECT DISTINCT message_id FROM %s.events WHERE channel = '%s' AND message_id IN (%s)",
		db, channel, strings.Join(quoted, ","))
	rows, err := w.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("bench: clickhouse: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("bench: clickhouse: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// maxRounds bounds label propagation: a component's diameter in events
// bounds the rounds it needs, and real components are far smaller.
const maxRounds = 200

// Reset drops the peer's tables, so a run starts empty.
func (w *Warehouse) Reset(ctx context.Context) error {
	for _, t := range []string{"occurrences", "edges"} {
		if err := w.Exec(ctx, "DROP TABLE IF EXISTS "+w.db+"."+t); err != nil {
			return err
		}
	}
	for i := range maxRounds + 1 {
		if err := w.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.labels_%d", w.db, i)); err != nil {
			return err
		}
	}
	return w.Exec(ctx, "CREATE TABLE "+w.db+".occurrences (event_id String, id_type String, id_value String) ENGINE = MergeTree ORDER BY event_id")
}

// Loader appends occurrences to the peer's table in batches.
type Loader struct {
	w     *Warehouse
	batch driver.Batch
	n     int
	Rows  int64
}

const loadBatchRows = 200_000

// Loader returns a loader into a table Reset made.
func (w *Warehouse) Loader() *Loader { return &Loader{w: w} }

// Add appends one occurrence.
func (l *Loader) Add(ctx context.Context, o Occurrence) error {
	if l.batch == nil {
		b, err := l.w.conn.PrepareBatch(ctx, "INSERT INTO "+l.w.db+".occurrences (event_id, id_type, id_value)")
		if err != nil {
			return fmt.Errorf("bench: clickhouse: prepare: %w", err)
		}
		l.batch = b
	}
	if err := l.batch.Append(o.EventID, string(o.ID.Type), o.ID.Value); err != nil {
		return fmt.Errorf("bench: clickhouse: append: %w", err)
	}
	l.Rows++
	if l.n++; l.n >= loadBatchRows {
		return l.Flush()
	}
	return nil
}

// Flush sends what is buffered.
func (l *Loader) Flush() error {
	if l.batch == nil {
		return nil
	}
	err := l.batch.Send()
	l.batch, l.n = nil, 0
	if err != nil {
		return fmt.Errorf("bench: clickhouse: insert: %w", err)
	}
	return nil
}

// Stitched is the peer's result.
type Stitched struct {
	Rounds int                         // label-propagation rounds, the last one changing nothing
	Labels map[canon.Identifier]string // identifier → component label
	Edges  uint64                      // (event, identifier) rows after dedup
	Nodes  uint64                      // distinct identifiers
}

// Cluster is a ClusterFunc over the result.
func (s *Stitched) Cluster(id canon.Identifier) (string, bool) {
	l, ok := s.Labels[id]
	return l, ok
}

// Stitch runs label propagation over the loaded occurrences and reads the
// components back. Identifiers are keyed by cityHash64(type, value); a
// collision among a few million 64-bit hashes is negligible.
func (w *Warehouse) Stitch(ctx context.Context) (*Stitched, error) {
	db := w.db
	steps := []string{
		// One row per (event, identifier): the bipartite graph.
		"CREATE TABLE " + db + ".edges ENGINE = MergeTree ORDER BY node AS " +
			"SELECT DISTINCT cityHash64(event_id) AS ev, cityHash64(id_type, id_value) AS node FROM " + db + ".occurrences",
		// Round 0: every identifier is its own label.
		"CREATE TABLE " + db + ".labels_0 ENGINE = MergeTree ORDER BY node AS " +
			"SELECT node, node AS label FROM " + db + ".edges GROUP BY node",
	}
	for _, s := range steps {
		if err := w.Exec(ctx, s); err != nil {
			return nil, err
		}
	}
	res := &Stitched{}
	if err := w.scalar(ctx, "SELECT count() FROM "+db+".edges", &res.Edges); err != nil {
		return nil, err
	}
	if err := w.scalar(ctx, "SELECT count() FROM "+db+".labels_0", &res.Nodes); err != nil {
		return nil, err
	}
	k := 0
	for {
		if k == maxRounds {
			return nil, fmt.Errorf("bench: peer: no convergence after %d rounds", maxRounds)
		}
		next := fmt.Sprintf("%s.labels_%d", db, k+1)
		cur := fmt.Sprintf("%s.labels_%d", db, k)
		if err := w.Exec(ctx, "CREATE TABLE "+next+" (node UInt64, label UInt64) ENGINE = MergeTree ORDER BY node"); err != nil {
			return nil, err
		}
		// label(node) = least label over the events the node is in, where an
		// event's label is the least label of its identifiers. The node is
		// in its own events, so labels only fall.
		err := w.Exec(ctx, "INSERT INTO "+next+" SELECT node, min(l) AS label FROM ("+
			"SELECT node, l FROM "+db+".edges ALL INNER JOIN ("+
			"SELECT ev, min(label) AS l FROM "+db+".edges ALL INNER JOIN "+cur+" USING node GROUP BY ev"+
			") USING ev) GROUP BY node")
		if err != nil {
			return nil, err
		}
		var changed uint64
		err = w.scalar(ctx, "SELECT count() FROM "+next+" ALL INNER JOIN (SELECT node, label AS old FROM "+cur+") USING node WHERE label != old", &changed)
		if err != nil {
			return nil, err
		}
		if err := w.Exec(ctx, "DROP TABLE "+cur); err != nil {
			return nil, err
		}
		k++
		if changed == 0 {
			break
		}
	}
	res.Rounds = k
	final := fmt.Sprintf("%s.labels_%d", db, k)
	rows, err := w.conn.Query(ctx, "SELECT id_type, id_value, toString(label) FROM ("+
		"SELECT DISTINCT id_type, id_value, cityHash64(id_type, id_value) AS node FROM "+db+".occurrences"+
		") ALL INNER JOIN "+final+" USING node")
	if err != nil {
		return nil, fmt.Errorf("bench: clickhouse: read labels: %w", err)
	}
	defer rows.Close()
	res.Labels = map[canon.Identifier]string{}
	for rows.Next() {
		var t, v, l string
		if err := rows.Scan(&t, &v, &l); err != nil {
			return nil, fmt.Errorf("bench: clickhouse: read labels: %w", err)
		}
		res.Labels[canon.Identifier{Type: canon.IDType(t), Value: v}] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bench: clickhouse: read labels: %w", err)
	}
	return res, w.Exec(ctx, "DROP TABLE "+final)
}

func (w *Warehouse) scalar(ctx context.Context, q string, dst any) error {
	if err := w.conn.QueryRow(ctx, q).Scan(dst); err != nil {
		return fmt.Errorf("bench: clickhouse: %w", err)
	}
	return nil
}
