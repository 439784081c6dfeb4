package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// dashEngine adds the Dashboard capability to the full fake engine.
type dashEngine struct {
	fullEngine
	doc string
	err error
}

func (e dashEngine) Dashboard(context.Context) (json.RawMessage, error) {
	if e.err != nil {
		return nil, e.err
	}
	return json.RawMessage(e.doc), nil
}

// engineDoc is what an engine without ClickHouse might answer: no dlq, since
// dead letters never reach it.
const engineDoc = `{"generated_at":"2026-11-01T12:00:00Z","source":"engine",
	"totals":{"events":120,"profiles":40,"merges":7,"conflicts":2,"quarantined":1},
	"events_per_channel":[{"bucket":"2026-11-01T12:00:00Z","channel":"web","events":120}],
	"identity_levels":[{"level":"verified","profiles":3}],
	"lifecycle_funnel":[],"revenue_by_channel":[{"channel":"pos","currency":"USD","amount":"123.45"}],
	"identity_log":[{"type":"merge","count":7}],"consent_rates":[]}`

// newDashServer returns a server whose engine answers doc (or err), and
// whose gatherer holds the dead-letter counts in dlq ("channel/reason" ->
// count); dlq nil means no gatherer at all.
func newDashServer(t *testing.T, doc string, err error, dlq map[string]float64) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Tokens = testTokens
	cfg.RateLimit = RateLimit{}
	var gatherer prometheus.Gatherer
	reg := prometheus.NewRegistry()
	if dlq != nil {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: dlqMetric, Help: "test"}, []string{"channel", "reason"})
		reg.MustRegister(c)
		for k, v := range dlq {
			ch, reason, _ := strings.Cut(k, "/")
			c.WithLabelValues(ch, reason).Add(v)
		}
		gatherer = reg
	}
	s, e := New(cfg, dashEngine{fullEngine{newFakeEngine()}, doc, err}, fakeNorm{}, nil, reg, gatherer)
	if e != nil {
		t.Fatalf("New: %v", e)
	}
	return s
}

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func TestDashboardPageNeedsNoAuth(t *testing.T) {
	s := newTestServer(t, false, nil, nil) // no capabilities: the page is static
	for _, c := range []struct {
		target, ctype, contains string
	}{
		{"/", "text/html", `<script src="/ui/app.js"`},
		{"/ui/app.js", "text/javascript", "/v1/dashboard"},
		{"/ui/app.css", "text/css", ".kpi"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		w := s.do(request("GET", c.target, "", ""))
		if w.Code != 200 {
			t.Errorf("GET %s without a token = %d, want 200", c.target, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, c.ctype) {
			t.Errorf("GET %s: Content-Type = %q, want %s", c.target, got, c.ctype)
		}
		if !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.target, c.contains)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy = %q, want script-src 'self'", c.target, csp)
		}
		if w.Header().Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", c.target)
		}
	}
	// The page holds no data: none of the fixture's identifiers or ids.
	page := s.do(request("GET", "/", "", "")).Body.String()
	for _, secret := range []string{bobEmail.Value, aliceEmail.Value, "p1", secretReader} {
		if strings.Contains(page, secret) {
			t.Errorf("the page contains %q; it must hold no data", secret)
		}
	}
}

func TestDashboardPageCaching(t *testing.T) {
	s := newTestServer(t, false, nil, nil)
	w := s.do(request("GET", "/ui/app.js", "", ""))
	r := request("GET", "/ui/app.js", "", "")
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	if w := s.do(r); w.Code != http.StatusNotModified {
		t.Errorf("GET /ui/app.js with its ETag = %d, want 304", w.Code)
	}
	if w := s.do(request("HEAD", "/", "", "")); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD / = %d with %d body bytes, want 200 and none", w.Code, w.Body.Len())
	}
}

func TestDashboardPageUnknownPaths(t *testing.T) {
	s := newTestServer(t, false, nil, nil)
	for _, target := range []string{"/ui/nope.js", "/ui/", "/index.html", "/ui/sub/app.js", "/nope"} {
		w := s.do(request("GET", target, "", ""))
		if w.Code != 404 || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("GET %s = %d %q, want a JSON 404", target, w.Code, w.Body)
		}
	}
	if w := s.do(request("POST", "/", "", secretAll)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", w.Code)
	}
}

// TestDashboardPageAssetsExist checks every /ui/ reference of the page
// against the embedded files, so a renamed asset fails here and not in a
// browser.
func TestDashboardPageAssetsExist(t *testing.T) {
	page := string(uiAssets["index.html"].body)
	refs := regexp.MustCompile(`"/ui/([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Fatal("index.html references no /ui/ assets")
	}
	for _, m := range refs {
		if _, ok := uiAssets[m[1]]; !ok {
			t.Errorf("index.html references /ui/%s, which is not embedded", m[1])
		}
	}
}

func TestDashboardScopes(t *testing.T) {
	s := newDashServer(t, engineDoc, nil, map[string]float64{})
	for _, c := range []struct {
		secret string
		want   int
	}{
		{"", 401}, {"nope-0123456789abcdef", 401}, {secretWriter, 403}, {secretAdmin, 403}, {secretReader, 200}, {secretAll, 200},
	} {
		w := serve(s, request("GET", "/v1/dashboard", "", c.secret))
		if w.Code != c.want {
			t.Errorf("GET /v1/dashboard with %q = %d %s, want %d", c.secret, w.Code, w.Body, c.want)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET /v1/dashboard with %q: Cache-Control = %q, want no-store", c.secret, got)
		}
	}
}

func TestDashboardWithoutCapability(t *testing.T) {
	s := newTestServer(t, true, nil, nil) // every capability but Dashboard
	w := s.do(request("GET", "/v1/dashboard", "", secretReader))
	if w.Code != 501 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Errorf("GET /v1/dashboard without the capability = %d %s, want a JSON 501", w.Code, w.Body)
	}
}

func decodeDash(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if w.Code != 200 {
		t.Fatalf("GET /v1/dashboard = %d %s, want 200", w.Code, w.Body)
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return doc
}

func TestDashboardDLQFromRegistry(t *testing.T) {
	s := newDashServer(t, engineDoc, nil, map[string]float64{
		"web/invalid_json": 3, "pos/missing_id": 1, "iot/invalid_json": 3, "ciam/no_identifier": 0,
	})
	doc := decodeDash(t, serve(s, request("GET", "/v1/dashboard", "", secretReader)))
	wantDLQ := []any{
		map[string]any{"channel": "iot", "reason": "invalid_json", "count": 3.0},
		map[string]any{"channel": "web", "reason": "invalid_json", "count": 3.0},
		map[string]any{"channel": "pos", "reason": "missing_id", "count": 1.0},
	}
	if !reflect.DeepEqual(doc["dlq"], wantDLQ) {
		t.Errorf("dlq = %v, want %v (largest first, zero counts left out)", doc["dlq"], wantDLQ)
	}
	totals, _ := doc["totals"].(map[string]any)
	if totals["dlq"] != 7.0 || totals["events"] != 120.0 || totals["merges"] != 7.0 {
		t.Errorf("totals = %v, want dlq 7 added and the engine's figures kept", totals)
	}
	// Everything else passes through.
	if doc["source"] != "engine" || doc["generated_at"] != "2026-11-01T12:00:00Z" {
		t.Errorf("source, generated_at = %v, %v; want the engine's", doc["source"], doc["generated_at"])
	}
	if rev, _ := doc["revenue_by_channel"].([]any); len(rev) != 1 || rev[0].(map[string]any)["amount"] != "123.45" {
		t.Errorf("revenue_by_channel = %v, want the engine's, amount as a string", doc["revenue_by_channel"])
	}
}

func TestDashboardKeepsOwnDLQ(t *testing.T) {
	own := `{"generated_at":"2026-11-01T12:00:00Z","source":"clickhouse","totals":{"dlq":9},"dlq":[{"channel":"web","reason":"x","count":9}]}`
	s := newDashServer(t, own, nil, map[string]float64{"web/invalid_json": 3})
	doc := decodeDash(t, serve(s, request("GET", "/v1/dashboard", "", secretReader)))
	if d := doc["dlq"].([]any); len(d) != 1 || d[0].(map[string]any)["count"] != 9.0 {
		t.Errorf("dlq = %v, want the capability's own", doc["dlq"])
	}
	if doc["totals"].(map[string]any)["dlq"] != 9.0 {
		t.Errorf("totals.dlq = %v, want the capability's 9", doc["totals"])
	}
}

func TestDashboardWithoutGatherer(t *testing.T) {
	s := newDashServer(t, `{"source":"engine","totals":{"events":1},"dlq":null}`, nil, nil)
	doc := decodeDash(t, serve(s, request("GET", "/v1/dashboard", "", secretReader)))
	if d, ok := doc["dlq"].([]any); !ok || len(d) != 0 {
		t.Errorf("dlq = %#v, want an empty list", doc["dlq"])
	}
	if _, ok := doc["totals"].(map[string]any)["dlq"]; ok {
		t.Errorf("totals = %v: without a gatherer the server knows no dlq total and must not invent one", doc["totals"])
	}
}

func TestDashboardMissingTotals(t *testing.T) {
	s := newDashServer(t, `{"source":"engine"}`, nil, map[string]float64{"web/invalid_json": 2})
	doc := decodeDash(t, serve(s, request("GET", "/v1/dashboard", "", secretReader)))
	if doc["totals"].(map[string]any)["dlq"] != 2.0 {
		t.Errorf("totals = %v, want {dlq: 2}", doc["totals"])
	}
}

func TestDashboardErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  string
		err  error
		want int
	}{
		{"engine fails", "", errors.New("fake: clickhouse down"), 500},
		{"timeout", "", context.DeadlineExceeded, 503},
		{"not an object", `[1,2]`, nil, 500},
		{"invalid JSON", `{"source":`, nil, 500},
		{"totals not an object", `{"totals":[1]}`, nil, 500},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newDashServer(t, c.doc, c.err, map[string]float64{"web/invalid_json": 1})
			w := serve(s, request("GET", "/v1/dashboard", "", secretReader))
			if w.Code != c.want || !strings.Contains(w.Body.String(), `"error"`) {
				t.Errorf("GET /v1/dashboard = %d %s, want a JSON %d", w.Code, w.Body, c.want)
			}
			if strings.Contains(w.Body.String(), "clickhouse down") {
				t.Errorf("body %s shows the engine's error; want it logged only", w.Body)
			}
		})
	}
}
