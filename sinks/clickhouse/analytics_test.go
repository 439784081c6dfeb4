package clickhouse_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/clickhouse"
)

// openAnalytics opens a migrated sink that recounts the roll-ups and
// refreshes the profile snapshots after every batch, so tests see them at
// once.
func openAnalytics(t *testing.T, reg prometheus.Registerer) (*clickhouse.Sink, driver.Conn) {
	t.Helper()
	addr := serverAddr(t)
	cfg := testConfig(t, addr)
	cfg.SnapshotInterval, cfg.RollupInterval = 0, 0
	s, err := clickhouse.Open(t.Context(), cfg, nil, reg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, query(t, addr, cfg.Database)
}

// namedQuery returns the analyst query name from schemas/queries.
func namedQuery(t *testing.T, name string) string {
	t.Helper()
	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Name == name {
			return q.SQL
		}
	}
	t.Fatalf("no query %s in schemas/queries", name)
	return ""
}

// table runs q and renders each row as its values separated by spaces:
// dates as 2006-01-02, times as 2006-01-02 15:04:05, arrays with fmt.
func table(t *testing.T, conn driver.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", firstLine(q), err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cts := rows.ColumnTypes()
		dest := make([]any, len(cts))
		for i, ct := range cts {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("%s: %v", firstLine(q), err)
		}
		vals := make([]string, len(dest))
		for i, d := range dest {
			vals[i] = render(reflect.ValueOf(d).Elem().Interface())
		}
		out = append(out, strings.Join(vals, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", firstLine(q), err)
	}
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case time.Time:
		if x.Equal(x.Truncate(24 * time.Hour)) {
			return x.UTC().Format(time.DateOnly)
		}
		return x.UTC().Format(time.DateTime)
	case float64:
		return fmt.Sprintf("%g", x)
	}
	return fmt.Sprint(v)
}

func firstLine(q string) string {
	for l := range strings.SplitSeq(q, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			return l
		}
	}
	return q
}

func checkTable(t *testing.T, conn driver.Conn, name, q string, want []string) {
	t.Helper()
	if got := table(t, conn, q); !slices.Equal(got, want) {
		t.Errorf("%s =\n\t%s\nwant\n\t%s", name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

var day2 = t0.Add(24 * time.Hour)

func sale(ch canon.Channel, msg, pid string, kind canon.Kind, at time.Time, cur string, micros int64, ids ...canon.Identifier) canon.Change {
	c := event(ch, msg, pid, kind, ids...)
	c.Event.Time = at
	c.Event.Amount = nil
	if cur != "" {
		c.Event.Amount = &canon.Money{Currency: cur, Micros: micros}
	}
	return c
}

// person is a profile change with a lifecycle and consent.
func person(pid string, level canon.Level, stage string, steps map[string]time.Time, consent map[string]bool, ids ...canon.Identifier) canon.Change {
	c := profile(pid, 1, 0, ids...)
	p := c.Profile
	p.Level = level
	p.Computed.FirstSeen = t0
	p.Computed.LifecycleStage = stage
	p.Computed.Lifecycle = steps
	p.Consent = map[string]canon.ConsentState{}
	for k, v := range consent {
		p.Consent[k] = canon.ConsentState{Value: v, Time: t0, Source: "web"}
	}
	return c
}

func withOrders(n int64, c canon.Change) canon.Change {
	c.Profile.Computed.OrderCount = n
	return c
}

var (
	emailAnn = id(canon.Email, "ann@shop.io")
	anonBen  = id(canon.AnonymousID, "b-1")
)

// salesHistory: ann (p-a, registered customer) and ben (p-b, anonymous)
// browse and buy over two days.
func salesHistory() []canon.Change {
	return changes(1,
		sale(canon.Web, "m-1", "p-a", canon.KindPage, t0, "", 0, emailAnn),
		sale(canon.Web, "m-2", "p-b", canon.KindPage, t0, "", 0, anonBen),
		sale(canon.POS, "t-1", "p-a", canon.KindOrder, t0.Add(time.Hour), "EUR", 10_000_000, emailAnn),
		sale(canon.POS, "t-2", "p-b", canon.KindOrder, t0.Add(time.Hour), "USD", 5_500_000, anonBen),
		sale(canon.POS, "t-3", "p-a", canon.KindOrder, day2, "EUR", 2_500_000, emailAnn),
		sale(canon.Support, "s-1", "p-a", canon.KindRefund, day2, "EUR", 1_000_000, emailAnn),
		mapping(emailAnn, "p-a", 1),
		mapping(anonBen, "p-b", 1),
		withOrders(2, person("p-a", canon.Registered, canon.StageCustomer, map[string]time.Time{
			canon.StageVisitor: t0, canon.StageLead: t0.Add(time.Hour),
			canon.StageRegistered: t0.Add(2 * time.Hour), canon.StageCustomer: t0.Add(3 * time.Hour),
		}, map[string]bool{"email_marketing": true, "analytics": true}, emailAnn)),
		person("p-b", canon.Anonymous, canon.StageVisitor, map[string]time.Time{canon.StageVisitor: t0},
			map[string]bool{"analytics": false}, anonBen),
		person("p-c", canon.Anonymous, canon.StageVisitor, nil, nil),
		canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "p-c", Reason: "absorbed", Survivor: "p-a"}},
	)
}

// The answers, computed by hand from salesHistory.
var (
	wantChannels = []string{
		"2026-03-14 pos 2 2 2",
		"2026-03-14 web 2 2 0",
		"2026-03-15 pos 1 1 1",
		"2026-03-15 support 1 1 0",
	}
	wantRevenue = []string{
		"2026-03-14 EUR 10000000 0",
		"2026-03-14 USD 5500000 0",
		"2026-03-15 EUR 2500000 1000000",
	}
	// The snapshot day is the commit day of the batch's last change (t0).
	wantIdentity = []string{"2026-03-14 2 1 0 1 0 0.5"}
	wantFunnel   = []string{
		"2026-03-14 visitor 1 2 0 0 0",
		"2026-03-14 lead 0 1 0.5 1 1",
		"2026-03-14 registered 0 1 1 2 2",
		"2026-03-14 customer 1 1 1 3 3",
		"2026-03-14 loyal 0 0 0 0 0",
	}
	wantConsent = []string{
		"2026-03-14 analytics 2 2 1 1 0.5",
		"2026-03-14 email_marketing 2 1 1 0.5 1",
		"2026-03-14 personalization 2 0 0 0 0",
		"2026-03-14 sms 2 0 0 0 0",
		"2026-03-14 third_party_sharing 2 0 0 0 0",
	}
)

func checkRollups(t *testing.T, conn driver.Conn, when string) {
	t.Helper()
	for _, c := range []struct {
		name string
		want []string
	}{
		{"dashboard_channels", wantChannels},
		{"dashboard_revenue", wantRevenue},
		{"dashboard_identity", wantIdentity},
		{"dashboard_funnel", wantFunnel},
		{"dashboard_consent", wantConsent},
	} {
		checkTable(t, conn, c.name+" "+when, namedQuery(t, c.name), c.want)
	}
}

// TestRollupsExactUnderReplay writes the same batch twice, an overlapping
// tail, and a message the engine re-emitted with a new seq: the roll-ups
// must equal the hand-computed answer every time. 18.16 cannot deduplicate
// inserts, so this holds only because roll-ups are recounts.
func TestRollupsExactUnderReplay(t *testing.T) {
	s, conn := openAnalytics(t, nil)
	h := salesHistory()
	if err := s.Write(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, conn, "after one write")

	if err := s.Write(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, conn, "after the same batch again")

	if err := s.Write(t.Context(), h[3:]); err != nil {
		t.Fatal(err)
	}
	checkRollups(t, conn, "after an overlapping tail")

	again := sale(canon.POS, "t-1", "p-a", canon.KindOrder, t0.Add(time.Hour), "EUR", 10_000_000, emailAnn)
	if err := s.Write(t.Context(), changes(100, again)); err != nil {
		t.Fatal(err)
	}
	checkChannels := namedQuery(t, "dashboard_channels")
	checkTable(t, conn, "dashboard_channels after a re-emitted message", checkChannels, wantChannels)
	checkTable(t, conn, "dashboard_revenue after a re-emitted message", namedQuery(t, "dashboard_revenue"), wantRevenue)

	// Physically there are duplicates; only FINAL hides them. This is what
	// makes the test meaningful: an incrementing roll-up would be off.
	if n := count(t, conn, "SELECT count() FROM events_daily"); n <= 6 {
		t.Logf("events_daily holds %d physical rows (merged early); the check above still holds", n)
	}
	if n := count(t, conn, "SELECT count() FROM events_daily FINAL"); n != 6 {
		t.Errorf("events_daily FINAL has %d rows, want 6", n)
	}
	// Ranges of days merge the distinct-profile states.
	checkTable(t, conn, "distinct profiles per channel over both days",
		"SELECT toString(channel) AS c, uniqExactMerge(profiles) FROM rollup_channel_daily FINAL GROUP BY c ORDER BY c",
		[]string{"pos 2", "support 1", "web 2"})
}

// TestRollupSnapshotThrottle: with a long interval, a second batch on the
// same day does not recount the profiles, and Close recounts what is
// pending.
func TestRollupSnapshotThrottle(t *testing.T) {
	addr := serverAddr(t)
	cfg := testConfig(t, addr)
	cfg.SnapshotInterval = time.Hour
	s, err := clickhouse.Open(t.Context(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn := query(t, addr, cfg.Database)
	h := salesHistory()
	if err := s.Write(t.Context(), h[:9]); err != nil { // events, mappings, p-a
		t.Fatal(err)
	}
	checkTable(t, conn, "identity after the first batch", namedQuery(t, "dashboard_identity"), []string{"2026-03-14 1 0 0 1 0 1"})
	if err := s.Write(t.Context(), h[9:]); err != nil { // p-b, p-c
		t.Fatal(err)
	}
	checkTable(t, conn, "identity within the interval", namedQuery(t, "dashboard_identity"), []string{"2026-03-14 1 0 0 1 0 1"})
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkTable(t, conn, "identity after Close", namedQuery(t, "dashboard_identity"), wantIdentity)
}

// TestRollupRecountThrottle: with a RollupInterval, the first batch is
// recounted at once and the days of the next ones are held back until
// the interval ends (Flush, when no batch comes) or the sink closes; a
// sink that stopped without Close leaves them to the next sink's first
// batch, which finds them by their seq.
func TestRollupRecountThrottle(t *testing.T) {
	addr := serverAddr(t)
	cfg := testConfig(t, addr)
	cfg.RollupInterval = time.Hour
	open := func(cfg clickhouse.Config) *clickhouse.Sink {
		t.Helper()
		s, err := clickhouse.Open(t.Context(), cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	write := func(s *clickhouse.Sink, batch []canon.Change) {
		t.Helper()
		if err := s.Write(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	conn := query(t, addr, cfg.Database)
	channels := namedQuery(t, "dashboard_channels")
	h := salesHistory()
	dayN := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	visit := func(seq uint64, msg string, day int) []canon.Change {
		return changes(seq, sale(canon.Web, msg, "p-a", canon.KindPage, dayN(day), "", 0, emailAnn))
	}

	s1 := open(cfg)
	write(s1, h[:4]) // day one: recounted at once
	write(s1, h[4:6])
	checkTable(t, conn, "channels within the interval", channels, wantChannels[:2])
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkTable(t, conn, "channels after Close", channels, wantChannels)

	// A sink that stops without Close.
	s2 := open(cfg)
	write(s2, visit(100, "m-100", 2))
	write(s2, visit(101, "m-101", 3))
	want := append(slices.Clone(wantChannels), "2026-03-16 web 1 1 0")
	checkTable(t, conn, "channels before the stop", channels, want)
	// As if a recount of several chunks of days had stopped after the
	// chunk holding 03-16, at a version past every row: the day held back
	// (03-17) must still be found.
	if err := conn.Exec(t.Context(), `INSERT INTO rollup_channel_daily
		SELECT day, channel, events, profiles, orders, currencies, revenue_micros, refund_micros, toUInt64(999), refreshed_at
		FROM rollup_channel_daily FINAL WHERE day = toDate('2026-03-16')`); err != nil {
		t.Fatal(err)
	}
	s3 := open(cfg)
	t.Cleanup(func() { _ = s2.Close(context.Background()) })
	write(s3, h[6:7]) // no event at all
	want = append(want, "2026-03-17 web 1 1 0")
	checkTable(t, conn, "channels after the restart", channels, want)
	if err := s3.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// A stream that goes quiet: Due says when, Flush recounts.
	cfg.RollupInterval = 2 * time.Second
	s4 := open(cfg)
	defer s4.Close(context.Background())
	if _, ok := s4.Due(); ok {
		t.Fatal("Due reports held-back work before any batch")
	}
	write(s4, visit(102, "m-102", 4))
	write(s4, visit(103, "m-103", 5))
	after, ok := s4.Due()
	if !ok || after <= 0 || after > cfg.RollupInterval {
		t.Fatalf("Due = %v, %v; want within (0, %v]", after, ok, cfg.RollupInterval)
	}
	want = append(want, "2026-03-18 web 1 1 0")
	checkTable(t, conn, "channels before the recount is due", channels, want)
	time.Sleep(after)
	if err := s4.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s4.Due(); ok {
		t.Error("Due reports held-back work after Flush")
	}
	checkTable(t, conn, "channels after Flush", channels, append(want, "2026-03-19 web 1 1 0"))
}

// TestQueriesSeeMergesAndSplits: ann's and ben's events stay under the
// profile ids they resolved to, yet the analyst queries count one person
// once ben's identifiers are merged into ann's profile, and two again
// after a split moves them to a new profile.
func TestQueriesSeeMergesAndSplits(t *testing.T) {
	s, conn := openAnalytics(t, nil)
	h := salesHistory()
	if err := s.Write(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	people, revenue, journeys := namedQuery(t, "people"), namedQuery(t, "revenue_per_customer"), namedQuery(t, "journeys")
	checkTable(t, conn, "people before the merge", people, []string{"2 2"})
	checkTable(t, conn, "revenue before the merge", revenue, []string{"EUR 1 2 12500000 12500000", "USD 1 1 5500000 5500000"})
	checkTable(t, conn, "journeys before the merge", journeys, []string{"web > pos 1", "web > pos > support 1"})

	merge := changes(200,
		mapping(anonBen, "p-a", 2),
		logRec(canon.LogMerge, "p-a", []string{"p-b"}, &anonBen),
		canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "p-b", Reason: "absorbed", Survivor: "p-a"}},
	)
	if err := s.Write(t.Context(), merge); err != nil {
		t.Fatal(err)
	}
	checkTable(t, conn, "people after the merge", people, []string{"1 1"})
	checkTable(t, conn, "revenue after the merge", revenue, []string{"EUR 1 2 12500000 12500000", "USD 1 1 5500000 5500000"})
	checkTable(t, conn, "journeys after the merge", journeys, []string{"web > pos > support 1"})
	checkTable(t, conn, "top customers after the merge", namedQuery(t, "top_customers"),
		[]string{"p-a EUR 2 12500000 [pos]", "p-a USD 1 5500000 [pos]"})
	// The events themselves still say where they resolved at the time.
	checkTable(t, conn, "event-time profiles", "SELECT event_profile_id, profile_id FROM events_resolved WHERE message_id = 't-2'", []string{"p-b p-a"})

	split := changes(300,
		mapping(anonBen, "p-n", 3),
		logRec(canon.LogSplit, "p-a", []string{"p-n"}, &anonBen),
	)
	if err := s.Write(t.Context(), split); err != nil {
		t.Fatal(err)
	}
	checkTable(t, conn, "people after the split", people, []string{"2 2"})
	checkTable(t, conn, "journeys after the split", journeys, []string{"web > pos 1", "web > pos > support 1"})
	checkTable(t, conn, "ben's order after the split", "SELECT profile_id FROM events_resolved WHERE message_id = 't-2'", []string{"p-n"})

	// Replaying everything changes nothing: the queries read FINAL.
	for _, b := range [][]canon.Change{h, merge, split} {
		if err := s.Write(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	checkTable(t, conn, "people after replay", people, []string{"2 2"})
}

// TestEveryQueryRuns runs each documented query on the server.
func TestEveryQueryRuns(t *testing.T) {
	s, conn := openAnalytics(t, nil)
	if err := s.Write(t.Context(), salesHistory()); err != nil {
		t.Fatal(err)
	}
	qs, err := schemas.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 8 {
		t.Fatalf("schemas.Queries() = %d queries, want the documented ones", len(qs))
	}
	for _, q := range qs {
		if q.Doc == "" {
			t.Errorf("query %s has no leading comment", q.Name)
		}
		_ = table(t, conn, q.SQL)
	}
}

func TestAccounts(t *testing.T) {
	s, conn := openAnalytics(t, nil)
	if err := s.Write(t.Context(), salesHistory()); err != nil {
		t.Fatal(err)
	}
	acme := &clickhouse.Account{ID: "acct-1", Traits: map[string]any{"name": "Acme"}, Members: []string{"p-a", "p-c"}, Version: 1}
	if err := clickhouse.WriteAccounts(t.Context(), s, 500, t0, acme); err != nil {
		t.Fatal(err)
	}
	acme2 := *acme
	acme2.Members = []string{"p-a", "p-b", "p-c"}
	acme2.Version = 2
	for range 2 { // replayed
		if err := clickhouse.WriteAccounts(t.Context(), s, 501, t0, &acme2); err != nil {
			t.Fatal(err)
		}
	}
	// p-c was absorbed into p-a: two distinct members, and ann's two
	// orders count once.
	checkTable(t, conn, "accounts", namedQuery(t, "accounts"), []string{"acct-1 Acme 2 2"})
	checkTable(t, conn, "account row", "SELECT member_count, traits FROM accounts FINAL", []string{`3 {"name":"Acme"}`})
}

// TestOneInsertPerTable: a full batch reaches each table in one INSERT,
// which is what ClickHouse wants (few large parts).
func TestOneInsertPerTable(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, conn := openAnalytics(t, reg)
	n := s.MaxBatch()
	batch := stream(0, n)
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	got := counterValues(t, reg, "spine_sink_inserts_total")
	for _, tb := range []string{"events", "profiles", "identity_map"} {
		if got[tb] != 1 {
			t.Errorf("inserts into %s = %v, want 1", tb, got[tb])
		}
	}
	want := streamCounts(0, n)
	if n := count(t, conn, "SELECT count() FROM events FINAL"); n != want.events {
		t.Errorf("events FINAL = %d, want %d", n, want.events)
	}
}

func counterValues(t *testing.T, reg *prometheus.Registry, metric string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}

// stream returns changes [from, to) of a synthetic change log: every
// change i is an event of profile p-(i%300) on one of the channels, every
// fifth an order of 1 EUR; every tenth is followed by that profile's new
// version and its identifier's mapping. Seqs are dense from from+1.
func stream(from, to int) []canon.Change {
	var out []canon.Change
	for i := from; i < to; i++ {
		pid := fmt.Sprintf("p-%d", i%300)
		anon := id(canon.AnonymousID, "a-"+pid)
		var c canon.Change
		switch {
		case i%10 == 9:
			c = profile(pid, uint64(i), int64(i/50), anon)
		case i%10 == 8:
			c = mapping(anon, pid, uint64(i))
		case i%5 == 0:
			c = sale(canon.POS, fmt.Sprintf("o-%d", i), pid, canon.KindOrder, t0.Add(time.Duration(i)*time.Minute), "EUR", 1_000_000, anon)
		default:
			ch := canon.Channels[i%len(canon.Channels)]
			c = sale(ch, fmt.Sprintf("m-%d", i), pid, canon.KindPage, t0.Add(time.Duration(i)*time.Minute), "", 0, anon)
		}
		c.Seq = uint64(i + 1)
		c.At = t0.Add(time.Duration(i) * time.Millisecond)
		out = append(out, c)
	}
	return out
}

type counts struct{ events, orders, profiles, mappings uint64 }

// streamCounts is what stream(from, to) leaves under FINAL.
func streamCounts(from, to int) counts {
	var c counts
	profiles, mappings := map[int]bool{}, map[int]bool{}
	for i := from; i < to; i++ {
		switch {
		case i%10 == 9:
			profiles[i%300] = true
		case i%10 == 8:
			mappings[i%300] = true // one row per identifier
		case i%5 == 0:
			c.events++
			c.orders++
		default:
			c.events++
		}
	}
	c.profiles, c.mappings = uint64(len(profiles)), uint64(len(mappings))
	return c
}

// A parked order (its identifiers all quarantined: no profile, no anchor)
// counts in its channel's events, orders and revenue, and as no one in
// every count of people.
func TestParkedEventIsNoOne(t *testing.T) {
	s, conn := openAnalytics(t, nil)
	parked := sale(canon.POS, "t-parked", "", canon.KindOrder, t0.Add(2*time.Hour), "USD", 1_000_000)
	if err := s.Write(t.Context(), append(salesHistory(), changes(100, parked)...)); err != nil {
		t.Fatal(err)
	}
	checkTable(t, conn, "people", namedQuery(t, "people"), []string{"2 2"})
	checkTable(t, conn, "revenue", namedQuery(t, "revenue_per_customer"), []string{"EUR 1 2 12500000 12500000", "USD 1 1 5500000 5500000"})
	checkTable(t, conn, "journeys", namedQuery(t, "journeys"), []string{"web > pos 1", "web > pos > support 1"})
	checkTable(t, conn, "top customers", namedQuery(t, "top_customers"),
		[]string{"p-a EUR 2 12500000 [pos]", "p-b USD 1 5500000 [pos]"})
	channels := slices.Clone(wantChannels)
	channels[0] = "2026-03-14 pos 3 2 3" // one more event and order, no one more
	checkTable(t, conn, "channels", namedQuery(t, "dashboard_channels"), channels)
}
