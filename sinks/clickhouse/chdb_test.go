//go:build chdb

// The modern dialect on a current engine: ClickHouse 26 in process through
// chDB's C API. Run with
//
//	eval "$(bash deploy/chdb.sh)" && go test -tags chdb -run Chdb ./sinks/clickhouse/
//
// chDB has no network listener, so the driver cannot reach it: the test
// renders the rows the sink would insert as SQL (InsertSQL), runs the
// refresh statements Write runs (RefreshSQL), and checks every analyst
// query against the same answers as the 18.16 tests.

package clickhouse_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/clickhouse"
	"github.com/spinecdp/spine/sinks/clickhouse/internal/chdb"
)

// chdbDB is one in-process ClickHouse session with its data in a temp dir.
type chdbDB struct {
	t *testing.T
	s *chdb.Session
}

func openChdb(t *testing.T) *chdbDB {
	t.Helper()
	s, err := chdb.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &chdbDB{t: t, s: s}
}

// query runs q and returns its TabSeparated output, one string per row
// with tabs turned into spaces (the form the 18.16 tests compare).
func (db *chdbDB) query(q string) ([]string, error) {
	out, err := db.s.Query(q, "TabSeparated")
	if err != nil || out == "" {
		return nil, err
	}
	var rows []string
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		rows = append(rows, strings.ReplaceAll(line, "\t", " "))
	}
	return rows, nil
}

func (db *chdbDB) exec(q string) {
	db.t.Helper()
	if _, err := db.query(q); err != nil {
		db.t.Fatalf("%s: %v", firstLine(q), err)
	}
}

// write does what Sink.Write does for batch: insert its rows, then
// refresh the roll-ups.
func (db *chdbDB) write(batch []canon.Change) {
	db.t.Helper()
	stmts, err := clickhouse.InsertSQL(schemas.Modern, batch)
	if err != nil {
		db.t.Fatal(err)
	}
	for _, s := range append(stmts, clickhouse.RefreshSQL(batch, time.Now())...) {
		db.exec(s)
	}
}

func (db *chdbDB) check(name, q string, want []string) {
	db.t.Helper()
	got, err := db.query(q)
	if err != nil {
		db.t.Errorf("%s: %v", name, err)
		return
	}
	if !slices.Equal(got, want) {
		db.t.Errorf("%s =\n\t%s\nwant\n\t%s", name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestChdbModernDialect(t *testing.T) {
	db := openChdb(t)
	v, err := db.query("SELECT version()")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chDB engine: ClickHouse %s", strings.Join(v, ""))
	db.exec("CREATE DATABASE IF NOT EXISTS spine")
	db.exec("USE spine")

	ms, err := schemas.Migrations(schemas.Modern)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, s := range m.Statements() {
			if _, err := db.query(s); err != nil {
				t.Fatalf("migration %s on ClickHouse %s: %v\n%s", m.Name, v, err, s)
			}
		}
	}
	// TabSeparated escapes quotes: DateTime64(3, \'UTC\').
	types, _ := db.query("SELECT type FROM system.columns WHERE database = 'spine' AND table = 'events' AND name IN ('channel', 'event_time') ORDER BY name")
	if !slices.Equal(types, []string{"LowCardinality(String)", `DateTime64(3, \'UTC\')`}) {
		t.Errorf("events column types = %v, want the modern dialect's", types)
	}

	h := salesHistory()
	for range 2 { // a retried batch
		db.write(h)
	}
	q := func(name string) string { return namedQuery(t, name) }
	db.check("dashboard_channels", q("dashboard_channels"), wantChannels)
	db.check("dashboard_revenue", q("dashboard_revenue"), wantRevenue)
	db.check("dashboard_identity", q("dashboard_identity"), wantIdentity)
	db.check("dashboard_funnel", q("dashboard_funnel"), wantFunnel)
	db.check("dashboard_consent", q("dashboard_consent"), wantConsent)
	// A batch inserted and not recounted (a stop between the two): the
	// next start finds its day, and only it.
	db.check("days not recounted", clickhouse.UncountedDaysSQL, nil)
	late, err := clickhouse.InsertSQL(schemas.Modern, changes(150, sale(canon.Web, "m-150", "p-a", canon.KindPage, day2.Add(48*time.Hour), "", 0, emailAnn)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range late {
		db.exec(s)
	}
	db.check("days not recounted after a stop", clickhouse.UncountedDaysSQL, []string{"2026-03-17"})
	db.exec("ALTER TABLE events DELETE WHERE message_id = 'm-150' SETTINGS mutations_sync = 1")
	db.exec("ALTER TABLE events_daily DELETE WHERE message_id = 'm-150' SETTINGS mutations_sync = 1")
	db.check("people before the merge", q("people"), []string{"2 2"})
	db.check("journeys before the merge", q("journeys"), []string{"web > pos 1", "web > pos > support 1"})

	db.write(changes(200,
		mapping(anonBen, "p-a", 2),
		logRec(canon.LogMerge, "p-a", []string{"p-b"}, &anonBen),
		canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "p-b", Reason: "absorbed", Survivor: "p-a"}},
	))
	db.check("people after the merge", q("people"), []string{"1 1"})
	db.check("revenue after the merge", q("revenue_per_customer"), []string{"EUR 1 2 12500000 12500000", "USD 1 1 5500000 5500000"})
	db.check("journeys after the merge", q("journeys"), []string{"web > pos > support 1"})
	db.check("top customers after the merge", q("top_customers"),
		[]string{"p-a EUR 2 12500000 ['pos']", "p-a USD 1 5500000 ['pos']"})

	db.write(changes(300,
		mapping(anonBen, "p-n", 3),
		logRec(canon.LogSplit, "p-a", []string{"p-n"}, &anonBen),
	))
	db.check("people after the split", q("people"), []string{"2 2"})
	db.check("journeys after the split", q("journeys"), []string{"web > pos 1", "web > pos > support 1"})

	db.exec(`INSERT INTO accounts (account_id, name, traits, members, member_count, version, deleted, seq, updated_at)
VALUES ('acct-1', 'Acme', '{"name":"Acme"}', ['p-a', 'p-c'], 2, 1, 0, 500, '2026-03-14 09:26:53.589')`)
	db.check("accounts", q("accounts"), []string{"acct-1 Acme 1 2"})

	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, qq := range qs {
		if _, err := db.query(qq.SQL); err != nil {
			t.Errorf("query %s on ClickHouse %s: %v", qq.Name, v, err)
		}
	}
}
