package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/clickhouse"
	"github.com/spinecdp/spine/sinks/clickhouse/clickhousetest"
)

// Erasure through the engine's change log into a real ClickHouse (found
// via SPINE_TEST_CLICKHOUSE): what the engine emits must be enough for
// the sink to delete every row of the person.

// clickhouseSink opens the ClickHouse sink on a fresh database, and
// returns it with a function that runs a count query there.
func clickhouseSink(t *testing.T) (*clickhouse.Sink, func(q string) uint64) {
	s, count, _ := clickhouseSinkConn(t)
	return s, count
}

// clickhouseSinkConn is clickhouseSink that also returns a function
// running a statement in the sink's database.
func clickhouseSinkConn(t *testing.T) (*clickhouse.Sink, func(q string) uint64, func(q string)) {
	t.Helper()
	cfg := sinkConfig(t, clickhousetest.Database("spine_engine_"))
	addr := cfg.Addr
	s, err := clickhouse.Open(t.Context(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, Auth: ch.Auth{Database: cfg.Database}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = conn.Close()
		_ = s.Close(context.Background())
	})
	return s, func(q string) uint64 {
			t.Helper()
			var n uint64
			if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}, func(q string) {
			t.Helper()
			if err := conn.Exec(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
}

// sinkConfig is the tests' sink configuration for database: roll-ups
// recounted after every batch.
func sinkConfig(t *testing.T, database string) clickhouse.Config {
	cfg := clickhouse.DefaultConfig(clickhousetest.Addr(t))
	cfg.Database = database
	cfg.Dialect = clickhouse.DialectAuto
	cfg.RollupInterval = 0
	return cfg
}

// writeChanges hands the engine's change log to the sink, one commit (the
// records of one commit time) per batch, as the sink loop would, and waits
// for the deletions to be applied.
func writeChanges(t *testing.T, s *clickhouse.Sink, cs []canon.Change) {
	t.Helper()
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && cs[j].At.Equal(cs[i].At) {
			j++
		}
		if err := s.Write(t.Context(), cs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.WaitMutations(ctx); err != nil {
		t.Fatal(err)
	}
}

// X is merged into registered Y through a shared tablet, the link is
// removed, and X is erased: X's rows go from every table, including the
// event X made while merged (filed under Y's profile id) and its
// identity-map rows, and the daily roll-up counts Y's events only.
func TestErasureAfterSplitInClickHouse(t *testing.T) {
	s, count := clickhouseSink(t)
	e := openWith(t, nil)
	apply(t, e, ev(canon.Web, "x1", canon.KindIdentify, 1, obs(canon.AnonymousID, "a1"), obs(canon.Email, "xavier@mail.io")))
	apply(t, e, ev(canon.Mobile, "y1", canon.KindLogin, 2, obs(canon.UserID, "u2"), obs(canon.DeviceID, "tablet")))
	// Three days later: a day of its own, which only X's rows fill.
	apply(t, e, ev(canon.Mobile, "x2", canon.KindScreen, 3*24*60, obs(canon.Email, "xavier@mail.io"), obs(canon.DeviceID, "tablet")))
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "xavier@mail.io"), B: id(canon.DeviceID, "tablet")}})
	x := lookup(t, e, canon.Email, "xavier@mail.io")
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: x.ID})
	writeChanges(t, s, changes(t, e))

	for _, q := range []string{
		"SELECT count() FROM identity_map WHERE id_value IN ('xavier@mail.io', 'a1')",
		"SELECT count() FROM events WHERE message_id IN ('x1', 'x2')",
		"SELECT count() FROM events_daily WHERE message_id IN ('x1', 'x2')",
	} {
		if n := count(q); n != 0 {
			t.Errorf("after erasing X: %s = %d", q, n)
		}
	}
	if n := count("SELECT count() FROM events WHERE message_id = 'y1'"); n != 1 {
		t.Errorf("Y's event rows: %d, want 1", n)
	}
	if n := count("SELECT toUInt64(sum(events)) FROM rollup_channel_daily FINAL"); n != 1 {
		t.Errorf("the roll-up counts %d events, want Y's 1", n)
	}
}

// A person who withdrew analytics consent (the default opt-out policy)
// gets no identifier of theirs into ClickHouse after the withdrawal: no
// identity-map row for a new email, and identity-log rows (merges) with
// the identifier's type only.
func TestWithheldPersonIdentifiersStayOutOfClickHouse(t *testing.T) {
	s, count := clickhouseSink(t)
	e := openWith(t, nil)
	apply(t, e, ev(canon.Web, "w1", canon.KindIdentify, 1, obs(canon.UserID, "u1")))
	apply(t, e, ev(canon.Mobile, "m1", canon.KindScreen, 2, obs(canon.DeviceID, "phone-1")))
	p := lookup(t, e, canon.UserID, "u1")
	do(t, e, canon.Command{Kind: canon.CmdConsent, ProfileID: p.ID, Consent: map[string]bool{"analytics": false}})
	apply(t, e, ev(canon.Web, "w2", canon.KindIdentify, 3, obs(canon.UserID, "u1"), obs(canon.Email, "new@mail.io")))
	apply(t, e, ev(canon.Mobile, "m2", canon.KindLogin, 4, obs(canon.UserID, "u1"), obs(canon.DeviceID, "phone-1")))
	writeChanges(t, s, changes(t, e))

	for _, q := range []string{
		"SELECT count() FROM identity_map WHERE id_value IN ('new@mail.io', 'phone-1') AND profile_id = '" + p.ID + "'",
		"SELECT count() FROM merges WHERE id_value != '' AND profile_id = '" + p.ID + "'",
		"SELECT count() FROM events WHERE message_id IN ('w2', 'm2')",
	} {
		if n := count(q); n != 0 {
			t.Errorf("withheld person: %s = %d", q, n)
		}
	}
	if n := count("SELECT count() FROM merges WHERE type = 'merge' AND profile_id = '" + p.ID + "' AND id_type = 'device_id'"); n != 1 {
		t.Errorf("the merge of the phone into the withheld profile: %d rows, want 1 without the value", n)
	}
	// Before the withdrawal, rows were written as usual.
	if n := count("SELECT count() FROM identity_map WHERE id_value = 'u1'"); n == 0 {
		t.Error("no identity-map row of u1 from before the withdrawal")
	}
}

// A sink that reads the change log after a restart reads the stored log,
// whose event and profile records refer to the state: the rows it writes
// to ClickHouse carry the events whole (properties included) and the
// newest profile, and an erased person's events and profiles come back
// without payload, so they never reach the sink at all.
func TestStoredLogIntoClickHouse(t *testing.T) {
	s, count := clickhouseSink(t)
	dir := t.TempDir()
	e, stop := start(t, dir, "t")
	x := ev(canon.Web, "x1", canon.KindTrack, 1, obs(canon.Email, "xavier@mail.io"))
	x.Props = map[string]any{"plan": "x-secret"}
	y := ev(canon.Web, "y1", canon.KindTrack, 2, obs(canon.Email, "yuri@mail.io"))
	// Numbers stay as ingest keeps them (json.Number), also those a
	// float64 cannot hold, through the stored log into ClickHouse.
	y.Props = map[string]any{"plan": "pro", "big": json.Number("1e400")}
	yid := ev(canon.Web, "y0", canon.KindIdentify, 1, obs(canon.Email, "yuri@mail.io"))
	yid.Traits = map[string]any{"score": json.Number("1e400")}
	apply(t, e, x, yid, y)
	apply(t, e, ev(canon.POS, "y2", canon.KindOrder, 3, obs(canon.Email, "yuri@mail.io")))
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: lookup(t, e, canon.Email, "xavier@mail.io").ID})
	yuri := lookup(t, e, canon.Email, "yuri@mail.io")
	stop()

	e = open(t, dir, "t") // the in-memory window is empty after a restart
	cs := changes(t, e)
	superseded := 0
	for _, c := range cs {
		if c.Superseded {
			superseded++
		}
		if c.Event != nil && c.Event.MessageID == "x1" {
			t.Errorf("the erased person's event came back from the stored log: %+v", c.Event)
		}
		if c.Profile != nil && c.Profile.ID != yuri.ID {
			t.Errorf("profile %s (not Yuri's) came back from the stored log", c.Profile.ID)
		}
	}
	// Xavier's event and profile, and Yuri's first profile version.
	if superseded < 3 {
		t.Errorf("%d records came back superseded, want at least 3", superseded)
	}
	writeChanges(t, s, cs)
	if n := count("SELECT count() FROM events FINAL WHERE message_id = 'y1' AND properties LIKE '%\"plan\":\"pro\"%' AND profile_id = '" + yuri.ID + "'"); n != 1 {
		t.Errorf("Yuri's event row with its properties: %d, want 1", n)
	}
	if n := count("SELECT count() FROM events WHERE message_id IN ('y1', 'y2')"); n != 2 {
		t.Errorf("Yuri's event rows: %d, want 2", n)
	}
	if n := count("SELECT count() FROM events FINAL WHERE message_id = 'y1' AND properties LIKE '%\"big\":1e400%'"); n != 1 {
		t.Errorf("Yuri's event row with its number beyond float64: %d, want 1", n)
	}
	if n := count(fmt.Sprintf("SELECT count() FROM profiles FINAL WHERE profile_id = '%s' AND profile LIKE '%%\"score\":1e400%%'", yuri.ID)); n != 1 {
		t.Errorf("Yuri's profile row with its trait beyond float64: %d, want 1", n)
	}
	if n := count("SELECT count() FROM events WHERE message_id = 'x1' OR properties LIKE '%x-secret%'"); n != 0 {
		t.Errorf("the erased person's event rows: %d, want 0", n)
	}
	if n := count(fmt.Sprintf("SELECT count() FROM profiles FINAL WHERE profile_id = '%s' AND version = %d AND order_count = 1", yuri.ID, yuri.Version)); n != 1 {
		t.Errorf("Yuri's newest profile row: %d, want 1", n)
	}
}

// A batch with an erasure that fails after some of its deletions were
// submitted (here the accounts table, the last one deleted from, is away)
// is written again, by the sink loop or, after a restart, by the next
// process's sink: either finds the person's event rows gone, and must
// still recount their days.
func TestErasureRetryRecountsRollups(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("restart=", restart), func(t *testing.T) {
			s, count, exec := clickhouseSinkConn(t)
			e := openWith(t, nil)
			apply(t, e, ev(canon.Web, "x1", canon.KindOrder, 1, obs(canon.Email, "xavier@mail.io")))
			apply(t, e, ev(canon.Web, "y1", canon.KindOrder, 2, obs(canon.Email, "yuri@mail.io")))
			before := changes(t, e)
			writeChanges(t, s, before)
			if n := count("SELECT toUInt64(sum(events)) FROM rollup_channel_daily FINAL"); n != 2 {
				t.Fatalf("setup: the roll-up counts %d events", n)
			}
			x := lookup(t, e, canon.Email, "xavier@mail.io")
			do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: x.ID})
			batch := changes(t, e)[len(before):]

			exec("RENAME TABLE accounts TO accounts_away")
			if err := s.Write(t.Context(), batch); err == nil {
				t.Fatal("the write with the accounts table away succeeded")
			}
			exec("RENAME TABLE accounts_away TO accounts")
			// The submitted deletions run in the background.
			for deadline := time.Now().Add(30 * time.Second); count("SELECT count() FROM events_daily WHERE message_id = 'x1'") != 0; {
				if time.Now().After(deadline) {
					t.Fatal("setup: the first attempt's deletions did not run")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if restart {
				next, err := clickhouse.Open(t.Context(), sinkConfig(t, s.Database()), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer next.Close(context.Background())
				s = next
			}
			writeChanges(t, s, batch)
			if n := count("SELECT toUInt64(sum(events)) FROM rollup_channel_daily FINAL"); n != 1 {
				t.Errorf("after the erasure written again the roll-up counts %d events, want 1", n)
			}
		})
	}
}

// An order carrying only a quarantined value (the store's number typed at
// the till) reaches ClickHouse as nobody's: its row has no profile and no
// anchor, events_resolved gives it to no profile, and the channel's
// roll-up still counts the order.
func TestParkedEventInClickHouse(t *testing.T) {
	s, count := clickhouseSink(t)
	e := openWith(t, nil)
	phone := "+14155550100"
	for n := 1; n <= 6; n++ {
		apply(t, e, ev(canon.POS, fmt.Sprint("v", n), canon.KindOrder, n, obs(canon.LoyaltyID, fmt.Sprint("L", n))))
		apply(t, e, ev(canon.POS, fmt.Sprint("t", n), canon.KindOrder, 100+n, obs(canon.Phone, phone), obs(canon.LoyaltyID, fmt.Sprint("L", n))))
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("setup: quarantined %+v", qs)
	}
	apply(t, e, ev(canon.POS, "p1", canon.KindOrder, 200, obs(canon.Phone, phone)))
	writeChanges(t, s, changes(t, e))

	if n := count("SELECT count() FROM events FINAL WHERE message_id = 'p1' AND profile_id = '' AND anchor_type = '' AND anchor_hash = 0"); n != 1 {
		t.Errorf("the parked order's row: %d rows without profile and anchor, want 1", n)
	}
	if n := count("SELECT count() FROM events_resolved WHERE message_id = 'p1' AND profile_id != ''"); n != 0 {
		t.Errorf("events_resolved gives the parked order to a profile (%d rows)", n)
	}
	if n := count("SELECT toUInt64(sum(orders)) FROM rollup_channel_daily FINAL WHERE channel = 'pos'"); n != 13 {
		t.Errorf("the pos roll-up counts %d orders, want all 13, the parked one included", n)
	}
}

// A family address glues eleven visitors until their distinct first names
// quarantine it; the visits filed under it go to each visitor's cookie.
// Their rows in ClickHouse follow: each visit is on its visitor, anchored
// on the cookie, and erasing one visitor leaves no copy of their visit,
// not even the first row, written under the address and the glued profile.
func TestRefiledEventsInClickHouse(t *testing.T) {
	s, count := clickhouseSink(t)
	e := openWith(t, nil)
	for i := range 11 {
		x := ev(canon.Web, fmt.Sprint("n", i), canon.KindIdentify, i, obs(canon.Email, "family@x.io"), obs(canon.AnonymousID, fmt.Sprint("c", i)))
		x.Traits = map[string]any{"first_name": fmt.Sprint("Name", i)}
		apply(t, e, x)
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("setup: quarantined %+v", qs)
	}
	// One batch, so both rows of each visit are in one part that no merge
	// collapses before the erasure (ClickHouse 18.16 keeps both at insert).
	before := changes(t, e)
	if err := s.Write(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		p := lookup(t, e, canon.AnonymousID, fmt.Sprint("c", i))
		q := fmt.Sprintf("SELECT count() FROM events FINAL WHERE message_id = 'n%d' AND profile_id = '%s' AND anchor_type = 'anonymous_id'", i, p.ID)
		if n := count(q); n != 1 {
			t.Errorf("visit n%d: %d rows on its visitor's profile and cookie, want 1", i, n)
		}
	}

	victim := lookup(t, e, canon.AnonymousID, "c3")
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: victim.ID})
	writeChanges(t, s, changes(t, e)[len(before):])
	for _, table := range []string{"events", "events_daily"} {
		if n := count("SELECT count() FROM " + table + " WHERE message_id = 'n3'"); n != 0 {
			t.Errorf("after erasing visitor 3: %d rows of their visit in %s, want 0", n, table)
		}
		if n := count("SELECT count() FROM " + table + " FINAL WHERE message_id = 'n4'"); n != 1 {
			t.Errorf("after erasing visitor 3: visitor 4's visit has %d rows in %s, want 1", n, table)
		}
	}
}

// ClickHouse away while Xavier is erased, and the change log trimmed past
// the erasure before it is back: the erasure kept for it (store.TrimLog)
// still takes every row of Xavier's, his identity-map row included.
func TestAbsentSinkErasureInClickHouse(t *testing.T) {
	s, count := clickhouseSink(t)
	feed := func(e *engine.Engine) {
		t.Helper()
		got := readAllChanges(t, e, "clickhouse")
		if len(got) == 0 {
			return
		}
		writeChanges(t, s, got)
		if err := e.Ack(t.Context(), "clickhouse", got[len(got)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	cfg := backlogConfig(t)
	e, stop := startCfg(t, cfg, quietLog)
	apply(t, e, ev(canon.Web, "x1", canon.KindTrack, 1, obs(canon.Email, "xavier@mail.io")),
		ev(canon.Web, "y1", canon.KindTrack, 2, obs(canon.Email, "yuri@mail.io")))
	x := lookup(t, e, canon.Email, "xavier@mail.io")
	feed(e)
	if n := count("SELECT count() FROM identity_map FINAL WHERE profile_id = '" + x.ID + "'"); n != 1 {
		t.Fatalf("setup: Xavier's identity-map rows: %d", n)
	}
	time.Sleep(200 * time.Millisecond) // the ack is stored
	stop()

	eraseWhileAway(t, cfg, x.ID)

	cfg.Sinks = []string{"kafka", "clickhouse"}
	e, stop = startCfg(t, cfg, quietLog)
	defer stop()
	feed(e) // the kept erasure
	feed(e) // the log after the trim
	if n := count("SELECT count() FROM events WHERE message_id = 'x1'"); n != 0 {
		t.Errorf("Xavier's event rows: %d, want 0", n)
	}
	if n := count("SELECT count() FROM identity_map WHERE id_value = 'xavier@mail.io' OR profile_id = '" + x.ID + "'"); n != 0 {
		t.Errorf("Xavier's identity-map rows: %d, want 0", n)
	}
	if n := count("SELECT count() FROM events WHERE message_id = 'y1'"); n != 1 {
		t.Errorf("Yuri's event rows: %d, want 1", n)
	}
}
