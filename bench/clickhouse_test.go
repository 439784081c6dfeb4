package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/clickhouse"
	"github.com/spinecdp/spine/sinks/clickhouse/clickhousetest"
)

// The ClickHouse sink against a real server (SPINE_TEST_CLICKHOUSE, e.g.
// from deploy/clickhouse.sh), on a database of its own that is dropped
// afterwards:
//
//	go test -run '^$' -bench ClickHouse -benchtime 20x ./bench/
//
// BenchmarkClickHouseWrite measures throughput on full runner batches
// (5000 changes, as sinks.Run reads them under backlog), roll-up refresh
// included. BenchmarkClickHouseDelay streams changes at a fixed rate
// through the sinks.Run loop shape and reports the delay from each
// change's commit (canon.Change.At) to the moment a query sees its batch.

// openClickHouse opens and migrates a sink on a fresh database.
func openClickHouse(b *testing.B) (*clickhouse.Sink, driver.Conn) {
	b.Helper()
	addr := clickhousetest.Addr(b)
	cfg := clickhouse.DefaultConfig(addr)
	cfg.Database = clickhousetest.Database("spine_bench_")
	cfg.Dialect = clickhouse.DialectAuto
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	s, err := clickhouse.Open(b.Context(), cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	return s, conn
}

// changeGen makes a realistic change log: each accepted event is followed
// by its profile's new version, and one event in five brings an
// identifier the profile did not have (a mapping). Events spread over the
// six channels and over 50,000 people; one in eight is an order.
type changeGen struct {
	seq  uint64
	base time.Time
}

func (g *changeGen) next(n int, at func() time.Time) []canon.Change {
	out := make([]canon.Change, 0, n)
	for len(out) < n {
		g.seq++
		i := g.seq
		person := i * 7919 % 50_000
		pid := fmt.Sprintf("p-%08d", person)
		ch := canon.Channels[i%uint64(len(canon.Channels))]
		anon := canon.Identifier{Type: canon.AnonymousID, Value: fmt.Sprintf("anon-%08d", person)}
		email := canon.Identifier{Type: canon.Email, Value: fmt.Sprintf("person%d@shop.io", person)}
		ev := canon.Event{
			Channel: ch, MessageID: fmt.Sprintf("%s-%010d", ch, i), Kind: canon.KindPage, Name: "Page Viewed",
			Time:        g.base.Add(time.Duration(i) * time.Second),
			Identifiers: []canon.Observation{{Identifier: anon, Trust: canon.Observed}, {Identifier: email, Trust: canon.Asserted}},
			Props:       map[string]any{"path": "/products/42", "referrer": "https://search.example/q?x=shoes", "campaign": "spring"},
		}
		if i%8 == 0 {
			ev.Kind, ev.Name = canon.KindOrder, "Order Completed"
			ev.Amount = &canon.Money{Currency: "EUR", Micros: int64(10_000_000 + i%9_000_000)}
		}
		out = append(out, canon.Change{Seq: i, Kind: canon.ChangeEvent, At: at(),
			Event: &canon.EventRecord{Event: ev, ProfileID: pid}})
		if len(out) < n && i%5 == 0 {
			g.seq++
			out = append(out, canon.Change{Seq: g.seq, Kind: canon.ChangeMapping, At: at(),
				Mapping: &canon.Mapping{Identifier: email, ProfileID: pid, Version: i}})
		}
		if len(out) < n {
			g.seq++
			p := &canon.Profile{
				ID: pid, Level: canon.Pseudonymous, Version: i, UpdatedAt: ev.Time,
				Identifiers: []canon.ProfileIdentifier{{Type: anon.Type, Value: anon.Value, Trust: canon.Observed, FirstSeen: g.base},
					{Type: email.Type, Value: email.Value, Trust: canon.Asserted, FirstSeen: g.base}},
				Traits: map[string]any{"first_name": "Jane", "last_name": "Doe", "email": email.Value, "plan": "gold"},
				Computed: canon.Computed{FirstSeen: g.base, LastSeen: ev.Time, Channels: []canon.Channel{ch},
					EventsByChannel: map[canon.Channel]int64{ch: int64(i % 40)}, OrderCount: int64(i % 5),
					TotalSpend: canon.Amounts{"EUR": 129_900_000}, LastChannel: ch, LifecycleStage: canon.StageLead,
					Lifecycle: map[string]time.Time{canon.StageVisitor: g.base, canon.StageLead: ev.Time}},
				Consent: map[string]canon.ConsentState{"analytics": {Value: true, Time: g.base, Source: "web"}},
			}
			out = append(out, canon.Change{Seq: g.seq, Kind: canon.ChangeProfile, At: at(), Profile: p})
		}
	}
	return out
}

func BenchmarkClickHouseWrite(b *testing.B) {
	s, _ := openClickHouse(b)
	g := &changeGen{base: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	const batch = 5000
	now := func() time.Time { return time.Now() }
	var changes int
	for b.Loop() {
		b.StopTimer()
		cs := g.next(batch, now)
		b.StartTimer()
		if err := s.Write(b.Context(), cs); err != nil {
			b.Fatal(err)
		}
		changes += len(cs)
	}
	b.ReportMetric(float64(changes)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op") // per-batch time is not the figure of interest
}

func BenchmarkClickHouseDelay(b *testing.B) {
	for _, rate := range []int{2_000, 20_000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			s, conn := openClickHouse(b)
			var delays []time.Duration
			var written int
			var elapsed time.Duration
			for b.Loop() {
				d, n, e := streamDelay(b, s, conn, rate, 5*time.Second)
				delays, written, elapsed = append(delays, d...), written+n, elapsed+e
			}
			slices.Sort(delays)
			q := func(p float64) float64 {
				return float64(delays[int(p*float64(len(delays)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
			b.ReportMetric(float64(written)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// streamDelay commits changes at rate per second for d, as the engine would,
// while a loop shaped like sinks.Run takes whatever is committed (up to
// 5000) and writes it. After each Write it asks the server for the batch's
// last event, which is the moment an analyst could see the whole batch;
// every change's delay is that moment minus its commit time.
func streamDelay(b *testing.B, s *clickhouse.Sink, conn driver.Conn, rate int, d time.Duration) ([]time.Duration, int, time.Duration) {
	g := &changeGen{base: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	start := time.Now()
	var pending []canon.Change
	var delays []time.Duration
	committed, written := 0, 0
	for time.Since(start) < d || len(pending) > 0 {
		// Commit what the rate allows by now; commit times are spread
		// evenly, as if the engine had committed them one by one.
		if due := min(int(time.Since(start).Seconds()*float64(rate)), int(d.Seconds())*rate); due > committed {
			n := due - committed
			base := committed
			k := 0
			pending = append(pending, g.next(n, func() time.Time {
				t := start.Add(time.Duration(float64(base+k) / float64(rate) * float64(time.Second)))
				k++
				return t
			})...)
			committed = due
		}
		if len(pending) == 0 {
			time.Sleep(time.Millisecond) // the engine's Read blocks likewise
			continue
		}
		batch := pending[:min(len(pending), 5000)]
		if err := s.Write(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		if ev := lastEvent(batch); ev != nil {
			var n uint64
			err := conn.QueryRow(b.Context(), "SELECT count() FROM "+dbOf(s)+".events WHERE channel = ? AND message_id = ?",
				string(ev.Channel), ev.MessageID).Scan(&n)
			if err != nil || n == 0 {
				b.Fatalf("batch not visible after Write: %d rows, %v", n, err)
			}
		}
		seen := time.Now()
		for _, c := range batch {
			delays = append(delays, seen.Sub(c.At))
		}
		written += len(batch)
		pending = pending[len(batch):]
	}
	return delays, written, time.Since(start)
}

func lastEvent(batch []canon.Change) *canon.EventRecord {
	for i := len(batch) - 1; i >= 0; i-- {
		if batch[i].Event != nil {
			return batch[i].Event
		}
	}
	return nil
}

// dbOf is the sink's database; the benchmark's query connection has none.
func dbOf(s *clickhouse.Sink) string { return s.Database() }
