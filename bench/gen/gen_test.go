package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

func streamHash(t *testing.T, cfg Config) ([32]byte, []byte) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		fmt.Fprintf(h, "%s|%s|%d|%s|%v|", m.Topic, m.Key, m.Person, m.Time.Format(time.RFC3339Nano), m.Duplicate)
		h.Write(m.Value)
	}
	var truth bytes.Buffer
	if err := g.WriteTruth(&truth); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil)), truth.Bytes()
}

func TestDeterminism(t *testing.T) {
	cfg := hardConfig(500)
	h1, t1 := streamHash(t, cfg)
	h2, t2 := streamHash(t, cfg)
	if h1 != h2 {
		t.Errorf("same seed gave different streams")
	}
	if !bytes.Equal(t1, t2) {
		t.Errorf("same seed gave different truth")
	}
	cfg.Seed++
	h3, t3 := streamHash(t, cfg)
	if h3 == h1 || bytes.Equal(t3, t1) {
		t.Errorf("different seeds gave the same output")
	}
}

var (
	segmentTypes = []string{"identify", "track", "page", "screen", "alias", "group"}
	iotEvents    = []string{"device_paired", "device_unpaired", "telemetry", "alert"}
	supportEvts  = []string{"ticket_opened", "ticket_closed", "refund_issued", "csat_submitted"}
	ciamEvents   = []string{"registered", "login", "email_verified", "phone_verified", "account_linked",
		"account_unlinked", "profile_updated", "consent_updated", "erasure_requested"}
)

// checkRequired holds each channel's message to DESIGN section 5.
func checkRequired(t *testing.T, m Message, p parsed) {
	t.Helper()
	d := p.doc
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s message %s: %s", m.Channel, m.Value, fmt.Sprintf(format, args...))
	}
	if p.id == "" {
		fail("no id")
	}
	if ts := parseTime(t, str(d, "timestamp")); !ts.Equal(m.Time) {
		fail("timestamp %v, Message.Time %v", ts, m.Time)
	}
	if len(p.ids) == 0 {
		fail("no usable identifier")
	}
	switch m.Channel {
	case canon.Web, canon.Mobile:
		typ := str(d, "type")
		if !slices.Contains(segmentTypes, typ) {
			fail("type %q", typ)
		}
		if str(d, "anonymousId") == "" && str(d, "userId") == "" {
			fail("neither anonymousId nor userId")
		}
		if m.Channel == canon.Mobile && str(d, "context", "device", "id") == "" {
			fail("no context.device.id")
		}
		if typ == "track" && str(d, "event") == "" || typ == "alias" && str(d, "previousId") == "" {
			fail("incomplete %s", typ)
		}
		if str(d, "event") == "Order Completed" && (p.cur == "" || p.amount <= 0) {
			fail("order without revenue/total and currency")
		}
	case canon.IoT:
		ev := str(d, "event")
		if !slices.Contains(iotEvents, ev) || str(d, "device_serial") == "" {
			fail("event %q / no device_serial", ev)
		}
		if ev == "device_paired" && str(d, "owner_user_id") == "" {
			fail("pairing without owner")
		}
	case canon.POS:
		if str(d, "store_id") == "" || p.kind == "" || p.cur == "" || p.amount <= 0 {
			fail("incomplete transaction")
		}
		if items, _ := d["items"].([]any); len(items) == 0 {
			fail("no items")
		}
	case canon.Support:
		ev := str(d, "event")
		if !slices.Contains(supportEvts, ev) || str(d, "ticket_id") == "" {
			fail("event %q / no ticket_id", ev)
		}
		if ev == "csat_submitted" && (p.csat < 1 || p.csat > 5) {
			fail("csat %d", p.csat)
		}
		if ev == "refund_issued" && (p.amount <= 0 || p.cur == "") {
			fail("refund without amount")
		}
	case canon.CIAM:
		if ev := str(d, "event"); !slices.Contains(ciamEvents, ev) || str(d, "user_id") == "" {
			fail("event %q / no user_id", ev)
		}
	}
}

// TestMessages checks every message against its channel contract, and that
// every message marked DLQ really is one.
func TestMessages(t *testing.T) {
	g, msgs := collect(t, hardConfig(2000))
	tr := g.Truth()
	junk, shared := junkSet(tr), sharedSet(tr)
	seen := map[canon.Channel]int{}
	var dlq, late int
	lastTime := map[int]time.Time{}
	for _, m := range msgs {
		if m.Topic != "spine."+string(m.Channel) {
			t.Errorf("topic %q for channel %s", m.Topic, m.Channel)
		}
		if len(m.Key) == 0 {
			t.Errorf("empty key")
		}
		p, err := parseMessage(t, m, junk, shared)
		if m.Person == DLQ {
			dlq++
			if err == nil && p.id != "" && len(p.ids) > 0 {
				t.Errorf("DLQ message is valid: %s", m.Value)
			}
			continue
		}
		if err != nil {
			t.Fatalf("message does not parse: %v: %s", err, m.Value)
		}
		checkRequired(t, m, p)
		seen[m.Channel]++
		if m.Person >= 0 && !m.Duplicate {
			if last, ok := lastTime[m.Person]; ok && m.Time.Before(last) {
				late++
			}
			if m.Time.After(lastTime[m.Person]) {
				lastTime[m.Person] = m.Time
			}
		}
	}
	for _, ch := range canon.Channels {
		if seen[ch] == 0 {
			t.Errorf("no %s messages", ch)
		}
	}
	if dlq == 0 || late == 0 {
		t.Errorf("hard mode: %d DLQ messages, %d late events; want some of each", dlq, late)
	}
	t.Logf("%d messages, by channel %v, %d DLQ, %d late", len(msgs), seen, dlq, late)
}

// TestTruthRecount recomputes the truth from the emitted bytes alone.
func TestTruthRecount(t *testing.T) {
	g, msgs := collect(t, hardConfig(3000))
	tr := g.Truth()
	junk, shared := junkSet(tr), sharedSet(tr)
	got := map[int]*PersonTruth{}
	ids := map[int]map[canon.Identifier]bool{}
	consentAt := map[int]map[string]time.Time{}
	for _, m := range msgs {
		if m.Person < 0 || m.Duplicate {
			continue
		}
		p, err := parseMessage(t, m, junk, shared)
		if err != nil {
			t.Fatal(err)
		}
		pt := got[m.Person]
		if pt == nil {
			x := newPersonTruth(m.Person)
			pt = &x
			got[m.Person], ids[m.Person], consentAt[m.Person] = pt, map[canon.Identifier]bool{}, map[string]time.Time{}
		}
		pt.count(m.Channel, m.Time)
		for _, id := range p.ids {
			ids[m.Person][id] = true
		}
		switch p.kind {
		case "order":
			pt.OrderCount++
			pt.TotalSpend[p.cur] += p.amount
		case "return":
			pt.ReturnTotal[p.cur] += p.amount
		case "refund":
			pt.RefundCount++
			pt.RefundTotal[p.cur] += p.amount
		case "ticket":
			pt.TicketsOpened++
		case "csat":
			pt.CSATSum += p.csat
			pt.CSATCount++
		case "consent":
			if pt.Consent == nil {
				pt.Consent = map[string]bool{}
			}
			for k, v := range p.consent {
				if !m.Time.Before(consentAt[m.Person][k]) {
					pt.Consent[k], consentAt[m.Person][k] = v, m.Time
				}
			}
		}
	}
	if len(tr.Persons) != 3000 {
		t.Fatalf("truth has %d persons", len(tr.Persons))
	}
	owner := map[canon.Identifier]int{}
	for _, want := range tr.Persons {
		pt := got[want.Person]
		if pt == nil {
			if len(want.EventsByChannel) != 0 {
				t.Errorf("person %d: truth has events, stream has none", want.Person)
			}
			continue
		}
		for id := range ids[want.Person] {
			pt.Identifiers = append(pt.Identifiers, id)
			if o, ok := owner[id]; ok {
				t.Errorf("identifier %s belongs to persons %d and %d", id, o, want.Person)
			}
			owner[id] = want.Person
		}
		sortIDs(pt.Identifiers)
		pt.Level = want.Level
		if !reflect.DeepEqual(*pt, want) {
			t.Errorf("person %d:\n recount %+v\n truth   %+v", want.Person, *pt, want)
		}
		if has := slices.ContainsFunc(want.Identifiers, func(i canon.Identifier) bool { return i.Type == canon.UserID }); has != (want.Level.Rank() >= 2) {
			t.Errorf("person %d: level %s with user_id=%v", want.Person, want.Level, has)
		}
	}
	st := g.Stats()
	st.Persons = tr.Totals.Persons
	if st != tr.Totals {
		t.Errorf("Stats() = %+v, Truth().Totals = %+v", st, tr.Totals)
	}
	var orphanEvents int64
	for _, o := range tr.Orphans {
		orphanEvents += o.EventsByChannel[canon.IoT]
	}
	var orphanMsgs int64
	for _, m := range msgs {
		if m.Person == NoPerson && !m.Duplicate {
			orphanMsgs++
		}
	}
	if orphanEvents != orphanMsgs || orphanMsgs == 0 {
		t.Errorf("orphan events: truth %d, stream %d", orphanEvents, orphanMsgs)
	}
}

// TestTruthResolvable checks that every person's identifiers are connected
// through co-occurrence in that person's own messages: the truth never asks
// Spine to link what the stream gives no evidence for.
func TestTruthResolvable(t *testing.T) {
	g, msgs := collect(t, hardConfig(2000))
	tr := g.Truth()
	junk, shared := junkSet(tr), sharedSet(tr)
	parent := map[canon.Identifier]canon.Identifier{}
	var find func(canon.Identifier) canon.Identifier
	find = func(x canon.Identifier) canon.Identifier {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	for _, m := range msgs {
		if m.Person < 0 {
			continue
		}
		p, _ := parseMessage(t, m, junk, shared)
		for _, id := range p.ids[min(1, len(p.ids)):] {
			parent[find(id)] = find(p.ids[0])
		}
	}
	for _, pt := range tr.Persons {
		if len(pt.Identifiers) == 0 {
			continue
		}
		root := find(pt.Identifiers[0])
		for _, id := range pt.Identifiers[1:] {
			if find(id) != root {
				t.Errorf("person %d: %s is not linked to %s by any message", pt.Person, id, pt.Identifiers[0])
			}
		}
	}
	levels := map[canon.Level]int{}
	for _, pt := range tr.Persons {
		levels[pt.Level]++
	}
	t.Logf("levels %v, %d shared, %d orphans", levels, len(tr.Shared), len(tr.Orphans))
	for _, l := range []canon.Level{canon.Anonymous, canon.Pseudonymous, canon.Registered, canon.VerifiedUser} {
		if levels[l] == 0 {
			t.Errorf("no %s persons", l)
		}
	}
}

func TestDuplicatesAndIDs(t *testing.T) {
	_, msgs := collect(t, hardConfig(2000))
	type key struct {
		ch canon.Channel
		id string
	}
	first := map[key][]byte{}
	var dups int
	for _, m := range msgs {
		if m.Person == DLQ {
			continue
		}
		p, err := parseMessage(t, m, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		k := key{m.Channel, p.id}
		prev, seen := first[k]
		switch {
		case m.Duplicate && !seen:
			t.Errorf("duplicate %s before its original", p.id)
		case m.Duplicate:
			dups++
			if !bytes.Equal(prev, m.Value) {
				t.Errorf("duplicate %s differs from its original", p.id)
			}
		case seen:
			t.Errorf("message id %s used twice on %s", p.id, m.Channel)
		default:
			first[k] = m.Value
		}
	}
	if dups == 0 {
		t.Errorf("hard mode produced no duplicates")
	}
}

// TestJunk checks that junk values appear in the stream, only as junk, and
// that a store's shared phone is really shared.
func TestJunk(t *testing.T) {
	g, msgs := collect(t, hardConfig(3000))
	tr := g.Truth()
	junk := junkSet(tr)
	for _, p := range slices.Concat(tr.Persons, tr.Orphans) {
		for _, id := range p.Identifiers {
			if junk[id] {
				t.Errorf("junk %s is an identifier of person %d", id, p.Person)
			}
		}
	}
	usedBy := map[canon.Identifier]map[int]bool{}
	for _, m := range msgs {
		if m.Person < 0 {
			continue
		}
		p, _ := parseMessage(t, m, junk, sharedSet(tr))
		for _, id := range p.junk {
			if usedBy[id] == nil {
				usedBy[id] = map[int]bool{}
			}
			usedBy[id][m.Person] = true
		}
	}
	types := map[canon.IDType]bool{}
	var sharedStorePhone bool
	for id, persons := range usedBy {
		types[id.Type] = true
		if id.Type == canon.Phone && len(persons) > 1 {
			sharedStorePhone = true
		}
	}
	for _, typ := range []canon.IDType{canon.AnonymousID, canon.Email, canon.DeviceID, canon.Phone} {
		if !types[typ] {
			t.Errorf("no junk %s in the stream", typ)
		}
	}
	if !sharedStorePhone {
		t.Errorf("no store phone used by two persons")
	}
	if len(tr.Shared) == 0 {
		t.Errorf("no shared family tablet")
	}
	for _, s := range tr.Shared {
		if len(s.Persons) != 2 || tr.Persons[s.Persons[0]].Level.Rank() < 2 || tr.Persons[s.Persons[1]].Level.Rank() < 2 {
			t.Errorf("shared %s: persons %v are not two registered persons", s.Identifier, s.Persons)
		}
	}
}

func TestWriteReadTruth(t *testing.T) {
	g, err := New(hardConfig(300))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := g.WriteTruth(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTruth(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := g.Truth()
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("ReadTruth(WriteTruth) differs from Truth")
	}
}

func TestChannels(t *testing.T) {
	cfg := hardConfig(300)
	cfg.Channels = []canon.Channel{canon.POS, canon.Support}
	g, msgs := collect(t, cfg)
	for _, m := range msgs {
		if m.Channel != canon.POS && m.Channel != canon.Support {
			t.Fatalf("message on disabled channel %s", m.Channel)
		}
	}
	for _, p := range g.Truth().Persons {
		for ch := range maps.Keys(p.EventsByChannel) {
			if ch != canon.POS && ch != canon.Support {
				t.Fatalf("truth counts disabled channel %s", ch)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Persons: -1, Channels: []canon.Channel{"fax", canon.Web, canon.Web}, Window: -1, Journey: time.Minute}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"persons", `"fax"`, "twice", "window", "journey", "start", "topic prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to mention %s", err, want)
		}
	}
	if _, err := New(Config{Persons: 10}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

// TestWindowBounded checks that the generator holds at most Window+1
// persons, whatever Persons is.
func TestWindowBounded(t *testing.T) {
	cfg := hardConfig(6_000)
	cfg.Window = 100
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ok := g.Next(); ok; _, ok = g.Next() {
		n++
	}
	if g.Peak() > cfg.Window+1 {
		t.Errorf("peak %d persons active, window %d", g.Peak(), cfg.Window)
	}
	t.Logf("%d messages, peak %d active", n, g.Peak())
}

// TestMemoryBounded streams 200k persons and watches the heap.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200k persons")
	}
	cfg := hardConfig(200_000)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const bound = 256 << 20
	var ms runtime.MemStats
	var peak uint64
	n := 0
	for _, ok := g.Next(); ok; _, ok = g.Next() {
		if n++; n%250_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			if ms.HeapInuse > bound {
				t.Fatalf("after %d messages HeapInuse is %d MB", n, ms.HeapInuse>>20)
			}
		}
	}
	t.Logf("%d messages, peak HeapInuse %d MB, peak %d persons active", n, peak>>20, g.Peak())
}

func BenchmarkGenerate(b *testing.B) {
	// More persons than any run reaches: the stream never runs dry.
	cfg := hardConfig(5_000_000)
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for b.Loop() {
		m, ok := g.Next()
		if !ok {
			b.Fatal("stream exhausted")
		}
		bytes += int64(len(m.Value))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "B/msg")
}
