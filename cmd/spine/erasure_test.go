package main

// The erasure proof: people are erased in the middle of a multi-channel
// stream, the stream goes on (with the erased people's late events among
// it), every channel topic is replayed from the start, and none of them is
// found again in the API, in Badger, on the spine.profiles topic or in
// ClickHouse, while the customer who shared a family tablet with two of
// them keeps everything, and nobody's counts move. DESIGN section 7.
//
// Three subtests report what an erasure leaves beyond the person's
// identifiers, profiles and rows: their profile ids in other records
// (conflicts, quarantine counters, B2B accounts), roll-ups that still count
// them, and their values in the identity log. They run on what the main
// test gathered, so each can be read (and tracked) on its own.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/dgraph-io/badger/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks/clickhouse/clickhousetest"
)

// erasureWait bounds the waits that involve ClickHouse, whose mutations run
// in the background on the server.
const erasureWait = 30 * time.Second

// Phases of the erasure stream. Each is produced and applied before the
// next, so that who owns the family tablet, and which profile absorbs
// which, does not depend on how partitions interleave.
const (
	erFound = iota // each person's first messages; the tablet owner's tablet use
	erMain         // the rest of the early stream: stitching, merges, tablet conflicts
	erErase        // the CIAM erasure request
	erRest         // after the erasures: everyone else goes on; the erased people's late events
	erTie          // a late event ties a profile made of a never-seen identifier to an erased person
)

// How a person is erased.
const (
	erKept       = ""
	erByAPI      = "POST /v1/profiles/{id}/erase"
	erByCIAM     = "CIAM erasure_requested"
	erByAbsorbed = "POST /v1/profiles/{absorbed id}/erase"
)

// erReplayed is the suffix of the message ids of a replay past the dedup
// window.
const erReplayed = "-replayed"

// erasureMsg is one message of the stream.
type erasureMsg struct {
	e2eMsg
	id    string // its message id, as written in its value
	phase int
	// apart marks a message that lands in a profile of its own (an
	// anonymous browser session never linked before the erasure).
	apart bool
}

// erasurePerson is one real person of the stream.
type erasurePerson struct {
	tag    string // message ids are tag-NN; no identifier contains it
	name   string
	erase  string
	marker string // a last name: personal data that is not an identifier
	level  canon.Level
	msgs   []erasureMsg
	base   time.Time
}

func (p *erasurePerson) add(phase int, ch canon.Channel, format string, args ...any) {
	p.addMsg(phase, false, ch, format, args...)
}

// addMsg appends a message. format's first verb is the message id and its
// second the event time, which the helper supplies; args follow.
func (p *erasurePerson) addMsg(phase int, apart bool, ch canon.Channel, format string, args ...any) {
	n := len(p.msgs)
	id := fmt.Sprintf("%s-%02d", p.tag, n)
	at := p.base.Add(time.Duration(n) * 37 * time.Second)
	if phase >= erRest && p.erase != erKept {
		// A late event: another channel delivers it days after it happened.
		at = p.base.Add(-72*time.Hour + time.Duration(n)*time.Second)
	}
	v := fmt.Appendf(nil, format, append([]any{id, at.Format(time.RFC3339)}, args...)...)
	p.msgs = append(p.msgs, erasureMsg{e2eMsg: e2eMsg{ch: ch, key: []byte(p.tag), value: v}, id: id, phase: phase, apart: apart})
}

// erasureStream builds the persons. Three are erased (one by the API, one by
// the CIAM, one by the id of a profile it absorbed); two of them log in on
// the family tablet of a registered customer, who must survive.
func erasureStream() []*erasurePerson {
	base := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	var ps []*erasurePerson
	person := func(tag, name, erase, marker string, level canon.Level) *erasurePerson {
		p := &erasurePerson{tag: tag, name: name, erase: erase, marker: marker, level: level,
			base: base.Add(time.Duration(len(ps)) * 10 * time.Minute)}
		if tag == "e3" {
			// A day of her own: nobody else's events refresh its roll-ups.
			p.base = base.Add(-24 * time.Hour)
		}
		ps = append(ps, p)
		return p
	}
	const tablet = "TAB-FAMILY-7100"

	// Carla owns the family tablet: she used it first, and everything she
	// does on it later must still count once the others are erased.
	c := person("c0", "Carla (tablet owner)", erKept, "", canon.Registered)
	c.add(erFound, canon.CIAM, `{"event_id":"%s","timestamp":"%s","event":"registered","user_id":"u-carla-7100","email":"Carla.Tablet7100@family-mail.net","traits":{"first_name":"Carla"}}`)
	c.add(erFound, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","userId":"u-carla-7100","name":"Home","context":{"device":{"id":"%s"}}}`, tablet)
	c.add(erMain, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"anon-carla-7100","userId":"u-carla-7100"}`)
	c.add(erMain, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"30.00","currency":"eur","loyalty_id":"LOY-CARLA-7100","email":"carla.tablet7100@family-mail.net"}`)
	c.add(erRest, canon.Mobile, `{"type":"track","messageId":"%s","timestamp":"%s","userId":"u-carla-7100","event":"Order Completed","properties":{"revenue":"12.50","currency":"eur"},"context":{"device":{"id":"%s"}}}`, tablet)
	c.add(erRest, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","anonymousId":"anon-carla-7100","name":"Cart","context":{"device":{"id":"%s"}}}`, tablet)
	c.add(erRest, canon.IoT, `{"message_id":"%s","timestamp":"%s","event":"telemetry","device_serial":"%s","metrics":{"battery":0.5}}`, tablet)

	// Erin is erased through the API. Her profile absorbed her anonymous
	// web profile; she logged in on the family tablet (a refused link); a
	// second anonymous browser session of hers stays a profile of its own
	// until a late event ties it to her.
	e1 := person("e1", "Erin (erased by the API)", erByAPI, "Falkenrath", "")
	e1.add(erFound, canon.CIAM, `{"event_id":"%s","timestamp":"%s","event":"registered","user_id":"u-erin-5501","email":"Erin.Falkenrath@mailbox-e1.net","phone":"+16502530155","traits":{"first_name":"Erin","last_name":"Falkenrath"},"consent":{"analytics":true}}`)
	e1.add(erFound, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501","name":"Home"}`)
	e1.add(erMain, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501","userId":"u-erin-5501","traits":{"email":"erin.falkenrath@mailbox-e1.net","lastName":"Falkenrath"}}`)
	e1.add(erMain, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","userId":"u-erin-5501","name":"Home","context":{"device":{"id":"%s"}}}`, tablet)
	e1.add(erMain, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"88.00","currency":"usd","loyalty_id":"LOY-ERIN-5501","email":"erin.falkenrath@mailbox-e1.net","card_fingerprint":"fp_erin5501"}`)
	e1.add(erMain, canon.Support, `{"event_id":"%s","timestamp":"%s","ticket_id":"T-E1","event":"ticket_opened","crm_contact_id":"CRM-ERIN-5501","email":"erin.falkenrath@mailbox-e1.net","medium":"chat"}`)
	e1.add(erMain, canon.Web, `{"type":"group","messageId":"%s","timestamp":"%s","userId":"u-erin-5501","groupId":"grp-acme","traits":{"name":"Acme"}}`)
	e1.addMsg(erMain, true, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501-b","name":"Pricing"}`)
	e1.add(erRest, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501-late","name":"Home"}`)
	e1.add(erTie, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501-late","userId":"u-erin-5501"}`)
	e1.add(erTie, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501-late","name":"Home"}`)
	e1.add(erRest, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"anon-erin-5501-b","userId":"u-erin-5501"}`)
	e1.add(erRest, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","userId":"u-erin-5501","name":"Orders","context":{"device":{"id":"%s"}}}`, tablet)
	e1.add(erRest, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"9.00","currency":"usd","email":"erin.new5501@mailbox-e1.net","card_fingerprint":"fp_erin5501"}`)

	// Ezra asks the CIAM to erase him. He also used the family tablet.
	e2 := person("e2", "Ezra (erased by the CIAM)", erByCIAM, "Quennell", "")
	e2.add(erFound, canon.CIAM, `{"event_id":"%s","timestamp":"%s","event":"registered","user_id":"u-ezra-6602","email":"ezra.quennell@mailbox-e2.net","traits":{"first_name":"Ezra","last_name":"Quennell"}}`)
	e2.add(erMain, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","userId":"u-ezra-6602","name":"Home","context":{"device":{"id":"%s"}}}`, tablet)
	e2.add(erMain, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"anon-ezra-6602","userId":"u-ezra-6602"}`)
	e2.add(erMain, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"19.90","currency":"eur","loyalty_id":"LOY-EZRA-6602","email":"ezra.quennell@mailbox-e2.net"}`)
	e2.add(erErase, canon.CIAM, `{"event_id":"%s","timestamp":"%s","event":"erasure_requested","user_id":"u-ezra-6602"}`)
	e2.add(erRest, canon.Support, `{"event_id":"%s","timestamp":"%s","ticket_id":"T-E2","event":"ticket_opened","crm_contact_id":"CRM-EZRA-6602-NEW","email":"ezra.quennell@mailbox-e2.net","medium":"voice"}`)
	e2.add(erRest, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","userId":"u-ezra-6602","anonymousId":"anon-ezra-6602-late","name":"Home","context":{"device":{"id":"%s"}}}`, tablet)

	// Elif browsed anonymously and bought in store as two profiles; her
	// registration merged them. She is erased by the id of the absorbed one.
	e3 := person("e3", "Elif (erased by an absorbed id)", erByAbsorbed, "Marchetti", "")
	e3.add(erFound, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"anon-elif-7703","name":"Home"}`)
	e3.add(erFound, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"45.00","currency":"eur","loyalty_id":"LOY-ELIF-7703","email":"elif.marchetti@mailbox-e3.net"}`)
	e3.add(erMain, canon.CIAM, `{"event_id":"%s","timestamp":"%s","event":"registered","user_id":"u-elif-7703","email":"Elif.Marchetti@mailbox-e3.net","anonymous_id":"anon-elif-7703","traits":{"first_name":"Elif","last_name":"Marchetti"}}`)
	e3.add(erMain, canon.Support, `{"event_id":"%s","timestamp":"%s","ticket_id":"T-E3","event":"ticket_opened","email":"elif.marchetti@mailbox-e3.net","medium":"email"}`)
	e3.add(erRest, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"anon-elif-7703-late","userId":"u-elif-7703"}`)
	e3.add(erRest, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"5.00","currency":"eur","loyalty_id":"LOY-ELIF-7703","card_fingerprint":"fp_elif7703_new"}`)

	// Sixteen people who share nothing with anyone. Every fifth is an
	// anonymous visitor; one is in the same B2B account as Erin.
	for i := range 16 {
		p := person(fmt.Sprintf("p%02d", i), fmt.Sprintf("person %d", i), erKept, "", canon.Registered)
		anon := fmt.Sprintf("anon-plain-%02d", i)
		if i%5 == 3 {
			p.level = canon.Anonymous
			p.add(erFound, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"%s","name":"Home"}`, anon)
			p.add(erMain, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"%s","name":"Sale"}`, anon)
			p.add(erRest, canon.Web, `{"type":"page","messageId":"%s","timestamp":"%s","anonymousId":"%s","name":"Cart"}`, anon)
			continue
		}
		u, email, dev := fmt.Sprintf("u-plain-%02d", i), fmt.Sprintf("plain.%02d@shop-erasure.net", i), fmt.Sprintf("DEV-PLAIN-%02d", i)
		cents := 1000 + i*7
		p.add(erFound, canon.CIAM, `{"event_id":"%s","timestamp":"%s","event":"registered","user_id":"%s","email":"%s"}`, u, email)
		p.add(erMain, canon.Web, `{"type":"identify","messageId":"%s","timestamp":"%s","anonymousId":"%s","userId":"%s"}`, anon, u)
		p.add(erMain, canon.Web, `{"type":"track","messageId":"%s","timestamp":"%s","userId":"%s","event":"Order Completed","properties":{"revenue":"%d.%02d","currency":"eur"}}`, u, cents/100, cents%100)
		p.add(erMain, canon.Mobile, `{"type":"screen","messageId":"%s","timestamp":"%s","userId":"%s","name":"Home","context":{"device":{"id":"%s"}}}`, u, dev)
		if i == 1 {
			p.add(erMain, canon.Web, `{"type":"group","messageId":"%s","timestamp":"%s","userId":"%s","groupId":"grp-acme"}`, u)
		}
		p.add(erRest, canon.IoT, `{"message_id":"%s","timestamp":"%s","event":"telemetry","device_serial":"%s","metrics":{"temp_c":20}}`, dev)
		p.add(erRest, canon.POS, `{"transaction_id":"%s","timestamp":"%s","type":"purchase","total":"%d.%02d","currency":"eur","email":"%s"}`, cents/100, cents%100, email)
		p.add(erRest, canon.Support, `{"event_id":"%s","timestamp":"%s","ticket_id":"T-%s","event":"ticket_opened","email":"%s","medium":"chat"}`, p.tag, email)
	}
	return ps
}

// erasureDecoded is what the engine must make of one person's messages.
type erasureDecoded struct {
	ids    []canon.Identifier // every normalized identifier of every message
	events map[canon.Channel]int64
	orders int64
	spend  canon.Amounts
}

// decode runs every message of p through the channel decoders (a fixture
// that does not decode is a fixture bug) and gathers the identifiers and
// counts the engine must end up with.
func (p *erasurePerson) decode(t *testing.T, decs map[canon.Channel]ingest.Decoder, phases ...int) erasureDecoded {
	t.Helper()
	out := erasureDecoded{events: map[canon.Channel]int64{}, spend: canon.Amounts{}}
	for _, m := range p.msgs {
		if !slices.Contains(phases, m.phase) {
			continue
		}
		ev, err := decs[m.ch](m.value)
		if err != nil {
			t.Fatalf("%s: fixture %s does not decode: %v", p.name, m.value, err)
		}
		if ev.MessageID != m.id {
			t.Fatalf("%s: fixture %s: message id %q, want %q", p.name, m.value, ev.MessageID, m.id)
		}
		for _, o := range ev.Identifiers {
			if !slices.Contains(out.ids, o.Identifier) {
				out.ids = append(out.ids, o.Identifier)
			}
		}
		if ev.Kind == canon.KindErasure {
			continue
		}
		out.events[m.ch]++
		if ev.Kind == canon.KindOrder && ev.Amount != nil {
			out.orders++
			out.spend[ev.Amount.Currency] += ev.Amount.Micros
		}
	}
	return out
}

func (p *erasurePerson) phase(ph int) []e2eMsg {
	var out []e2eMsg
	for _, m := range p.msgs {
		if m.phase == ph {
			out = append(out, m.e2eMsg)
		}
	}
	return out
}

// erasureCH returns the ClickHouse server of the integration tests and a
// fresh database name, dropped when the test ends (after the engine stops).
func erasureCH(t *testing.T) (addr, db string) {
	t.Helper()
	addr = clickhousetest.Addr(t)
	db = clickhousetest.Database("spine_erasure_")
	t.Cleanup(func() {
		conn, err := chgo.Open(&chgo.Options{Addr: []string{addr}})
		if err != nil {
			t.Errorf("drop %s: %v", db, err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), erasureWait)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	})
	return addr, db
}

// post POSTs to path with the admin token and decodes a 200 answer into out.
func (s *e2eSpine) post(path string, out any) int {
	t := s.t
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST %s: decode %s: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

// mustLookup is lookup that fails the test on 404.
func (s *e2eSpine) mustLookup(what string, id canon.Identifier) canon.Profile {
	s.t.Helper()
	p, ok := s.lookup(id)
	if !ok {
		s.t.Fatalf("%s: no profile holds %s %s", what, id.Type, id.Value)
	}
	return p
}

// waitSinks waits until every sink acknowledged every change record.
func (s *e2eSpine) waitSinks() {
	s.t.Helper()
	e2eWaitFor(s.t, "sinks caught up (backlog 0)", func() bool { return s.p.engine.Stats().Backlog == 0 })
}

// erasureGraph is the part of GET /v1/profiles/{id}/graph the test reads.
type erasureGraph struct {
	ProfileID   string            `json:"profile_id"`
	Identifiers []json.RawMessage `json:"identifiers"`
	Links       []json.RawMessage `json:"links"`
	Conflicts   []canon.LogRecord `json:"conflicts"`
}

// TestErasureFollowsTheGraph erases three people mid-stream (through the
// API, through a CIAM erasure_requested message, and through the id of a
// profile one of them absorbed), keeps streaming (their late events
// included, with identifiers never seen before), restarts the engine,
// replays every channel topic from the start and, for the erased people,
// replays past the dedup window; then it finds none of them in the API,
// Badger, spine.profiles or ClickHouse, and everyone else exactly as before.
func TestErasureFollowsTheGraph(t *testing.T) {
	start := time.Now()
	chAddr, db := erasureCH(t)
	addr, _ := kafkatest.Cluster(t)
	dir := t.TempDir()
	flags := []string{"--clickhouse", chAddr, "--clickhouse-database", db}
	if d := os.Getenv("SPINE_TEST_CLICKHOUSE_DIALECT"); d != "" {
		flags = append(flags, "--clickhouse-dialect", d)
	}

	norm, err := normalize.New(normalize.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	decs := ingest.Decoders(norm, msg.DefaultLimits())
	persons := erasureStream()
	byTag := map[string]*erasurePerson{}
	for _, p := range persons {
		byTag[p.tag] = p
	}
	carla, erin, ezra, elif := byTag["c0"], byTag["e1"], byTag["e2"], byTag["e3"]
	erased := []*erasurePerson{erin, ezra, elif}
	var kept []*erasurePerson
	for _, p := range persons {
		if p.erase == erKept {
			kept = append(kept, p)
		}
	}
	all := []int{erFound, erMain, erErase, erRest, erTie}
	// The erased people's identifiers (late ones included) and other
	// personal data: none of it may be found anywhere at the end. The
	// family tablet is not theirs: it is Carla's, whom they shared it with.
	keptIDs := map[canon.Identifier]bool{}
	for _, p := range kept {
		for _, id := range p.decode(t, decs, all...).ids {
			keptIDs[id] = true
		}
	}
	var erasedIDs []canon.Identifier
	var needles []string // lower-cased
	for _, p := range erased {
		for _, id := range p.decode(t, decs, all...).ids {
			if keptIDs[id] {
				if id.Value != "TAB-FAMILY-7100" {
					t.Fatalf("fixture: %s shares %s %s with someone kept", p.name, id.Type, id.Value)
				}
				continue
			}
			erasedIDs = append(erasedIDs, id)
			needles = append(needles, strings.ToLower(id.Value))
		}
		needles = append(needles, strings.ToLower(p.marker))
	}
	for id := range keptIDs {
		if n := containsAny([]byte(id.Value), needles); n != "" {
			t.Fatalf("fixture: the kept %s %q contains the erased value %q", id.Type, id.Value, n)
		}
	}

	s := startE2ESpine(t, addr, dir, flags...)
	conn, err := chgo.Open(&chgo.Options{Addr: []string{chAddr}, Auth: chgo.Auth{Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var produced []e2eMsg // everything, in the order produced
	produce := func(ph int) {
		t.Helper()
		var lists [][]e2eMsg
		for _, p := range persons {
			lists = append(lists, p.phase(ph))
		}
		msgs := e2eInterleave(lists...)
		e2eProduce(t, addr, msgs)
		produced = append(produced, msgs...)
		s.waitApplied(addr)
	}

	// 1. The early stream, in two steps.
	produce(erFound)
	tablet := e2eID(canon.DeviceID, "TAB-FAMILY-7100")
	elifAnon := s.mustLookup("Elif's anonymous profile", e2eID(canon.AnonymousID, "anon-elif-7703"))
	produce(erMain)
	t.Logf("early stream (%d messages) applied after %v", len(produced), time.Since(start).Round(time.Millisecond))

	// The graph is what the fixture means it to be: Carla holds the
	// tablet; Erin and Elif each absorbed an anonymous profile; Erin's
	// second browser session is a profile of its own.
	carlaP := s.mustLookup(carla.name, tablet)
	if u, _ := carlaP.Identifier(canon.UserID); u != "u-carla-7100" {
		t.Fatalf("the family tablet belongs to %q, want Carla (u-carla-7100)", u)
	}
	e2eWaitFor(t, "Erin's sign-up merged her anonymous visit", func() bool {
		return len(s.mustLookup(erin.name, e2eID(canon.UserID, "u-erin-5501")).MergedFrom) > 0
	})
	erinP := s.mustLookup(erin.name, e2eID(canon.UserID, "u-erin-5501"))
	erinApart := s.mustLookup(erin.name, e2eID(canon.AnonymousID, "anon-erin-5501-b"))
	ezraP := s.mustLookup(ezra.name, e2eID(canon.UserID, "u-ezra-6602"))
	elifP := s.mustLookup(elif.name, e2eID(canon.UserID, "u-elif-7703"))
	if len(erinP.MergedFrom) == 0 || !slices.Contains(elifP.MergedFrom, elifAnon.ID) {
		t.Fatalf("fixture: Erin merged_from %v, Elif merged_from %v (want her anonymous profile %s)", erinP.MergedFrom, elifP.MergedFrom, elifAnon.ID)
	}
	if erinApart.ID == erinP.ID {
		t.Fatal("fixture: Erin's second browser session is already in her profile")
	}
	erinEarly := erin.decode(t, decs, erFound, erMain)
	var erinEvents int64
	for _, m := range erin.msgs {
		if m.phase <= erMain && !m.apart {
			erinEvents++
		}
	}
	var erinGraph erasureGraph
	if code := s.get("/v1/profiles/"+erinP.ID+"/graph", &erinGraph); code != http.StatusOK {
		t.Fatalf("graph of Erin: status %d", code)
	}
	var erinExport struct {
		EventsTotal int `json:"events_total"`
	}
	if code := s.get("/v1/profiles/"+erinP.ID+"/export", &erinExport); code != http.StatusOK {
		t.Fatalf("export of Erin: status %d", code)
	}
	if len(erinGraph.Links) == 0 || int64(erinExport.EventsTotal) != erinEvents {
		t.Fatalf("fixture: Erin's graph has %d links, her export %d events (want %d)", len(erinGraph.Links), erinExport.EventsTotal, erinEvents)
	}

	// Their rows are in ClickHouse before they are erased, so the erasure
	// has something to delete there.
	s.waitSinks()
	for _, p := range []canon.Profile{erinP, ezraP, elifP} {
		var n uint64
		q := "SELECT count() FROM events FINAL WHERE profile_id IN ('" + strings.Join(append([]string{p.ID}, p.MergedFrom...), "', '") + "')"
		if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n == 0 {
			t.Fatalf("ClickHouse holds no events of profile %s before its erasure", p.ID)
		}
	}

	// 2. Mid-stream erasures. Erin through the API: the receipt names her
	// profile and the one it absorbed, counts what went, and lists the sinks.
	var rc canon.Receipt
	if code := s.post("/v1/profiles/"+erinP.ID+"/erase", &rc); code != http.StatusOK {
		t.Fatalf("erase Erin: status %d", code)
	}
	wantIDs := append([]string{erinP.ID}, erinP.MergedFrom...)
	if !sameSet(rc.ProfileIDs, wantIDs) {
		t.Errorf("Erin's receipt lists profiles %v, want %v", rc.ProfileIDs, wantIDs)
	}
	wantIdentifiers := len(erinEarly.ids) - 2 // the tablet is Carla's; the second session is apart
	if rc.Identifiers != wantIdentifiers || rc.Identifiers != len(erinGraph.Identifiers) {
		t.Errorf("Erin's receipt counts %d identifiers, want %d (her graph lists %d)", rc.Identifiers, wantIdentifiers, len(erinGraph.Identifiers))
	}
	if rc.Links != len(erinGraph.Links) {
		t.Errorf("Erin's receipt counts %d links, her graph listed %d", rc.Links, len(erinGraph.Links))
	}
	if int64(rc.Events) != erinEvents {
		t.Errorf("Erin's receipt counts %d events, want %d", rc.Events, erinEvents)
	}
	if want := []string{"state", "cache", "kafka", "clickhouse"}; !sameSet(rc.Sinks, want) {
		t.Errorf("Erin's receipt lists sinks %v, want %v", rc.Sinks, want)
	}
	if rc.At.IsZero() {
		t.Error("Erin's receipt has no time")
	}
	// Elif by the id of her absorbed anonymous profile: the whole person goes.
	var rc3 canon.Receipt
	if code := s.post("/v1/profiles/"+elifAnon.ID+"/erase", &rc3); code != http.StatusOK {
		t.Fatalf("erase Elif by her absorbed id: status %d", code)
	}
	if want := append([]string{elifP.ID}, elifP.MergedFrom...); !sameSet(rc3.ProfileIDs, want) {
		t.Errorf("Elif's receipt lists profiles %v, want %v", rc3.ProfileIDs, want)
	}
	if want := len(elif.decode(t, decs, erFound, erMain).ids); rc3.Identifiers != want {
		t.Errorf("Elif's receipt counts %d identifiers, want %d", rc3.Identifiers, want)
	}
	// Ezra through the CIAM.
	produce(erErase)
	for _, pid := range slices.Concat(wantIDs, rc3.ProfileIDs, []string{ezraP.ID}) {
		if code := s.get("/v1/profiles/"+pid, nil); code != http.StatusNotFound {
			t.Errorf("GET /v1/profiles/%s right after the erasure: status %d, want 404", pid, code)
		}
	}
	erasedPIDs := map[string]string{} // profile id -> whose
	for _, pid := range slices.Concat(wantIDs, rc.ProfileIDs) {
		erasedPIDs[pid] = erin.name
	}
	erasedPIDs[erinApart.ID] = erin.name
	for _, pid := range slices.Concat(rc3.ProfileIDs, elifP.MergedFrom, []string{elifP.ID}) {
		erasedPIDs[pid] = elif.name
	}
	erasedPIDs[ezraP.ID] = ezra.name
	for _, pid := range ezraP.MergedFrom {
		erasedPIDs[pid] = ezra.name
	}

	// The stream goes on: everyone else's messages, and the erased people's
	// late events (older times, new message ids, a never-seen identifier).
	produce(erRest)
	// Erin's late page view came alone, with an anonymous id never seen
	// before: nothing can tell it is hers, so it is a profile, until her
	// late identify ties it to her and it is erased.
	erinLate := s.mustLookup("Erin's late session", e2eID(canon.AnonymousID, "anon-erin-5501-late"))
	erasedPIDs[erinLate.ID] = erin.name
	produce(erTie)
	s.waitSinks()
	t.Logf("erasures and the rest of the stream (%d messages in all) applied after %v", len(produced), time.Since(start).Round(time.Millisecond))

	// 3. Restart on the same state, then replay every channel topic from
	// the start (the same bytes as new records), and the erased people's
	// messages once more with new message ids, as a replay past the dedup
	// window would bring them.
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s = startE2ESpine(t, addr, dir, flags...)
	var again []e2eMsg
	for _, p := range erased {
		for _, m := range p.msgs {
			v := bytes.Replace(m.value, []byte(`"`+m.id+`"`), []byte(`"`+m.id+erReplayed+`"`), 1)
			again = append(again, e2eMsg{ch: m.ch, key: m.key, value: v})
		}
	}
	replayStart := time.Now()
	e2eProduce(t, addr, append(slices.Clone(produced), again...))
	s.waitApplied(addr)
	// The counters move when the batch commits; wait for the replay's.
	e2eWaitFor(t, "the replay counted as duplicates and re-keyed events", func() bool {
		st := s.p.engine.Stats()
		return st.Duplicates >= uint64(len(produced)) && st.Events >= uint64(len(again))
	})
	s.waitSinks()
	st := s.p.engine.Stats()
	t.Logf("replay of %d records + %d re-keyed applied in %v; engine: %d events, %d duplicates",
		len(produced), len(again), time.Since(replayStart).Round(time.Millisecond), st.Events, st.Duplicates)
	if st.Duplicates != uint64(len(produced)) {
		t.Errorf("the replay was recognized as %d duplicates, want all %d", st.Duplicates, len(produced))
	}
	if st.Events != uint64(len(again)) {
		t.Errorf("after the restart the engine took %d events, want the %d re-keyed ones (each dropped or an erasure)", st.Events, len(again))
	}
	dropped := 0.0
	for labels, v := range s.metrics("spine_engine_dropped_total") {
		if strings.Contains(labels, "reason=erased_subject") {
			dropped += v
		}
	}
	if want := float64(len(again) - 1); dropped != want { // one is Ezra's erasure request again
		t.Errorf("spine_engine_dropped_total{reason=erased_subject} = %v after the replay, want %v", dropped, want)
	}

	// 4a. The API knows none of them, and everyone else exactly.
	for _, id := range erasedIDs {
		if p, ok := s.lookup(id); ok {
			t.Errorf("%s %s of an erased person resolves to profile %s", id.Type, id.Value, p.ID)
		}
	}
	for pid, who := range erasedPIDs {
		for _, path := range []string{"", "/graph", "/export"} {
			if code := s.get("/v1/profiles/"+pid+path, nil); code != http.StatusNotFound {
				t.Errorf("GET /v1/profiles/%s%s (%s): status %d, want 404", pid, path, who, code)
			}
		}
	}
	livePIDs := map[string]bool{}
	for _, p := range kept {
		d := p.decode(t, decs, all...)
		s.checkPerson(e2ePerson{name: p.name, ids: d.ids, level: p.level, events: d.events, orders: d.orders, spend: d.spend})
		livePIDs[s.mustLookup(p.name, d.ids[0]).ID] = true
	}
	carlaNow := s.mustLookup(carla.name, tablet)
	if carlaNow.ID != carlaP.ID {
		t.Errorf("Carla's profile id changed from %s to %s", carlaP.ID, carlaNow.ID)
	}
	if n := len(carla.decode(t, decs, all...).ids); len(carlaNow.Identifiers) != n {
		t.Errorf("Carla holds %d identifiers, want %d: %+v", len(carlaNow.Identifiers), n, carlaNow.Identifiers)
	}
	if st.Profiles != uint64(len(kept)) {
		t.Errorf("engine holds %d profiles, want %d (the kept people)", st.Profiles, len(kept))
	}
	var acct struct {
		Members []struct {
			ProfileID string `json:"profile_id"`
		} `json:"members"`
		Rollup struct {
			Members int `json:"members"`
		} `json:"rollup"`
	}
	if code := s.get("/v1/accounts/grp-acme", &acct); code != http.StatusOK || acct.Rollup.Members != 1 || len(acct.Members) != 1 || erasedPIDs[acct.Members[0].ProfileID] != "" {
		t.Errorf("account grp-acme: status %d, members %+v, want only person 1", code, acct)
	}
	// What is left of them beyond their identifiers and rows: their
	// profile ids in other people's records (reported by a subtest).
	idLeft := erasureFindings{}
	var carlaGraph erasureGraph
	if code := s.get("/v1/profiles/"+carlaP.ID+"/graph", &carlaGraph); code != http.StatusOK {
		t.Errorf("graph of Carla: status %d", code)
	}
	for _, c := range carlaGraph.Conflicts {
		for _, o := range c.Others {
			if who := erasedPIDs[o]; who != "" {
				var ev canon.Evidence
				if c.Evidence != nil {
					ev = *c.Evidence
				}
				idLeft.add("API: Carla's graph lists a conflict with %s's erased profile %s (evidence: %s message %s at %s)",
					who, o, ev.Channel, ev.MessageID, ev.Time.Format(time.RFC3339))
			}
		}
	}
	t.Logf("API checked after %v", time.Since(start).Round(time.Millisecond))
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// 4b. spine.profiles, read from the start: every profile of theirs (and
	// any profile a record of which held one of their values) ends with a
	// tombstone, so compaction leaves nothing of them; the kept people's
	// profiles end with a profile.
	n := 0
	for _, parts := range kafkatest.EndOffsets(t, addr, "spine.profiles") {
		for _, end := range parts {
			n += int(end)
		}
	}
	last := map[string]*kgo.Record{}
	mentions := map[string]bool{}
	for _, r := range kafkatest.Consume(t, addr, "spine.profiles", n, e2eWait) {
		last[string(r.Key)] = r
		if containsAny(r.Value, needles) != "" {
			mentions[string(r.Key)] = true
		}
	}
	for pid := range erasedPIDs {
		mentions[pid] = true
	}
	for key := range mentions {
		r, ok := last[key]
		switch {
		case !ok:
			t.Errorf("spine.profiles: erased profile %s (%s) never appeared", key, erasedPIDs[key])
		case r.Value != nil:
			t.Errorf("spine.profiles: the last record of %s (%s) is not a tombstone: %.200s", key, erasedPIDs[key], r.Value)
		}
		if livePIDs[key] {
			t.Errorf("spine.profiles: a kept person's profile %s held an erased person's data", key)
		}
	}
	for key, r := range last {
		if n := containsAny(r.Value, needles); n != "" {
			t.Errorf("spine.profiles: the current record of %s holds the erased value %q", key, n)
		}
	}
	for pid := range livePIDs {
		if r := last[pid]; r == nil || r.Value == nil {
			t.Errorf("spine.profiles: kept profile %s has no current record", pid)
		}
	}
	if r := last[carlaP.ID]; r == nil || !bytes.Contains(r.Value, []byte(tablet.Value)) {
		t.Error("spine.profiles: Carla's current record lacks the family tablet")
	}
	// Transient profiles (a late event's new identifier that came first)
	// count as theirs from here on.
	for key := range mentions {
		if erasedPIDs[key] == "" {
			erasedPIDs[key] = "a late event"
		}
	}
	t.Logf("spine.profiles: %d records, %d keys of erased people, all ending in a tombstone", n, len(mentions))

	// The identity log is not compacted: what it says about them stays.
	var identityLeft []string
	n = 0
	for _, parts := range kafkatest.EndOffsets(t, addr, "spine.identity") {
		for _, end := range parts {
			n += int(end)
		}
	}
	for _, r := range kafkatest.Consume(t, addr, "spine.identity", n, e2eWait) {
		if x := containsAny(r.Value, needles); x != "" {
			identityLeft = append(identityLeft, fmt.Sprintf("spine.identity: record %s (key %s) holds the erased value %q: %.300s",
				headerOr(r, "seq"), r.Key, x, r.Value))
		}
	}

	// 4c. ClickHouse, once the mutations are done.
	mutStart := time.Now()
	var pending uint64
	for deadline := time.Now().Add(erasureWait); ; {
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&pending); err != nil {
			t.Fatalf("system.mutations: %v", err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ClickHouse: %d mutations not done within %v", pending, erasureWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var mutations uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.mutations WHERE database = ?", db).Scan(&mutations); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse: %d mutations done, waited %v", mutations, time.Since(mutStart).Round(time.Millisecond))
	if mutations == 0 {
		t.Error("ClickHouse: no mutation ran: the erasures deleted nothing")
	}
	for _, cmd := range erasureStrings(t, conn, "SELECT command FROM system.mutations WHERE database = ?", db) {
		if n := containsAny([]byte(cmd), needles); n != "" {
			t.Errorf("ClickHouse keeps the erased value %q in mutation text: %s", n, cmd)
		}
	}
	for _, table := range []string{"events", "events_daily", "profiles", "identity_map", "merges", "accounts"} {
		for _, final := range []string{"", " FINAL"} {
			rows := erasureRows(t, conn, "SELECT * FROM "+table+final)
			for _, row := range rows {
				text := fmt.Sprint(slices.Collect(maps.Values(row)))
				if n := containsAny([]byte(text), needles); n != "" {
					t.Errorf("ClickHouse %s%s: a row holds the erased value %q: %v", table, final, n, row)
					continue
				}
				for pid, who := range erasedPIDs {
					if !strings.Contains(text, pid) {
						continue
					}
					// What an erasure leaves on purpose: the profile id marked
					// deleted, with nothing else, and the erase record of the
					// identity log, which holds keyed hashes only.
					tombstone := table == "profiles" && row["deleted"] == uint8(1) && row["delete_reason"] == "erased" && row["profile"] == ""
					receipt := table == "merges" && row["type"] == "erase"
					switch {
					case tombstone || receipt:
					case table == "accounts":
						idLeft.add("ClickHouse %s%s: account %v still lists %s's erased profile %s as a member: %v", table, final, row["account_id"], who, pid, row)
					default:
						t.Errorf("ClickHouse %s%s: a row of %s's profile %s survived: %v", table, final, who, pid, row)
					}
				}
			}
		}
	}
	// Everyone else is all there: every event of theirs exactly once.
	var wantEvents uint64
	for _, p := range kept {
		for _, c := range p.decode(t, decs, all...).events {
			wantEvents += uint64(c)
		}
	}
	for q, want := range map[string]uint64{
		"SELECT count() FROM events FINAL":                     wantEvents,
		"SELECT count() FROM events_daily FINAL":               wantEvents,
		"SELECT count() FROM profiles FINAL WHERE deleted = 0": uint64(len(kept)),
		"SELECT count() FROM identity_map FINAL WHERE id_value = 'TAB-FAMILY-7100' AND profile_id = '" + carlaP.ID + "'": 1,
	} {
		var got uint64
		if err := conn.QueryRow(t.Context(), q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if got != want {
			t.Errorf("ClickHouse: %s = %d, want %d", q, got, want)
		}
	}
	// Roll-ups are documented as a pure function of events_daily FINAL
	// and profiles FINAL: they must count what is left (subtest below).
	var rollupLeft []string
	counted := map[string]uint64{}
	for _, r := range erasureRows(t, conn, "SELECT toString(day) AS d, toString(channel) AS c, count() AS n FROM events_daily FINAL GROUP BY d, c") {
		counted[r["d"].(string)+" "+r["c"].(string)] = r["n"].(uint64)
	}
	for _, r := range erasureRows(t, conn, "SELECT toString(day) AS d, toString(channel) AS c, events FROM rollup_channel_daily FINAL") {
		k := r["d"].(string) + " " + r["c"].(string)
		if got := r["events"].(uint64); got != counted[k] {
			rollupLeft = append(rollupLeft, fmt.Sprintf("rollup_channel_daily FINAL %s: %d events, events_daily FINAL holds %d", k, got, counted[k]))
		}
	}
	t.Logf("ClickHouse checked after %v", time.Since(start).Round(time.Millisecond))

	// 4d. Badger, opened as the engine opens it: no profile and no
	// identifier of theirs, and nothing that names them in the export of
	// every profile there is.
	cfg := engine.DefaultConfig(dir)
	cfg.Store.Logger = e2eLogger(t)
	eng, err := engine.Open(cfg, e2eLogger(t), nil)
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	erasedSet := map[canon.Identifier]bool{}
	for _, id := range erasedIDs {
		erasedSet[id] = true
	}
	var profiles []string
	err = eng.EachProfile(t.Context(), func(p *canon.Profile) error {
		profiles = append(profiles, p.ID)
		if who := erasedPIDs[p.ID]; who != "" {
			t.Errorf("Badger: %s's profile %s exists", who, p.ID)
		}
		for _, m := range p.MergedFrom {
			if who := erasedPIDs[m]; who != "" {
				t.Errorf("Badger: profile %s lists %s's profile %s in merged_from", p.ID, who, m)
			}
		}
		for _, pi := range p.Identifiers {
			if erasedSet[pi.Identifier()] {
				t.Errorf("Badger: profile %s holds the erased %s %s", p.ID, pi.Type, pi.Value)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("EachProfile: %v", err)
	}
	mappings := 0
	err = eng.EachMapping(t.Context(), func(m canon.Mapping) error {
		mappings++
		if erasedSet[m.Identifier] {
			t.Errorf("Badger: the erased %s %s maps to profile %s", m.Identifier.Type, m.Identifier.Value, m.ProfileID)
		}
		return nil
	})
	if err != nil {
		t.Errorf("EachMapping: %v", err)
	}
	if len(profiles) != len(kept) {
		t.Errorf("Badger holds %d profiles, want %d", len(profiles), len(kept))
	}
	var export bytes.Buffer
	for _, pid := range profiles {
		x, err := eng.ExportProfile(t.Context(), pid)
		if err != nil {
			t.Fatalf("export %s: %v", pid, err)
		}
		b, _ := json.Marshal(x)
		export.Write(b)
		export.WriteByte('\n')
	}
	for _, line := range bytes.Split(export.Bytes(), []byte("\n")) {
		if n := containsAny(line, needles); n != "" {
			t.Errorf("Badger: an export holds the erased value %q: %.300s", n, line)
		}
		for pid, who := range erasedPIDs {
			if bytes.Contains(line, []byte(pid)) {
				idLeft.add("Badger: the export of profile %s names %s's erased profile %s", exportID(line), who, pid)
			}
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	// Below the engine: every live key and value of the store.
	db2, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("badger.Open: %v", err)
	}
	keys := 0
	err = db2.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys++
			k := it.Item().KeyCopy(nil)
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			kv := append(append(k, ' '), v...)
			if n := containsAny(kv, needles); n != "" {
				t.Errorf("Badger: key %q (prefix %q) holds the erased value %q: %.300s", k, k[:1], n, v)
			}
			for pid, who := range erasedPIDs {
				if bytes.Contains(kv, []byte(pid)) {
					idLeft.add("Badger: key %q names %s's erased profile %s: %.300s", k, who, pid, v)
				}
			}
		}
		return nil
	})
	if cerr := db2.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("badger scan: %v", err)
	}
	t.Logf("Badger: %d profiles, %d identifiers, %d live keys checked; whole test %v",
		len(profiles), mappings, keys, time.Since(start).Round(time.Millisecond))

	// Beyond identifiers and rows: an erasure "keeps only a keyed hash of
	// each identifier" (DESIGN section 7), so their profile ids must not
	// live on in other records either, roll-ups must not count them, and
	// the identity log must not keep their values.
	t.Run("no_profile_id_of_theirs_kept", func(t *testing.T) {
		for _, f := range idLeft.list {
			t.Error(f)
		}
	})
	t.Run("rollups_recounted_without_them", func(t *testing.T) {
		for _, f := range rollupLeft {
			t.Error(f)
		}
	})
	t.Run("identity_log_keeps_no_value_of_theirs", func(t *testing.T) {
		for _, f := range identityLeft {
			t.Error(f)
		}
	})
}

// erasureFindings collects distinct findings.
type erasureFindings struct {
	list []string
	seen map[string]bool
}

func (f *erasureFindings) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	if !f.seen[s] {
		f.seen[s] = true
		f.list = append(f.list, s)
	}
}

// exportID is the profile id of one exported profile (a JSON line).
func exportID(line []byte) string {
	var x struct {
		Profile struct {
			ID string `json:"profile_id"`
		} `json:"profile"`
	}
	_ = json.Unmarshal(line, &x)
	return x.Profile.ID
}

func headerOr(r *kgo.Record, key string) string {
	v, _ := kafkatest.Header(r, key)
	return v
}

// containsAny returns the first needle (lower-case) found in b, ignoring
// case, or "".
func containsAny(b []byte, needles []string) string {
	if len(b) == 0 {
		return ""
	}
	lower := bytes.ToLower(b)
	for _, n := range needles {
		if bytes.Contains(lower, []byte(n)) {
			return n
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// erasureRows reads every row of a query as column name -> value.
func erasureRows(t *testing.T, conn driver.Conn, q string, args ...any) []map[string]any {
	t.Helper()
	rows, err := conn.Query(t.Context(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, types := rows.Columns(), rows.ColumnTypes()
	var out []map[string]any
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = reflect.ValueOf(ptrs[i]).Elem().Interface()
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func erasureStrings(t *testing.T, conn driver.Conn, q string, args ...any) []string {
	t.Helper()
	var out []string
	for _, row := range erasureRows(t, conn, q, args...) {
		for _, v := range row {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}
