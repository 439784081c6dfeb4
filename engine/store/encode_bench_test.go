package store

import (
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// BenchmarkEncodeEvent encodes a typical web event with properties as the
// store files it: the properties apart, spliced into the event (what a
// change record carries for the ClickHouse sink), against the event in one
// piece (marshal, what EncodeEvent did before).
//
//	go test -run '^$' -bench BenchmarkEncodeEvent -benchmem -count 3 ./engine/store/
func BenchmarkEncodeEvent(b *testing.B) {
	e := canon.Event{Channel: canon.Web, MessageID: "0d9f7a3e-1c2b-4e5f-8a9b-123456789abc", Kind: canon.KindTrack, Name: "Product Viewed",
		Time:        time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		Identifiers: []canon.Observation{{Identifier: canon.Identifier{Type: canon.AnonymousID, Value: "a-123456789"}, Trust: canon.Observed}},
		Props: map[string]any{"product_id": "sku-123", "price": 19.99, "currency": "EUR", "category": "shoes",
			"context": map[string]any{"ip": "192.0.2.1", "user_agent": "Mozilla/5.0"}}}
	b.Run("spliced", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeEvent(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if _, err := marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
