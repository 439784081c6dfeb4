package clickhouse_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks"
	"github.com/spinecdp/spine/sinks/clickhouse"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func id(t canon.IDType, v string) canon.Identifier { return canon.Identifier{Type: t, Value: v} }

// changes numbers cs from seq on, as the change log would.
func changes(seq uint64, cs ...canon.Change) []canon.Change {
	for i := range cs {
		cs[i].Seq = seq + uint64(i)
		cs[i].At = t0.Add(time.Duration(i) * time.Second)
	}
	return cs
}

func event(ch canon.Channel, msg, profile string, kind canon.Kind, ids ...canon.Identifier) canon.Change {
	ev := canon.Event{Channel: ch, MessageID: msg, Kind: kind, Name: string(kind), Time: t0,
		Props: map[string]any{"page": "/pricing"}}
	for _, i := range ids {
		ev.Identifiers = append(ev.Identifiers, canon.Observation{Identifier: i, Trust: canon.Asserted})
	}
	if kind == canon.KindOrder {
		ev.Amount = &canon.Money{Currency: "EUR", Micros: 12_500_000}
	}
	return canon.Change{Kind: canon.ChangeEvent, Event: &canon.EventRecord{Event: ev, ProfileID: profile}}
}

func profile(pid string, version uint64, orders int64, ids ...canon.Identifier) canon.Change {
	p := &canon.Profile{ID: pid, Level: canon.Pseudonymous, Version: version, UpdatedAt: t0,
		Traits:   map[string]any{"first_name": "Alice", "last_name": "Liddell"},
		Computed: canon.Computed{FirstSeen: t0, LastSeen: t0.Add(time.Hour), OrderCount: orders, LifecycleStage: canon.StageLead}}
	for _, i := range ids {
		p.Identifiers = append(p.Identifiers, canon.ProfileIdentifier{Type: i.Type, Value: i.Value, Trust: canon.Asserted, FirstSeen: t0})
	}
	return canon.Change{Kind: canon.ChangeProfile, Profile: p}
}

func mapping(i canon.Identifier, pid string, version uint64) canon.Change {
	return canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: i, ProfileID: pid, Version: version}}
}

func logRec(typ canon.LogType, pid string, others []string, i *canon.Identifier) canon.Change {
	return canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{Type: typ, ProfileID: pid, Others: others, Identifier: i,
		Evidence: &canon.Evidence{Channel: canon.Web, MessageID: "m-1", Time: t0, Trust: canon.Observed}}}
}

var (
	anonA  = id(canon.AnonymousID, "a-1")
	anonB  = id(canon.AnonymousID, "a-2")
	emailA = id(canon.Email, "alice@shop.io")
	userA  = id(canon.UserID, "u-1")
	emailC = id(canon.Email, "carol@shop.io")
)

// history is a realistic stretch of change log: alice browses and buys,
// bob's anonymous profile is absorbed into hers, carol conflicts with her.
func history() []canon.Change {
	return changes(1,
		mapping(anonA, "p-zed", 1), // a-1 first belonged to another profile
		event(canon.Web, "m-1", "p-alice", canon.KindPage, anonA),
		mapping(anonA, "p-alice", 2),
		profile("p-alice", 1, 0, anonA),
		event(canon.Web, "m-2", "p-bob", canon.KindPage, anonB),
		mapping(anonB, "p-bob", 1),
		profile("p-bob", 1, 0, anonB),
		event(canon.POS, "t-9", "p-alice", canon.KindOrder, emailA),
		event(canon.CIAM, "c-3", "p-alice", canon.KindRegistered, userA, emailA, anonB),
		mapping(emailA, "p-alice", 1),
		mapping(userA, "p-alice", 1),
		mapping(anonB, "p-alice", 2),
		logRec(canon.LogLink, "p-alice", nil, &emailA),
		logRec(canon.LogMerge, "p-alice", []string{"p-bob"}, nil),
		canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "p-bob", Reason: "absorbed", Survivor: "p-alice"}},
		profile("p-alice", 2, 1, anonA, anonB, emailA, userA),
		event(canon.Support, "s-7", "p-carol", canon.KindTicketOpened, emailC),
		mapping(emailC, "p-carol", 1),
		profile("p-carol", 1, 0, emailC),
		logRec(canon.LogConflict, "p-carol", []string{"p-alice"}, &emailC),
	)
}

var tables = []string{"events", "profiles", "identity_map", "merges"}

func TestMigrateTwice(t *testing.T) {
	s, conn := openSink(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	applied, err := s.Applied(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("Applied() is empty after Migrate")
	}
	if n := count(t, conn, "SELECT count() FROM schema_migrations"); n != uint64(len(applied)) {
		t.Errorf("schema_migrations has %d rows, want %d (one per migration, applied once)", n, len(applied))
	}
	got := strings1(t, conn, "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
	want := []string{"accounts", "events", "events_daily", "events_daily_mv", "events_resolved", "identity_map", "merges", "profiles", "recount_requests",
		"rollup_channel_daily", "rollup_consent_daily", "rollup_identity_daily", "rollup_lifecycle_daily", "schema_migrations"}
	if !slices.Equal(got, want) {
		t.Errorf("tables = %v, want %v", got, want)
	}
}

func TestWrite(t *testing.T) {
	s, conn := openSink(t)
	if err := s.Write(t.Context(), history()); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Records read back from the log after newer ones replaced them are
	// skipped.
	superseded := changes(100, canon.Change{Kind: canon.ChangeEvent, Superseded: true}, canon.Change{Kind: canon.ChangeProfile, Superseded: true})
	if err := s.Write(t.Context(), superseded); err != nil {
		t.Fatalf("Write of superseded records: %v", err)
	}
	want := map[string]uint64{"events": 5, "profiles": 3, "identity_map": 5, "merges": 3}
	for _, tb := range tables {
		if n := count(t, conn, "SELECT count() FROM "+tb+" FINAL"); n != want[tb] {
			t.Errorf("%s FINAL has %d rows, want %d", tb, n, want[tb])
		}
	}
	var version uint64
	var orders int64
	var email, first string
	err := conn.QueryRow(t.Context(), "SELECT version, order_count, email, first_name FROM profiles FINAL WHERE profile_id = 'p-alice'").
		Scan(&version, &orders, &email, &first)
	if err != nil {
		t.Fatal(err)
	}
	if version != 2 || orders != 1 || email != emailA.Value || first != "Alice" {
		t.Errorf("p-alice = version %d, orders %d, email %q, first_name %q; want 2, 1, %q, Alice", version, orders, email, first, emailA.Value)
	}
	if got := strings1(t, conn, "SELECT merged_into FROM profiles FINAL WHERE profile_id = 'p-bob' AND deleted = 1"); !slices.Equal(got, []string{"p-alice"}) {
		t.Errorf("p-bob merged_into = %v, want [p-alice]", got)
	}
	if got := strings1(t, conn, "SELECT profile_id FROM identity_map FINAL WHERE id_type = 'anonymous_id' ORDER BY id_value"); !slices.Equal(got, []string{"p-alice", "p-alice"}) {
		t.Errorf("anonymous ids map to %v, want both to p-alice", got)
	}
	var micros int64
	var currency string
	if err := conn.QueryRow(t.Context(), "SELECT amount_micros, currency FROM events FINAL WHERE message_id = 't-9'").Scan(&micros, &currency); err != nil {
		t.Fatal(err)
	}
	if micros != 12_500_000 || currency != "EUR" {
		t.Errorf("order amount = %d %s, want 12500000 EUR", micros, currency)
	}
	// Milliseconds survive in both dialects.
	ms := "toUInt16(toUnixTimestamp64Milli(event_time) % 1000)"
	if s.Dialect() == "legacy" {
		ms = "event_time_ms"
	}
	if n := count(t, conn, "SELECT count() FROM events FINAL WHERE "+ms+" = 589"); n != 5 {
		t.Errorf("%d events keep the event time's 589 ms, want 5", n)
	}
}

func TestWriteReplay(t *testing.T) {
	s, conn := openSink(t)
	h := history()
	if err := s.Write(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	before := map[string]uint64{}
	for _, tb := range tables {
		before[tb] = count(t, conn, "SELECT count() FROM "+tb+" FINAL")
	}
	// The whole batch again, then an overlapping tail, as the runner
	// replays after a crash.
	if err := s.Write(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), h[10:]); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if n := count(t, conn, "SELECT count() FROM "+tb+" FINAL"); n != before[tb] {
			t.Errorf("%s FINAL has %d rows after replay, want %d", tb, n, before[tb])
		}
	}
	if n := count(t, conn, "SELECT toUInt64(sum(amount_micros)) FROM events FINAL"); n != 12_500_000 {
		t.Errorf("revenue after replay = %d micros, want 12500000", n)
	}
}

func TestErase(t *testing.T) {
	s, conn := openSink(t)
	if err := s.Write(t.Context(), history()); err != nil {
		t.Fatal(err)
	}
	erased := []string{"p-alice", "p-bob"}
	// The erasure batch as the engine would commit it. The event before the
	// erase is alice's too and must go with her; the erase record after it
	// must stay: it is the receipt and holds only hashes.
	hash := id(canon.Email, "hmac:9f2c")
	batch := changes(100,
		event(canon.CIAM, "c-9", "p-alice", canon.KindErasure, userA),
		mapping(anonA, "", 3),
		mapping(anonB, "", 3),
		mapping(emailA, "", 2),
		mapping(userA, "", 2),
		canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "p-alice", Reason: "erased"}},
		canon.Change{Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: erased, Hashes: []string{"9f2c"}, At: t0}},
		logRec(canon.LogErase, "p-alice", nil, &hash),
	)
	for range 2 { // erasure is replayed like any batch
		if err := s.Write(t.Context(), batch); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.WaitMutations(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		// Physical rows, not FINAL: nothing of hers may be left anywhere.
		q := "SELECT count() FROM " + tb + " WHERE profile_id IN ('p-alice', 'p-bob')"
		if tb == "merges" {
			q = "SELECT count() FROM merges WHERE type != 'erase' AND (profile_id IN ('p-alice', 'p-bob') OR hasAny(others, ['p-alice', 'p-bob']))"
		}
		if n := count(t, conn, q); n != 0 {
			t.Errorf("%s has %d rows of the erased profiles, want 0", tb, n)
		}
	}
	if n := count(t, conn, "SELECT count() FROM merges FINAL WHERE type = 'erase'"); n != 1 {
		t.Errorf("merges FINAL has %d erase records, want 1", n)
	}
	// a-1 once mapped to p-zed: removal by value must not let that old row
	// resurface once her current row is gone.
	if n := count(t, conn, "SELECT count() FROM identity_map WHERE id_value IN ('a-1', 'a-2', 'alice@shop.io', 'u-1')"); n != 0 {
		t.Errorf("identity_map keeps %d rows of erased identifiers, want 0", n)
	}
	if n := count(t, conn, "SELECT count() FROM merges WHERE id_value = 'alice@shop.io'"); n != 0 {
		t.Errorf("merges keeps %d rows naming an erased identifier, want 0", n)
	}
	// Mutation text is kept by the server: it must not hold erased values.
	if n := count(t, conn, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND position(command, 'alice@shop.io') > 0"); n != 0 {
		t.Errorf("%d mutations name an erased value", n)
	}
	// Carol is untouched but for the conflict record naming alice.
	if n := count(t, conn, "SELECT count() FROM events FINAL WHERE profile_id = 'p-carol'"); n != 1 {
		t.Errorf("carol has %d events, want 1", n)
	}
	if n := count(t, conn, "SELECT count() FROM identity_map FINAL WHERE profile_id = 'p-carol'"); n != 1 {
		t.Errorf("carol has %d identity_map rows, want 1", n)
	}
}

func TestValueHashMatchesServer(t *testing.T) {
	_, conn := openSink(t)
	for _, v := range []string{"", "a", "alice@shop.io", "+15555550100", strings.Repeat("x", 300), "it's \\ 'quoted'"} {
		var got uint64
		if err := conn.QueryRow(t.Context(), "SELECT cityHash64("+clickhouse.Quote(v)+")").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := clickhouse.ValueHash(v); got != want {
			t.Errorf("server cityHash64(%q) = %d, sink computes %d", v, got, want)
		}
	}
}

func TestOpenDeadAddressIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg := clickhouse.DefaultConfig(addr)
	cfg.DialTimeout = time.Second
	_, err = clickhouse.Open(t.Context(), cfg, nil, nil)
	if err == nil || !sinks.IsRetryable(err) {
		t.Fatalf("Open(dead address) = %v, want a retryable error", err)
	}
}

// TestWriteOutageIsRetryable cuts the network between the sink and the
// server mid-life: Write must report a retryable error, not a fatal one.
func TestWriteOutageIsRetryable(t *testing.T) {
	addr := serverAddr(t)
	p := newSwitchProxy(t, addr)
	cfg := testConfig(t, addr)
	cfg.Addr = p.addr()
	cfg.DialTimeout = time.Second
	cfg.ReadTimeout = 2 * time.Second
	s, err := clickhouse.Open(t.Context(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.close()
	err = s.Write(t.Context(), history())
	if err == nil || !sinks.IsRetryable(err) {
		t.Fatalf("Write during outage = %v, want a retryable error", err)
	}
	if !strings.HasPrefix(err.Error(), "clickhouse: insert events:") {
		t.Errorf("Write error = %q, want it prefixed with clickhouse: insert events:", err)
	}
}

func TestSchemaErrorIsNotRetryable(t *testing.T) {
	s, conn := openSink(t)
	if err := conn.Exec(t.Context(), "DROP TABLE merges"); err != nil {
		t.Fatal(err)
	}
	err := s.Write(t.Context(), history())
	if err == nil || sinks.IsRetryable(err) {
		t.Fatalf("Write to a missing table = %v, want a non-retryable error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := clickhouse.Config{Database: "spine; DROP", Dialect: "oracle"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, want := range []string{"Addr", "Database", "Dialect", "MaxOpenConns", "MaxBatch", "MaxInsertRows"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to mention %s", err, want)
		}
	}
	if err := clickhouse.DefaultConfig("127.0.0.1:9000").Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

// TestProfileVersionsCoalesce writes three versions of a profile in one
// batch: only the newest becomes a row, and FINAL answers it.
func TestProfileVersionsCoalesce(t *testing.T) {
	s, conn := openSink(t)
	a := id(canon.Email, "coalesce@shop.io")
	if err := s.Write(t.Context(), changes(300, profile("p-co", 1, 0, a), profile("p-co", 2, 1, a), profile("p-co", 3, 2, a))); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM profiles WHERE profile_id = 'p-co'"); n != 1 {
		t.Errorf("%d rows for three versions in one batch, want 1", n)
	}
	if n := count(t, conn, "SELECT count() FROM profiles FINAL WHERE profile_id = 'p-co' AND version = 3 AND order_count = 2"); n != 1 {
		t.Errorf("the newest version is not the row kept")
	}
}
