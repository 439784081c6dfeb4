package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// BenchmarkEraseLongHistory erases a smart meter that reported every
// minute for about ten weeks (100,000 events filed under its device id,
// paired with a user), with the default memtable: more events than one
// Badger transaction may delete. It reports how long the erase command
// took to answer (its transaction deletes the first part) and how long
// until the writer's later transactions had deleted the rest
// (engine.Stats.Purging back to 0).
//
//	go test -run '^$' -bench BenchmarkEraseLongHistory -benchtime 1x ./bench/
func BenchmarkEraseLongHistory(b *testing.B) {
	const events = 100_000
	for b.Loop() {
		e, ctx, stop := runEngine(b, b.TempDir(), 64<<20)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		meter := canon.Observation{Identifier: canon.Identifier{Type: canon.DeviceID, Value: "meter-1"}, Trust: canon.Asserted}
		user := canon.Observation{Identifier: canon.Identifier{Type: canon.UserID, Value: "u-1"}, Trust: canon.Verified}
		batch := []canon.Event{{Channel: canon.IoT, MessageID: "pair", Kind: canon.KindDevicePaired, Time: t0, Identifiers: []canon.Observation{meter, user}}}
		for i := 1; i <= events; i++ {
			batch = append(batch, canon.Event{Channel: canon.IoT, MessageID: fmt.Sprint("t", i), Kind: canon.KindTelemetry,
				Time: t0.Add(time.Duration(i) * time.Minute), Identifiers: []canon.Observation{meter}})
			if len(batch) == 1000 || i == events {
				if err := e.Apply(ctx, canon.Batch{Events: batch}); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		p, err := e.Lookup(ctx, meter.Identifier)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := e.Do(ctx, canon.Command{Kind: canon.CmdErase, ProfileID: p.ID, Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		answered := time.Since(start)
		if res.Receipt == nil || res.Receipt.Events != events+1 {
			b.Fatalf("receipt %+v, want %d events", res.Receipt, events+1)
		}
		for e.Stats().Purging > 0 {
			time.Sleep(time.Millisecond)
		}
		purged := time.Since(start)
		stop()
		b.ReportMetric(float64(answered.Microseconds())/1000, "erase-ms")
		b.ReportMetric(float64(purged.Microseconds())/1000, "all-deleted-ms")
		b.ReportMetric(0, "ns/op")
	}
}
