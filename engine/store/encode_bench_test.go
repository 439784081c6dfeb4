package store

import (
	stdjson "encoding/json"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/engine/profile"
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

// BenchmarkDecodeProfile decodes a stored profile of four identifiers,
// traits, consent and counters as the store reads one (canon.Decode,
// numbers as json.Number), against json.Unmarshal (numbers as float64,
// which refuses 1e400).
//
//	go test -run '^$' -bench BenchmarkDecodeProfile -benchmem -count 3 ./engine/store/
func BenchmarkDecodeProfile(b *testing.B) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	st := profile.New("prf_1", 7, 3)
	st.Level = canon.Registered
	for _, v := range []string{"a@b.io", "ada@b.io", "ada.l@b.io", "al@b.io"} {
		st.Identifiers = append(st.Identifiers, canon.ProfileIdentifier{Type: canon.Email, Value: v, Trust: canon.Verified, FirstSeen: at})
	}
	st.Traits = map[string]any{"first_name": "Ada", "last_name": "Lovelace", "age": stdjson.Number("36"), "city": "London"}
	st.TraitSources = map[string]canon.TraitSource{"first_name": {Time: at, Channel: canon.Web}, "age": {Time: at, Channel: canon.POS}}
	st.Consent = map[string]canon.ConsentState{"analytics": {Value: true, Time: at, Source: "web"}}
	st.Computed.EventsByChannel = map[canon.Channel]int64{canon.Web: 2, canon.POS: 5}
	stored, _, err := encodeState(st)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(stored)))
	b.Run("exact", func(b *testing.B) {
		for b.Loop() {
			var got profile.State
			if err := canon.Decode(stored, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("float64", func(b *testing.B) {
		for b.Loop() {
			var got profile.State
			if err := json.Unmarshal(stored, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
