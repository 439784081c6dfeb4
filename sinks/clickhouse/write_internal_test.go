package clickhouse

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
)

func TestSupersededProfiles(t *testing.T) {
	prof := func(id string) canon.Change {
		return canon.Change{Kind: canon.ChangeProfile, Profile: &canon.Profile{ID: id}}
	}
	del := func(id string) canon.Change {
		return canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: id}}
	}
	ev := canon.Change{Kind: canon.ChangeEvent, Event: &canon.EventRecord{ProfileID: "a"}}
	erase := canon.Change{Kind: canon.ChangeErase, Erase: &canon.Erasure{ProfileIDs: []string{"z"}}}
	for _, c := range []struct {
		name  string
		batch []canon.Change
		want  []int
	}{
		{"one version each", []canon.Change{prof("a"), ev, prof("b")}, nil},
		{"older versions go", []canon.Change{prof("a"), prof("b"), ev, prof("a"), prof("a")}, []int{0, 3}},
		{"a deletion keeps what came before it", []canon.Change{prof("a"), del("a"), prof("a"), prof("a")}, []int{2}},
		{"another profile's deletion does not", []canon.Change{prof("a"), del("b"), prof("a")}, []int{0}},
		{"a batch with an erasure is written whole", []canon.Change{prof("a"), prof("a"), erase}, nil},
		{"empty", nil, nil},
	} {
		got := slices.Sorted(maps.Keys(supersededProfiles(c.batch)))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: superseded %v, want %v", c.name, got, c.want)
		}
	}
}

// The properties column takes the engine's encoding when the change
// carries it, and encodes the map when the change was read back from
// storage without it.
func TestEventRowProperties(t *testing.T) {
	props := map[string]any{"plan": "pro", "a": map[string]any{"y": 1.0, "x": true}}
	const sorted = `{"a":{"x":true,"y":1},"plan":"pro"}`
	col := func(c *canon.Change) any {
		r := eventRow(schemas.Modern, c)
		i := slices.Index(r.names, "properties")
		if i < 0 {
			t.Fatal("no properties column")
		}
		return r.vals[i]
	}
	ev := &canon.EventRecord{Event: canon.Event{Channel: canon.Web, MessageID: "m", Kind: canon.KindTrack, Props: props}}
	if got := col(&canon.Change{Kind: canon.ChangeEvent, Event: ev}); got != sorted {
		t.Errorf("encoded here: %v", got)
	}
	// The carried bytes win: they are what the engine stored.
	if got := col(&canon.Change{Kind: canon.ChangeEvent, Event: ev, RawProps: []byte(`{"plan":"pro"}`)}); got != `{"plan":"pro"}` {
		t.Errorf("carried: %v", got)
	}
	if got := col(&canon.Change{Kind: canon.ChangeEvent, Event: &canon.EventRecord{}}); got != "" {
		t.Errorf("no properties: %q", got)
	}
}

// BenchmarkEventRow builds an events row from a change that carries its
// properties' JSON (from the engine's window) and from one that does not
// (read back from storage), for the same typical web event.
//
//	go test -run '^$' -bench BenchmarkEventRow -benchmem -count 3 ./sinks/clickhouse/
func BenchmarkEventRow(b *testing.B) {
	props := map[string]any{"product_id": "sku-123", "price": 19.99, "currency": "EUR", "category": "shoes",
		"context": map[string]any{"ip": "192.0.2.1", "user_agent": "Mozilla/5.0"}}
	rec := &canon.EventRecord{Event: canon.Event{Channel: canon.Web, MessageID: "0d9f7a3e-1c2b-4e5f-8a9b-123456789abc", Kind: canon.KindTrack,
		Name: "Product Viewed", Identifiers: []canon.Observation{{Identifier: canon.Identifier{Type: canon.AnonymousID, Value: "a-123456789"}}},
		Props: props}, ProfileID: "prf_1", Anchor: canon.Identifier{Type: canon.AnonymousID, Value: "a-123456789"}}
	raw := []byte(jsonString(props))
	for _, tc := range []struct {
		name string
		c    canon.Change
	}{
		{"carried", canon.Change{Seq: 1, Kind: canon.ChangeEvent, Event: rec, RawProps: raw}},
		{"encoded", canon.Change{Seq: 1, Kind: canon.ChangeEvent, Event: rec}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				_ = eventRow(schemas.Modern, &tc.c)
			}
		})
	}
}

// A parked event (no profile: its identifiers were all quarantined) gets
// no anchor, so the identity map resolves it to no one.
func TestParkedEventRowHasNoAnchor(t *testing.T) {
	phone := canon.Identifier{Type: canon.Phone, Value: "+14155550100"}
	rec := &canon.EventRecord{Event: canon.Event{Channel: canon.POS, MessageID: "p1", Kind: canon.KindOrder,
		Identifiers: []canon.Observation{{Identifier: phone}}}, Anchor: phone}
	r := eventRow(schemas.Modern, &canon.Change{Kind: canon.ChangeEvent, Event: rec})
	at, ah := r.vals[slices.Index(r.names, "anchor_type")], r.vals[slices.Index(r.names, "anchor_hash")]
	if at != "" || ah != uint64(0) {
		t.Errorf("parked event anchored on %v/%v", at, ah)
	}
	rec.ProfileID = "prf_1"
	r = eventRow(schemas.Modern, &canon.Change{Kind: canon.ChangeEvent, Event: rec})
	if at := r.vals[slices.Index(r.names, "anchor_type")]; at != string(canon.Phone) {
		t.Errorf("an event of a profile anchored on %v", at)
	}
}

// TestRowColumns checks that each kind of row fits the room newRow gives
// it, in both dialects, so that building one never regrows its slices,
// and that the room is not larger than the row.
func TestRowColumns(t *testing.T) {
	c := &canon.Change{Event: &canon.EventRecord{}, Profile: &canon.Profile{}, Delete: &canon.Deletion{},
		Mapping: &canon.Mapping{}, Log: &canon.LogRecord{}}
	for _, d := range []schemas.Dialect{schemas.Modern, schemas.Legacy} {
		prof, err := profileRow(d, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			kind string
			row  *row
			room int
		}{
			{"event", eventRow(d, c), eventCols},
			{"profile", prof, profileCols},
			{"deletion", deletionRow(d, c), profileCols},
			{"mapping", mappingRow(d, c), mappingCols},
			{"log", logRow(d, c), logCols},
			{"account", accountRow(d, 1, time.Time{}, &account{}), accountCols},
		} {
			// Legacy splits each time in two: its rows fill the room.
			n := len(r.row.names)
			if n > r.room || (d == schemas.Legacy && n != r.room) || len(r.row.vals) != n {
				t.Errorf("%s: %s row has %d columns, room for %d", d, r.kind, n, r.room)
			}
			if cap(r.row.names) != r.room || cap(r.row.vals) != r.room {
				t.Errorf("%s: %s row regrew its slices", d, r.kind)
			}
		}
	}
}
