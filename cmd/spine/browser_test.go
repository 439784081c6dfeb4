package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/bench/gen"
	"github.com/spinecdp/spine/schemas/canon"
)

// The end-to-end browser test: the whole system in-process as `spine demo`
// runs it (embedded broker, engine, sinks, API), generated traffic, and the
// dashboard driven in headless Chromium through chromedriver's W3C
// WebDriver HTTP API, spoken here with net/http so that no browser
// automation module is needed. Debian's chromium and chromium-driver
// packages provide the binaries (deploy/deps.sh installs them).

const (
	chromiumPath     = "/usr/bin/chromium"
	chromedriverPath = "/usr/bin/chromedriver"
	browserPersons   = 300
	// webElementKey is the W3C name of an element reference in JSON.
	webElementKey = "element-6066-11e4-a52e-4f735466cecf"
)

func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test; skipped with -short")
	}
	chromium, driver := browserBinaries(t)
	artifacts := os.Getenv("SPINE_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	sys := startSystem(t, browserPersons)
	t.Logf("system started and %d events ingested in %s", sys.events, time.Since(t0).Round(time.Millisecond))

	t1 := time.Now()
	wd := newWebDriver(t, driver, chromium)
	t.Logf("chromium session started in %s", time.Since(t1).Round(time.Millisecond))

	// Log in with the read-only token.
	wd.navigate(sys.url + "/")
	wd.waitFor("the token prompt", func() (bool, string) {
		return wd.script(`return !document.getElementById('login').hidden`) == "true", ""
	})
	wd.typeInto("#token", sys.reader)
	wd.click("#login-submit")
	wd.waitFor("the dashboard to load", func() (bool, string) {
		got := wd.script(`return document.getElementById('login').hidden && document.getElementById('status-time').textContent`)
		return got != "false" && got != `""`, got
	})

	// The KPIs: the engine's figures when it serves the Dashboard
	// capability, else the "ClickHouse off" note.
	var dash struct {
		Source string           `json:"source"`
		Totals map[string]int64 `json:"totals"`
	}
	switch code := sys.getJSON(t, sys.reader, "/v1/dashboard", &dash); code {
	case http.StatusOK:
		for _, k := range []string{"events", "profiles", "dlq"} {
			want := "–"
			if v, ok := dash.Totals[k]; ok {
				want = groupDigits(v)
			}
			wd.waitFor("KPI "+k+" = "+want, func() (bool, string) {
				got := wd.text("#kpi-" + k)
				return got == want, got
			})
		}
		if dash.Source == "engine" {
			wd.waitFor("the ClickHouse-off note", func() (bool, string) {
				got := wd.text("#note")
				return strings.Contains(got, "ClickHouse off"), got
			})
		}
		t.Logf("dashboard source %q, totals %v", dash.Source, dash.Totals)
	case 501: // the engine offers no dashboard
		wd.waitFor("the ClickHouse-off note", func() (bool, string) {
			got := wd.text("#note")
			return strings.Contains(got, "ClickHouse off"), got
		})
		t.Logf("GET /v1/dashboard = 501: the engine has no Dashboard capability; the page says so")
	default:
		t.Fatalf("GET /v1/dashboard = %d", code)
	}
	wd.screenshot(filepath.Join(artifacts, "dashboard-overview.png"))

	// Search the customer by email, typed in upper case: the API normalizes.
	email := sys.customerEmail
	var prof canon.Profile
	if code := sys.getJSON(t, sys.reader, "/v1/profiles?type=email&value="+url.QueryEscape(email), &prof); code != 200 {
		t.Fatalf("GET /v1/profiles by email = %d", code)
	}
	var graph struct {
		Identifiers []json.RawMessage `json:"identifiers"`
		Links       []struct {
			A, B canon.Identifier
		} `json:"links"`
	}
	if code := sys.getJSON(t, sys.reader, "/v1/profiles/"+prof.ID+"/graph", &graph); code != 200 {
		t.Fatalf("GET graph = %d", code)
	}
	wd.search("email", strings.ToUpper(email))
	wd.waitFor("the profile "+prof.ID, func() (bool, string) {
		got := wd.text("#p-id")
		return got == prof.ID, got
	})
	var events int64
	for _, n := range prof.Computed.EventsByChannel {
		events += n
	}
	for sel, want := range map[string]string{
		"#p-orders": groupDigits(prof.Computed.OrderCount),
		"#p-events": groupDigits(events),
		"#p-level":  string(prof.Level),
	} {
		if got := wd.text(sel); got != want {
			t.Errorf("%s shows %q, want %q (from the JSON API)", sel, got, want)
		}
	}
	wantNodes := min(len(graph.Identifiers), 60)
	wd.waitFor(fmt.Sprintf("%d graph nodes", wantNodes), func() (bool, string) {
		got := wd.script(`return document.querySelectorAll('#graph svg .node').length`)
		return got == strconv.Itoa(wantNodes), got
	})
	if got := wd.script(`return document.querySelectorAll('#graph svg line.edge').length`); got == "0" {
		t.Errorf("the graph has no edges; the profile has %d links", len(graph.Links))
	}
	t.Logf("customer %s: %d identifiers, %d links, %d orders, %d events", prof.ID, len(graph.Identifiers), len(graph.Links), prof.Computed.OrderCount, events)
	wd.screenshot(filepath.Join(artifacts, "dashboard-customer.png"))

	// A read token cannot unlink: the page shows the API's answer, and the
	// link stays.
	wd.click(`#links button[data-action="unlink"]`)
	wd.click(`#links button[data-action="unlink"]`)
	wd.waitFor("the scope error", func() (bool, string) {
		got := wd.text("#graph-message")
		return strings.Contains(got, "token lacks the admin scope") && strings.Contains(got, "403"), got
	})
	first := graph.Links[0]
	if !sys.linked(t, first.A, first.B) {
		t.Fatalf("a refused unlink removed the link")
	}

	// An admin token can: sign out, sign in as admin, unlink the same link.
	wd.click("#signout")
	wd.typeInto("#token", sys.admin)
	wd.click("#login-submit")
	wd.waitFor("the admin session", func() (bool, string) {
		return wd.script(`return document.getElementById('login').hidden`) == "true", ""
	})
	wd.search("email", email)
	wd.waitFor("the graph again", func() (bool, string) {
		got := wd.script(`return document.querySelectorAll('#links button[data-action="unlink"]').length`)
		return got != "0", got
	})
	wd.click(`#links button[data-action="unlink"]`)
	wd.click(`#links button[data-action="unlink"]`)
	wd.waitFor("the unlink to succeed", func() (bool, string) {
		got := wd.text("#graph-message")
		return strings.Contains(got, "Link removed"), got
	})
	if sys.linked(t, first.A, first.B) {
		t.Errorf("the admin's unlink did not remove the link")
	}
	wd.screenshot(filepath.Join(artifacts, "dashboard-after-unlink.png"))
	t.Logf("screenshots in %s; whole test %s", artifacts, time.Since(t0).Round(time.Millisecond))
}

// browserBinaries finds Chromium and chromedriver. CI must have them
// (deploy/deps.sh installs them), so their absence fails there; elsewhere
// the test is skipped.
func browserBinaries(t *testing.T) (chromium, driver string) {
	t.Helper()
	find := func(path, name string) string {
		if _, err := os.Stat(path); err == nil {
			return path
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		return ""
	}
	chromium, driver = find(chromiumPath, "chromium"), find(chromedriverPath, "chromedriver")
	if chromium != "" && driver != "" {
		return chromium, driver
	}
	msg := "chromium and chromedriver are needed (Debian packages chromium chromium-driver; deploy/deps.sh installs them)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// testSystem is the engine process with its broker, serving the API on a
// test server, after the generated traffic was ingested.
type testSystem struct {
	url           string
	reader, admin string // bearer secrets
	events        uint64
	customerEmail string // a stitched customer with orders, found through the truth file
}

func startSystem(t *testing.T, persons int) *testSystem {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())

	broker, err := startBroker("127.0.0.1:0", "", "spine.", 3, log)
	if err != nil {
		t.Fatal(err)
	}
	fs, o := runFlags("browser-test")
	if err := fs.parse(nil, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	sys := &testSystem{reader: "reader-" + randomHex(12), admin: "admin-" + randomHex(12)}
	o.Brokers, o.Data, o.NoSync = broker.ListenAddrs(), t.TempDir(), true
	// Port 0: the test serves the API's handler itself (below), so no
	// fixed port can collide with another test run.
	o.HTTP = "127.0.0.1:0"
	o.Tokens = sys.reader + ":read," + sys.admin + ":read+write+admin"
	p, err := startProcess(ctx, o, log)
	if err != nil {
		broker.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := p.wait(); err != nil {
			t.Errorf("process: %v", err)
		}
		broker.Close()
	})
	srv := httptest.NewServer(p.api.Handler())
	t.Cleanup(srv.Close)
	sys.url = srv.URL

	waitUntil(t, 30*time.Second, "the consumer to join", func() bool { return p.cons.Ready() })
	cfg := gen.DefaultConfig()
	cfg.Persons, cfg.Seed, cfg.Hard, cfg.TopicPrefix = persons, 1, true, o.TopicPrefix
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Produce(ctx, o.Brokers, g, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Ingestion is done when the engine applied every event the generator
	// says should be applied (its truth file) and the sinks caught up. In
	// case the engine ever applies fewer (a dropped late event), a long
	// quiet period with no consumer lag also ends the wait.
	want := uint64(g.Truth().Totals.Accepted)
	var last uint64
	stable := time.Now()
	waitUntil(t, 120*time.Second, "ingestion to settle", func() bool {
		s := p.engine.Stats()
		if s.Events >= want && s.Backlog == 0 {
			last = s.Events
			return true
		}
		lag, ok := consumerLag(p)
		if s.Events != last || s.Backlog > 0 || s.Events == 0 || !ok || lag > 0 {
			last, stable = s.Events, time.Now()
			return false
		}
		return time.Since(stable) > 5*time.Second
	})
	sys.events = last
	tt := g.Truth().Totals
	t.Logf("ingested %d events, %d duplicates skipped; the generator sent %d messages, %d to apply", last, p.engine.Stats().Duplicates, tt.Messages, tt.Accepted)

	// A customer worth showing: stitched across channels, with orders and
	// a handful of identifiers (a readable graph).
	best := 0
	for _, pt := range g.Truth().Persons {
		if pt.OrderCount == 0 || len(pt.EventsByChannel) < 3 {
			continue
		}
		var email string
		for _, id := range pt.Identifiers {
			if id.Type == canon.Email {
				email = id.Value
				break
			}
		}
		if email == "" {
			continue
		}
		prof, err := p.engine.Lookup(ctx, canon.Identifier{Type: canon.Email, Value: email})
		if err != nil || prof.Computed.OrderCount == 0 {
			continue
		}
		if n := len(prof.Identifiers); n > best && n <= 14 {
			best, sys.customerEmail = n, email
		}
	}
	if best < 2 {
		t.Fatalf("no stitched customer with orders and an email among %d persons", persons)
	}
	return sys
}

// consumerLag sums spine_consumer_lag_records; ok is false until the
// consumer has reported lag for at least one partition.
func consumerLag(p *process) (lag float64, ok bool) {
	mfs, err := p.reg.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != "spine_consumer_lag_records" {
			continue
		}
		for _, m := range mf.GetMetric() {
			lag += m.GetGauge().GetValue()
			ok = true
		}
	}
	return lag, ok
}

// getJSON GETs path with a bearer secret and decodes a 200 answer into v.
func (s *testSystem) getJSON(t *testing.T, secret, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return res.StatusCode
}

// linked reports whether the graph of a's profile holds the link a–b.
func (s *testSystem) linked(t *testing.T, a, b canon.Identifier) bool {
	t.Helper()
	var p canon.Profile
	if code := s.getJSON(t, s.reader, "/v1/profiles?type="+string(a.Type)+"&value="+url.QueryEscape(a.Value), &p); code != 200 {
		t.Fatalf("lookup of a link's side = %d", code)
	}
	var g struct {
		Links []struct{ A, B canon.Identifier } `json:"links"`
	}
	if code := s.getJSON(t, s.reader, "/v1/profiles/"+p.ID+"/graph", &g); code != 200 {
		t.Fatalf("GET graph = %d", code)
	}
	for _, l := range g.Links {
		if (l.A == a && l.B == b) || (l.A == b && l.B == a) {
			return true
		}
	}
	return false
}

// webDriver is a W3C WebDriver session with chromedriver. Its methods fail
// the test on any protocol error, so the test reads as a script.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:PORT/session/ID
	timeout time.Duration
}

func newWebDriver(t *testing.T, driver, chromium string) *webDriver {
	t.Helper()
	port := freePort(t)
	logPath := filepath.Join(t.TempDir(), "chromedriver.log")
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port), "--log-path="+logPath)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	root := "http://127.0.0.1:" + strconv.Itoa(port)
	waitUntil(t, 20*time.Second, "chromedriver to answer", func() bool {
		var st struct {
			Value struct{ Ready bool } `json:"value"`
		}
		res, err := http.Get(root + "/status")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return json.NewDecoder(res.Body).Decode(&st) == nil && st.Value.Ready
	})
	// The flags the machine notes ask for: headless as root without a
	// sandbox, and none of Chromium's background connections, which a
	// closed network refuses (and which would make the test slow and
	// flaky). A fresh profile directory per run keeps runs independent.
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--window-size=1280,1000", "--lang=en-US", "--user-data-dir=" + t.TempDir(),
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":        "chrome",
		"goog:chromeOptions": map[string]any{"binary": chromium, "args": args},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	raw, err := wdCall("POST", root+"/session", caps)
	if err == nil {
		err = json.Unmarshal(raw, &created)
	}
	if err != nil || created.SessionID == "" {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("new WebDriver session: %v\nchromedriver log tail:\n%s", err, tail(log, 3000))
	}
	wd := &webDriver{t: t, base: root + "/session/" + created.SessionID, timeout: 20 * time.Second}
	t.Cleanup(func() { _, _ = wdCall("DELETE", wd.base, nil) })
	wd.setViewport(1280, 800)
	return wd
}

// setViewport sizes the window so that the page itself gets w x h pixels:
// even headless Chromium reserves room for window decorations, so a
// 1280x800 window shows a shorter page.
func (wd *webDriver) setViewport(w, h int) {
	wd.t.Helper()
	wd.do("POST", "/window/rect", map[string]any{"width": w, "height": h})
	var inner []int
	if err := json.Unmarshal([]byte(wd.script(`return [window.innerWidth, window.innerHeight]`)), &inner); err != nil || len(inner) != 2 {
		wd.t.Fatalf("read the viewport size: %v", err)
	}
	wd.do("POST", "/window/rect", map[string]any{"width": 2*w - inner[0], "height": 2*h - inner[1]})
}

// wdCall makes one WebDriver request and returns its "value".
func wdCall(method, url string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	} else if method == "POST" {
		rd = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("webdriver %s %s: %d %s", method, url, res.StatusCode, tail(b, 500))
	}
	if res.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		_ = json.Unmarshal(out.Value, &e)
		return nil, &wdError{Code: e.Error, Message: e.Message}
	}
	return out.Value, nil
}

type wdError struct{ Code, Message string }

func (e *wdError) Error() string { return "webdriver: " + e.Code + ": " + firstLine(e.Message) }

func (wd *webDriver) do(method, path string, body any) json.RawMessage {
	wd.t.Helper()
	v, err := wdCall(method, wd.base+path, body)
	if err != nil {
		wd.t.Fatalf("%s %s: %v", method, path, err)
	}
	return v
}

func (wd *webDriver) navigate(u string) {
	wd.t.Helper()
	wd.do("POST", "/url", map[string]string{"url": u})
}

// find waits for the first element matching css and returns its reference.
func (wd *webDriver) find(css string) string {
	wd.t.Helper()
	var id string
	wd.waitFor("element "+css, func() (bool, string) {
		v, err := wdCall("POST", wd.base+"/element", map[string]string{"using": "css selector", "value": css})
		if err != nil {
			return false, err.Error()
		}
		var ref map[string]string
		if err := json.Unmarshal(v, &ref); err != nil {
			return false, err.Error()
		}
		id = ref[webElementKey]
		return id != "", ""
	})
	return id
}

// click clicks the first element matching css, retrying while it is not
// yet interactable (hidden behind the login overlay, re-rendered).
func (wd *webDriver) click(css string) {
	wd.t.Helper()
	wd.waitFor("a click on "+css, func() (bool, string) {
		_, err := wdCall("POST", wd.base+"/element/"+wd.find(css)+"/click", nil)
		return err == nil, fmt.Sprint(err)
	})
}

func (wd *webDriver) typeInto(css, text string) {
	wd.t.Helper()
	el := wd.find(css)
	wd.do("POST", "/element/"+el+"/clear", nil)
	wd.do("POST", "/element/"+el+"/value", map[string]string{"text": text})
}

// text is the rendered text of the first element matching css.
func (wd *webDriver) text(css string) string {
	wd.t.Helper()
	v, err := wdCall("GET", wd.base+"/element/"+wd.find(css)+"/text", nil)
	if err != nil {
		return "<" + err.Error() + ">" // re-rendered between find and read: the caller polls again
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return s
}

// script runs JavaScript in the page and returns its result as JSON text.
func (wd *webDriver) script(js string) string {
	wd.t.Helper()
	return string(wd.do("POST", "/execute/sync", map[string]any{"script": js, "args": []any{}}))
}

func (wd *webDriver) search(typ, value string) {
	wd.t.Helper()
	wd.click(`#search-type option[value="` + typ + `"]`)
	wd.typeInto("#search-value", value)
	wd.click("#search-submit")
}

func (wd *webDriver) screenshot(path string) {
	wd.t.Helper()
	var b64 string
	if err := json.Unmarshal(wd.do("GET", "/screenshot", nil), &b64); err != nil {
		wd.t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		wd.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		wd.t.Fatal(err)
	}
	wd.t.Logf("screenshot: %s", path)
}

// waitFor polls cond until it holds, failing the test with cond's last
// report after the session's timeout.
func (wd *webDriver) waitFor(what string, cond func() (bool, string)) {
	wd.t.Helper()
	deadline := time.Now().Add(wd.timeout)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			wd.t.Fatalf("timed out after %s waiting for %s (last: %s)", wd.timeout, what, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// groupDigits formats n as the page does (Intl.NumberFormat en-US).
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
