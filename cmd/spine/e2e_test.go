package main

// End-to-end tests: the whole engine process (startProcess, as `spine run`
// wires it) against a real Kafka-protocol broker (kfake on a loopback
// port), fed over TCP, checked through the HTTP API, /metrics and the DLQ
// topic. Nothing is mocked; ClickHouse is off. They prove the issue
// "every channel in, nothing lost": every valid message of every channel is
// counted exactly once in a profile, every malformed one lands in spine.dlq
// unchanged with its reason, across duplicates and a restart.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/consumer"
	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

// e2eWait bounds every wait of these tests. Applying a few hundred
// messages takes well under a second; the bound only turns a hang into a
// failure.
const e2eWait = 20 * time.Second

const e2eToken = "e2e-0123456789abcdef"

// e2eSpine is one engine process under test.
type e2eSpine struct {
	t    *testing.T
	p    *process
	o    *runOptions
	base string // http://127.0.0.1:port
	stop func() error
}

// startE2ESpine starts the engine process on broker addr with state in dir,
// as `spine run --brokers addr --data dir --http 127.0.0.1:PORT --tokens ...`
// would, and waits until /readyz answers 200: topics exist and the
// consumer has joined. extra are more run flags. The process is stopped
// when the test ends, before the broker is.
func startE2ESpine(t *testing.T, addr, dir string, extra ...string) *e2eSpine {
	t.Helper()
	host := e2eFreeAddr(t)
	fs, o := runFlags("run")
	args := append([]string{"--brokers", addr, "--data", dir, "--http", host,
		"--tokens", e2eToken + ":read+write+admin", "--cache-mb", "16"}, extra...)
	if err := fs.parse(args, func(string) string { return "" }); err != nil {
		t.Fatalf("run flags: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	p, err := startProcess(ctx, o, e2eLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("startProcess: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.wait() }()
	var stopped bool
	var stopErr error
	s := &e2eSpine{t: t, p: p, o: o, base: "http://" + host}
	s.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("process: %v", err)
		}
	})
	e2eWaitFor(t, "/readyz = 200", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("process stopped while starting: %v", err)
		default:
		}
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Logf("engine ready in %v", time.Since(start).Round(time.Millisecond))
	return s
}

// e2eLogger writes the process's warnings and errors to the test log;
// SPINE_TEST_LOG=debug shows everything.
func e2eLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SPINE_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// e2eFreeAddr returns a loopback address with a port that was free a moment
// ago. httpapi listens itself, so the port cannot be handed over open.
func e2eFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// e2eWaitFor polls cond every 10ms until it holds, failing the test after
// e2eWait. For conditions nothing signals to the test.
func e2eWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, e2eWait)
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test context done")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// e2eChannelTopics are the six channel topics.
func e2eChannelTopics() []string {
	var ts []string
	for _, ch := range canon.Channels {
		ts = append(ts, e2eTopic(ch))
	}
	return ts
}

func e2eTopic(ch canon.Channel) string { return "spine." + string(ch) }

// waitApplied waits until the engine's stored positions reach the end of
// every channel topic: everything produced so far is applied or
// dead-lettered (the DLQ write comes before the positions move).
func (s *e2eSpine) waitApplied(addr string) {
	t := s.t
	t.Helper()
	ends := kafkatest.EndOffsets(t, addr, e2eChannelTopics()...)
	var lag int64
	e2eWaitFor(t, "engine positions at the end of every channel topic", func() bool {
		pos, err := s.p.engine.Positions(t.Context())
		if err != nil {
			t.Fatalf("Positions: %v", err)
		}
		// Every partition must have reached its end: a sum of differences
		// could let one partition ahead hide another behind.
		lag = 0
		for topic, parts := range ends {
			for p, end := range parts {
				lag += max(0, end-pos[canon.Partition{Topic: topic, Partition: p}])
			}
		}
		return lag == 0
	})
	// The positions are visible as soon as the batch commits; the engine's
	// counters a moment later.
	if err := s.p.engine.Sync(t.Context()); err != nil {
		t.Fatalf("engine sync: %v", err)
	}
}

// get GETs path with the bearer token and decodes a JSON answer into out
// (when not nil). It returns the status.
func (s *e2eSpine) get(path string, out any) int {
	t := s.t
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decode %s: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

// lookup finds the profile holding an identifier through the API; ok is
// false on 404.
func (s *e2eSpine) lookup(id canon.Identifier) (canon.Profile, bool) {
	s.t.Helper()
	var p canon.Profile
	q := url.Values{"type": {string(id.Type)}, "value": {id.Value}}
	switch code := s.get("/v1/profiles?"+q.Encode(), &p); code {
	case http.StatusOK:
		return p, true
	case http.StatusNotFound:
		return p, false
	default:
		s.t.Fatalf("lookup %s: status %d", id.Type, code)
	}
	return p, false
}

// metrics reads /metrics over HTTP and returns the samples of name as
// label set (sorted "k=v,k=v") → value.
func (s *e2eSpine) metrics(name string) map[string]float64 {
	t := s.t
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	return e2eParseMetrics(t, resp.Body, name)
}

var e2eSampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var e2eLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// e2eParseMetrics reads the samples of name from the Prometheus text format.
func e2eParseMetrics(t *testing.T, r io.Reader, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := e2eSampleRE.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		var labels []string
		for _, l := range e2eLabelRE.FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, l[1]+"="+l[2])
		}
		slices.Sort(labels)
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metric %s: %v", sc.Text(), err)
		}
		out[strings.Join(labels, ",")] = v
	}
	return out
}

// --- fixtures ---------------------------------------------------------------

// e2eMsg is one Kafka record to produce.
type e2eMsg struct {
	ch    canon.Channel
	key   []byte
	value []byte
}

// mixedMalformed is one line of testdata/mixed/malformed.jsonl: a message that
// must be dead-lettered with reason.
type mixedMalformed struct {
	Name     string        `json:"name"`
	Channel  canon.Channel `json:"channel"`
	Reason   msg.Reason    `json:"reason"`
	Value    string        `json:"value"`
	ValueB64 string        `json:"value_b64"` // bytes JSON cannot hold (invalid UTF-8)
	// Generate builds messages too big for a fixture line from Value:
	// "oversize" pads its "PAD" to 300 KiB of text, "too_deep" replaces
	// PAD with arrays nested 65 deep.
	Generate string `json:"generate"`
	raw      []byte
}

// readMixedValid reads testdata/mixed/<channel>.jsonl: one valid message a line.
func readMixedValid(t *testing.T) map[canon.Channel][][]byte {
	t.Helper()
	out := map[canon.Channel][][]byte{}
	for _, ch := range canon.Channels {
		for _, line := range e2eReadLines(t, filepath.Join("testdata", "mixed", string(ch)+".jsonl")) {
			out[ch] = append(out[ch], line)
		}
	}
	return out
}

func readMixedMalformed(t *testing.T) []mixedMalformed {
	t.Helper()
	var out []mixedMalformed
	for _, line := range e2eReadLines(t, filepath.Join("testdata", "mixed", "malformed.jsonl")) {
		var m mixedMalformed
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("malformed.jsonl: %v", err)
		}
		switch {
		case m.ValueB64 != "":
			b, err := base64.StdEncoding.DecodeString(m.ValueB64)
			if err != nil {
				t.Fatalf("malformed.jsonl %q: %v", m.Name, err)
			}
			m.raw = b
		default:
			m.raw = []byte(m.Value)
		}
		switch m.Generate {
		case "":
		case "oversize":
			pad := strings.Repeat("receipt line ", 300<<10/len("receipt line "))
			m.raw = bytes.Replace(m.raw, []byte("PAD"), []byte(pad), 1)
		case "too_deep":
			pad := strings.Repeat("[", msg.DefaultMaxDepth) + strings.Repeat("]", msg.DefaultMaxDepth)
			m.raw = bytes.Replace(m.raw, []byte("PAD"), []byte(pad), 1)
		default:
			t.Fatalf("malformed.jsonl %q: unknown generate %q", m.Name, m.Generate)
		}
		out = append(out, m)
	}
	return out
}

func e2eReadLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for line := range bytes.Lines(b) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// e2ePerson is what the engine must hold about one real person of the mixed
// fixture once every message is in, worked out by hand from the fixture.
type e2ePerson struct {
	name   string
	ids    []canon.Identifier // every one must resolve to the same profile
	level  canon.Level
	events map[canon.Channel]int64
	orders int64
	spend  canon.Amounts // total_spend, micros per currency
}

func e2eID(t canon.IDType, v string) canon.Identifier { return canon.Identifier{Type: t, Value: v} }

func e2eMicros(units float64) int64 { return int64(units*1e6 + 0.5) }

// mixedPersons is the ground truth of testdata/mixed.
var mixedPersons = []e2ePerson{
	{
		// Web visitor who registers, verifies her email, buys online, in
		// the app and in store, pairs a thermostat and calls support.
		name: "Jane",
		ids: []canon.Identifier{e2eID(canon.UserID, "u-1001"), e2eID(canon.Email, "JANE.DOE@shop.io"),
			e2eID(canon.AnonymousID, "a-7f3c2e01"), e2eID(canon.DeviceID, "5D3F2A10-8C1B-4E7A-9A2B-0C4D5E6F7A81"),
			e2eID(canon.DeviceID, "THERM-9F2A-001"), e2eID(canon.LoyaltyID, "LOY-778899"), e2eID(canon.CardFP, "fp_3c9e1b77"),
			e2eID(canon.CRMID, "CRM-00042"), e2eID(canon.Phone, "+1 650 253 0000")},
		level:  canon.VerifiedUser,
		events: map[canon.Channel]int64{canon.Web: 5, canon.Mobile: 3, canon.IoT: 3, canon.POS: 3, canon.Support: 4, canon.CIAM: 4},
		// web W-88121 129.90 USD, app M-5521 45.50 EUR, store 54.97 + 20.00 USD; the return is not an order.
		orders: 4,
		spend:  canon.Amounts{"USD": e2eMicros(129.90) + e2eMicros(54.97) + e2eMicros(20.00), "EUR": e2eMicros(45.50)},
	},
	{
		// Aliased web visitor, Android app, door camera paired by email,
		// store purchases, a support call by phone.
		name: "Carlos",
		ids: []canon.Identifier{e2eID(canon.UserID, "u-2002"), e2eID(canon.Email, "carlos.mendes@mailbox.net"),
			e2eID(canon.AnonymousID, "a-c4r105"), e2eID(canon.DeviceID, "b7e1c9d2-4f1a-4c0e-9d7b-2a3e5f6a7b8c"),
			e2eID(canon.DeviceID, "CAM-77A1-0042"), e2eID(canon.LoyaltyID, "LOY-220033"), e2eID(canon.CRMID, "CRM-00077"),
			e2eID(canon.Phone, "(212) 736-5000")},
		level:  canon.Registered,
		events: map[canon.Channel]int64{canon.Web: 3, canon.Mobile: 2, canon.IoT: 1, canon.POS: 2, canon.Support: 2, canon.CIAM: 2},
		// web W-88170 310 GBP, store 89 + 12.50 USD.
		orders: 3,
		spend:  canon.Amounts{"GBP": e2eMicros(310), "USD": e2eMicros(89) + e2eMicros(12.50)},
	},
	{
		// Anonymous browser; the blocked test@example.com is dropped, the
		// event kept.
		name:   "visitor",
		ids:    []canon.Identifier{e2eID(canon.AnonymousID, "a-0b9d77e2")},
		level:  canon.Anonymous,
		events: map[canon.Channel]int64{canon.Web: 4},
	},
	{
		// Store shopper known by loyalty card, payment card and email; the
		// cashier's 000-000-0000 is dropped, the purchase kept.
		name: "Mia",
		ids: []canon.Identifier{e2eID(canon.LoyaltyID, "LOY-990011"), e2eID(canon.CardFP, "fp_9a8b7c6d"),
			e2eID(canon.Email, "mia.schmidt@posteo.de")},
		level:  canon.Pseudonymous,
		events: map[canon.Channel]int64{canon.POS: 4, canon.Support: 2},
		orders: 3,
		spend:  canon.Amounts{"EUR": e2eMicros(42.00) + e2eMicros(8.40) + e2eMicros(15.00)},
	},
	{
		// An unpaired thermostat reporting telemetry.
		name:   "thermostat",
		ids:    []canon.Identifier{e2eID(canon.DeviceID, "THERM-9F2A-777")},
		level:  canon.Anonymous,
		events: map[canon.Channel]int64{canon.IoT: 2},
	},
}

// checkPerson looks every identifier of want up through the API and
// checks that they share one profile with exactly want's counts.
func (s *e2eSpine) checkPerson(want e2ePerson) {
	t := s.t
	t.Helper()
	var pid string
	for _, i := range want.ids {
		p, ok := s.lookup(i)
		if !ok {
			t.Errorf("%s: no profile holds %s", want.name, i.Type)
			continue
		}
		if pid == "" {
			pid = p.ID
			c := p.Computed
			if !maps.Equal(c.EventsByChannel, want.events) {
				t.Errorf("%s: events_by_channel = %v, want %v", want.name, c.EventsByChannel, want.events)
			}
			if c.OrderCount != want.orders {
				t.Errorf("%s: order_count = %d, want %d", want.name, c.OrderCount, want.orders)
			}
			if len(c.TotalSpend)+len(want.spend) > 0 && !maps.Equal(c.TotalSpend, want.spend) {
				t.Errorf("%s: total_spend = %v, want %v", want.name, c.TotalSpend, want.spend)
			}
			if want.level != "" && p.Level != want.level {
				t.Errorf("%s: identity_level = %s, want %s", want.name, p.Level, want.level)
			}
		} else if p.ID != pid {
			t.Errorf("%s: %s resolves to profile %s, other identifiers to %s: not stitched", want.name, i.Type, p.ID, pid)
		}
	}
}

// e2eInterleave returns the messages of every list, one from each in turn.
func e2eInterleave(lists ...[]e2eMsg) []e2eMsg {
	var out []e2eMsg
	for i := 0; ; i++ {
		more := false
		for _, l := range lists {
			if i < len(l) {
				out = append(out, l[i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

// e2eProduce writes msgs, in order, to their channel topics over TCP, spread
// round-robin over the partitions.
func e2eProduce(t *testing.T, addr string, msgs []e2eMsg) {
	t.Helper()
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Topic: e2eTopic(m.ch), Key: m.key, Value: m.value}
	}
	cl := kafkatest.Client(t, addr, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(2<<20))
	ctx, cancel := context.WithTimeout(t.Context(), e2eWait)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// --- tests ------------------------------------------------------------------

// TestMixedFixtureDecodes checks the fixture itself, without a broker:
// every valid line decodes, every malformed one is refused with the reason
// it is there for. A failure here is a fixture bug, not a pipeline bug.
func TestMixedFixtureDecodes(t *testing.T) {
	norm, err := normalize.New(normalize.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	decs := ingest.Decoders(norm, msg.DefaultLimits())
	seen := map[string]bool{}
	for ch, lines := range readMixedValid(t) {
		for _, line := range lines {
			ev, err := decs[ch](line)
			if err != nil {
				t.Errorf("%s: %s: %v", ch, line, err)
				continue
			}
			if seen[string(ch)+"/"+ev.MessageID] {
				t.Errorf("%s: message id %s used twice", ch, ev.MessageID)
			}
			seen[string(ch)+"/"+ev.MessageID] = true
		}
	}
	reasons := map[msg.Reason]bool{}
	for _, m := range readMixedMalformed(t) {
		_, err := decs[m.Channel](m.raw)
		var rej *msg.Reject
		if !errors.As(err, &rej) || rej.Reason != m.Reason {
			t.Errorf("%s (%s): decode = %v, want reason %s", m.Name, m.Channel, err, m.Reason)
		}
		reasons[m.Reason] = true
	}
	// Every reject class a message's content can cause is covered.
	for _, r := range []msg.Reason{msg.ReasonInvalidJSON, msg.ReasonInvalidUTF8, msg.ReasonNotObject, msg.ReasonWrongType,
		msg.ReasonMissingField, msg.ReasonBadTimestamp, msg.ReasonUnknownEvent, msg.ReasonOversize, msg.ReasonTooDeep,
		msg.ReasonNoIdentifier, msg.ReasonOutOfRange} {
		if !reasons[r] {
			t.Errorf("no malformed message for reason %s", r)
		}
	}
}

// TestMixedStreamEveryChannelNothingLost produces the valid messages of all
// six channels, every class of malformed message and duplicate deliveries,
// interleaved, to one running engine, then checks profiles through the
// API, the DLQ topic record by record, and the DLQ metrics.
func TestMixedStreamEveryChannelNothingLost(t *testing.T) {
	addr, _ := kafkatest.Cluster(t) // no topics: the engine creates them
	s := startE2ESpine(t, addr, t.TempDir())

	valid := readMixedValid(t)
	bad := readMixedMalformed(t)
	var lists [][]e2eMsg
	nValid := 0
	for _, ch := range canon.Channels {
		var l []e2eMsg
		for _, v := range valid[ch] {
			l = append(l, e2eMsg{ch: ch, value: v})
		}
		nValid += len(l)
		lists = append(lists, l)
	}
	var badMsgs []e2eMsg
	wantDLQ := map[string]float64{} // "channel=..,reason=.." -> count
	for i, m := range bad {
		badMsgs = append(badMsgs, e2eMsg{ch: m.Channel, key: fmt.Appendf(nil, "malformed-%02d", i), value: m.raw})
		wantDLQ["channel="+string(m.Channel)+",reason="+string(m.Reason)]++
	}
	// Duplicate deliveries: a producer retry re-sends a message with the
	// same id. Two per channel, the first and the last message of each
	// list, so one comes long after its original and one right after it.
	var dups []e2eMsg
	for _, l := range lists {
		dups = append(dups, l[0], l[len(l)-1])
	}
	stream := e2eInterleave(append(lists, badMsgs, dups)...)
	start := time.Now()
	e2eProduce(t, addr, stream)
	s.waitApplied(addr)
	t.Logf("%d records (%d valid, %d malformed, %d duplicates) produced and applied in %v",
		len(stream), nValid, len(bad), len(dups), time.Since(start).Round(time.Millisecond))

	// Engine totals: every valid message once, every duplicate skipped.
	st := s.p.engine.Stats()
	if st.Events != uint64(nValid) || st.Duplicates != uint64(len(dups)) {
		t.Errorf("engine applied %d events and skipped %d duplicates, want %d and %d", st.Events, st.Duplicates, nValid, len(dups))
	}
	if st.Profiles != uint64(len(mixedPersons)) {
		t.Errorf("engine holds %d profiles, want %d (one per person)", st.Profiles, len(mixedPersons))
	}

	// Profiles, through the API.
	for _, p := range mixedPersons {
		s.checkPerson(p)
	}

	// The DLQ holds exactly the malformed records, bytes unchanged.
	n := 0
	for _, parts := range kafkatest.EndOffsets(t, addr, "spine.dlq") {
		for _, end := range parts {
			n += int(end)
		}
	}
	if n != len(bad) {
		t.Errorf("spine.dlq holds %d records, want %d", n, len(bad))
	}
	byKey := map[string]*kgo.Record{}
	for _, r := range kafkatest.Consume(t, addr, "spine.dlq", min(n, len(bad)), e2eWait) {
		byKey[string(r.Key)] = r
	}
	for i, m := range bad {
		key := fmt.Sprintf("malformed-%02d", i)
		r, ok := byKey[key]
		if !ok {
			t.Errorf("%s: not in spine.dlq", m.Name)
			continue
		}
		if !bytes.Equal(r.Value, m.raw) {
			t.Errorf("%s: dlq value differs from the original (%d bytes, want %d)", m.Name, len(r.Value), len(m.raw))
		}
		for h, want := range map[string]string{
			consumer.HeaderReason: string(m.Reason), consumer.HeaderChannel: string(m.Channel),
			consumer.HeaderTopic: e2eTopic(m.Channel),
		} {
			if got, _ := kafkatest.Header(r, h); got != want {
				t.Errorf("%s: dlq header %s = %q, want %q", m.Name, h, got, want)
			}
		}
	}

	// spine_ingest_dlq_total{channel,reason}, read over HTTP, matches
	// exactly; so do the per-channel event counts (duplicates included:
	// the consumer decodes them, the engine skips them).
	if got := s.metrics("spine_ingest_dlq_total"); !maps.Equal(got, wantDLQ) {
		t.Errorf("spine_ingest_dlq_total = %v, want %v", got, wantDLQ)
	}
	wantEvents := map[string]float64{}
	for _, ch := range canon.Channels {
		wantEvents["channel="+string(ch)] = float64(len(valid[ch]) + 2)
	}
	if got := s.metrics("spine_ingest_events_total"); !maps.Equal(got, wantEvents) {
		t.Errorf("spine_ingest_events_total = %v, want %v", got, wantEvents)
	}
}

// TestKcatInterop drives the engine with a non-Go client: kcat (librdkafka)
// produces one message per channel, and reads a dead letter's headers.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is not on PATH; deploy/deps.sh installs it")
		}
		t.Skip("kcat is not on PATH (deploy/deps.sh installs it)")
	}
	addr, _ := kafkatest.Cluster(t)
	s := startE2ESpine(t, addr, t.TempDir())
	run := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), e2eWait)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", addr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}

	// One person, one message on every channel, each with a different
	// identifier that an earlier one links.
	msgs := map[canon.Channel]string{
		canon.CIAM:    `{"event_id":"ciam-kcat-1","timestamp":"2026-11-07T09:00:00Z","event":"registered","user_id":"u-3003","email":"ola.nordmann@fjord.no"}`,
		canon.Web:     `{"type":"identify","messageId":"web-kcat-1","timestamp":"2026-11-07T09:01:00Z","anonymousId":"a-kcat-3003","userId":"u-3003"}`,
		canon.Mobile:  `{"type":"screen","messageId":"mob-kcat-1","timestamp":"2026-11-07T09:02:00Z","userId":"u-3003","name":"Home","context":{"device":{"id":"dev-kcat-3003"}}}`,
		canon.IoT:     `{"message_id":"iot-kcat-1","timestamp":"2026-11-07T09:03:00Z","event":"device_paired","device_serial":"SENSE-3003","owner_user_id":"u-3003"}`,
		canon.POS:     `{"transaction_id":"pos-kcat-1","timestamp":"2026-11-07T09:04:00Z","type":"purchase","total":"99.95","currency":"nok","email":"Ola.Nordmann@fjord.no","loyalty_id":"LOY-3003"}`,
		canon.Support: `{"event_id":"sup-kcat-1","timestamp":"2026-11-07T09:05:00Z","ticket_id":"T-3003","event":"ticket_opened","email":"ola.nordmann@fjord.no","crm_contact_id":"CRM-3003","medium":"email"}`,
	}
	for _, ch := range canon.Channels {
		run(msgs[ch]+"\n", "-P", "-t", e2eTopic(ch))
	}
	s.waitApplied(addr)
	s.checkPerson(e2ePerson{
		name: "kcat person",
		ids: []canon.Identifier{e2eID(canon.UserID, "u-3003"), e2eID(canon.Email, "ola.nordmann@fjord.no"),
			e2eID(canon.AnonymousID, "a-kcat-3003"), e2eID(canon.DeviceID, "dev-kcat-3003"), e2eID(canon.DeviceID, "SENSE-3003"),
			e2eID(canon.LoyaltyID, "LOY-3003"), e2eID(canon.CRMID, "CRM-3003")},
		level: canon.Registered,
		events: map[canon.Channel]int64{canon.Web: 1, canon.Mobile: 1, canon.IoT: 1, canon.POS: 1,
			canon.Support: 1, canon.CIAM: 1},
		orders: 1,
		spend:  canon.Amounts{"NOK": e2eMicros(99.95)},
	})

	// A malformed message from kcat comes back to kcat from the DLQ with
	// its reason header and its bytes.
	bad := `{"transaction_id":"pos-kcat-2","timestamp":"2026-11-07T09:06:00Z","type":"purchase","total":-5,"currency":"nok","loyalty_id":"LOY-3003"}`
	run(bad+"\n", "-P", "-t", "spine.pos")
	s.waitApplied(addr)
	out := run("", "-C", "-t", "spine.dlq", "-e", "-f", `%h %s\n`)
	t.Logf("kcat -C -t spine.dlq -f '%%h %%s\\n':\n%s", out)
	if !strings.Contains(out, "reason=out_of_range") || !strings.Contains(out, bad) {
		t.Errorf("kcat read from spine.dlq:\n%s\nwant a record with header reason=out_of_range and the original value", out)
	}
	if !strings.Contains(out, "channel=pos") || !strings.Contains(out, "topic=spine.pos") {
		t.Errorf("kcat read from spine.dlq:\n%s\nwant channel and topic headers", out)
	}
}

// restartPerson is one person of the restart stream.
type restartPerson struct {
	i     int
	msgs  []e2eMsg
	order int64 // micros of EUR spent
}

// restartStream is a generated stream: n persons, each with one message on
// every channel plus a web order, sharing identifiers so every person
// stitches into one profile; every 25th person also sends a malformed POS
// message.
func restartStream(n int) (persons []restartPerson, bad []e2eMsg) {
	for i := range n {
		u, email, dev := fmt.Sprintf("u-r%04d", i), fmt.Sprintf("shopper.%04d@mail.spine-e2e.net", i), fmt.Sprintf("DEV-R%04d", i)
		ts := func(sec int) string {
			return time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute + time.Duration(sec)*time.Second).Format(time.RFC3339)
		}
		cents := int64(1000 + i*7)
		p := restartPerson{i: i, order: 2 * cents * 10_000}
		add := func(ch canon.Channel, format string, args ...any) {
			p.msgs = append(p.msgs, e2eMsg{ch: ch, key: []byte(u), value: fmt.Appendf(nil, format, args...)})
		}
		add(canon.CIAM, `{"event_id":"ciam-r%04d","timestamp":"%s","event":"registered","user_id":"%s","email":"%s"}`, i, ts(0), u, email)
		add(canon.Web, `{"type":"identify","messageId":"web-r%04d-1","timestamp":"%s","anonymousId":"a-r%04d","userId":"%s"}`, i, ts(1), i, u)
		add(canon.Web, `{"type":"track","messageId":"web-r%04d-2","timestamp":"%s","userId":"%s","event":"Order Completed","properties":{"revenue":"%d.%02d","currency":"eur"}}`, i, ts(2), u, cents/100, cents%100)
		add(canon.Mobile, `{"type":"screen","messageId":"mob-r%04d","timestamp":"%s","userId":"%s","name":"Home","context":{"device":{"id":"%s"}}}`, i, ts(3), u, dev)
		add(canon.IoT, `{"message_id":"iot-r%04d","timestamp":"%s","event":"telemetry","device_serial":"%s","metrics":{"temp_c":20}}`, i, ts(4), dev)
		add(canon.POS, `{"transaction_id":"pos-r%04d","timestamp":"%s","type":"purchase","total":"%d.%02d","currency":"eur","email":"%s"}`, i, ts(5), cents/100, cents%100, email)
		add(canon.Support, `{"event_id":"sup-r%04d","timestamp":"%s","ticket_id":"T-r%04d","event":"ticket_opened","email":"%s","medium":"chat"}`, i, ts(6), i, email)
		persons = append(persons, p)
		if i%25 == 0 {
			bad = append(bad, e2eMsg{ch: canon.POS, key: []byte(u),
				value: fmt.Appendf(nil, `{"transaction_id":"pos-r%04d-bad","timestamp":"%s","type":"purchase","total":-1,"currency":"eur","email":"%s"}`, i, ts(7), email)})
		}
	}
	return persons, bad
}

// TestRestartMidStream stops the engine in the middle of a stream, starts a
// new process on the same state, and finishes the stream: every count is
// exact, nothing lost and nothing counted twice.
func TestRestartMidStream(t *testing.T) {
	addr, _ := kafkatest.Cluster(t)
	dir := t.TempDir()
	persons, bad := restartStream(150)
	var all []e2eMsg
	var lists [][]e2eMsg
	for _, p := range persons {
		lists = append(lists, p.msgs)
	}
	all = e2eInterleave(lists...)
	// Interleave the malformed ones through the stream.
	for i, b := range bad {
		at := (i*len(all))/len(bad) + i
		all = slices.Insert(all, at, b)
	}
	half := len(all) / 2
	// Producer retries re-send part of the first half with the second.
	second := append(slices.Clone(all[half:]), all[half-40:half]...)

	// Small batches (the default is 5000), so the stop lands between
	// batches of one stream.
	s1 := startE2ESpine(t, addr, dir, "--max-poll-records", "64")
	e2eProduce(t, addr, all[:half])
	e2eWaitFor(t, "engine applying the first half", func() bool { return s1.p.engine.Stats().Events >= uint64(half)/3 })
	stopAt := time.Now()
	if err := s1.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("first process stopped in %v", time.Since(stopAt).Round(time.Millisecond))
	st1 := s1.p.engine.Stats()
	dlq1 := e2eSumCounter(t, s1.p, "spine_ingest_dlq_total")
	t.Logf("first process stopped after %d of %d events of the first half", st1.Events, half-e2eCountIn(bad, all[:half]))
	if st1.Events >= uint64(half-e2eCountIn(bad, all[:half])) {
		t.Log("the first process applied the whole first half before it stopped; the restart is not mid-stream this time")
	}

	e2eProduce(t, addr, second)
	s2 := startE2ESpine(t, addr, dir, "--max-poll-records", "64")
	s2.waitApplied(addr)
	st2 := s2.p.engine.Stats()
	t.Logf("second process applied the rest in %v", time.Since(stopAt).Round(time.Millisecond))

	nValid := uint64(len(all) - len(bad))
	if got := st1.Events + st2.Events; got != nValid {
		t.Errorf("events applied: %d before the restart + %d after = %d, want %d", st1.Events, st2.Events, got, nValid)
	}
	if got := st1.Duplicates + st2.Duplicates; got != 40 {
		t.Errorf("duplicates skipped = %d, want the 40 re-sent", got)
	}
	if st2.Profiles != uint64(len(persons)) {
		t.Errorf("profiles = %d, want %d", st2.Profiles, len(persons))
	}
	for _, p := range persons {
		s2.checkPerson(e2ePerson{
			name: fmt.Sprintf("person %d", p.i),
			ids: []canon.Identifier{e2eID(canon.UserID, fmt.Sprintf("u-r%04d", p.i)),
				e2eID(canon.Email, fmt.Sprintf("shopper.%04d@mail.spine-e2e.net", p.i)),
				e2eID(canon.DeviceID, fmt.Sprintf("DEV-R%04d", p.i))},
			level: canon.Registered,
			events: map[canon.Channel]int64{canon.Web: 2, canon.Mobile: 1, canon.IoT: 1, canon.POS: 1,
				canon.Support: 1, canon.CIAM: 1},
			orders: 2,
			spend:  canon.Amounts{"EUR": p.order},
		})
	}
	t.Logf("profiles checked through the API after %v", time.Since(stopAt).Round(time.Millisecond))
	// Every malformed record is dead-lettered once: the soft stop finished
	// the batch in flight, so none was written twice.
	dlq2 := e2eSumCounter(t, s2.p, "spine_ingest_dlq_total")
	if dlq1+dlq2 != float64(len(bad)) {
		t.Errorf("spine_ingest_dlq_total: %v before the restart + %v after, want %d", dlq1, dlq2, len(bad))
	}
	seen := map[string]int{}
	for _, r := range kafkatest.Consume(t, addr, "spine.dlq", len(bad), e2eWait) {
		seen[string(r.Value)]++
	}
	for _, b := range bad {
		if seen[string(b.value)] != 1 {
			t.Errorf("dlq holds %s %d times, want once", b.value, seen[string(b.value)])
		}
	}
}

// e2eCountIn counts the messages of sub found in msgs.
func e2eCountIn(sub, msgs []e2eMsg) int {
	n := 0
	for _, m := range msgs {
		if slices.ContainsFunc(sub, func(s e2eMsg) bool { return bytes.Equal(s.value, m.value) }) {
			n++
		}
	}
	return n
}

// e2eSumCounter adds up every series of a counter in p's registry; it works
// after the process stopped, when /metrics no longer answers.
func e2eSumCounter(t *testing.T, p *process, name string) float64 {
	t.Helper()
	fams, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
