package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// endpointCase is one request against a fresh fixture and what must come
// back. full selects the engine with every optional capability.
type endpointCase struct {
	name           string
	full           bool
	method, target string
	body           string
	secret         string
	want           int
	check          func(t *testing.T, w *httptest.ResponseRecorder, e *fakeEngine)
}

func wantBody(sub string) func(*testing.T, *httptest.ResponseRecorder, *fakeEngine) {
	return func(t *testing.T, w *httptest.ResponseRecorder, _ *fakeEngine) {
		t.Helper()
		if !strings.Contains(w.Body.String(), sub) {
			t.Errorf("body = %s, want it to contain %q", w.Body, sub)
		}
	}
}

func wantHeader(name, sub string) func(*testing.T, *httptest.ResponseRecorder, *fakeEngine) {
	return func(t *testing.T, w *httptest.ResponseRecorder, _ *fakeEngine) {
		t.Helper()
		if got := w.Header().Get(name); !strings.Contains(got, sub) {
			t.Errorf("header %s = %q, want it to contain %q", name, got, sub)
		}
	}
}

func wantCommand(kind canon.CommandKind, actor string) func(*testing.T, *httptest.ResponseRecorder, *fakeEngine) {
	return func(t *testing.T, _ *httptest.ResponseRecorder, e *fakeEngine) {
		t.Helper()
		if len(e.cmds) != 1 || e.cmds[0].Kind != kind || e.cmds[0].Actor != actor || e.cmds[0].Time.IsZero() {
			t.Errorf("engine commands = %+v, want one %s by %s with a time", e.cmds, kind, actor)
		}
	}
}

func endpointCases() []endpointCase {
	big := `{"email_marketing": false, "pad": "` + strings.Repeat("x", 70<<10) + `"}`
	bigLink := `{"a":{"type":"email","value":"` + strings.Repeat("x", 70<<10) + `"}}`
	const link = `{"a":{"type":"email","value":" Bob@Shop.IO "},"b":{"type":"device_id","value":"dev-42"}}`
	return []endpointCase{
		// GET /v1/profiles?type=&value=
		{name: "lookup normalizes email", method: "GET", target: "/v1/profiles?type=email&value=%20Bob@Shop.IO%20", secret: secretReader, want: 200, check: wantBody(`"profile_id":"p1"`)},
		{name: "lookup normalizes phone", method: "GET", target: "/v1/profiles?type=phone&value=%2B1%20(555)%20010-0000", secret: secretReader, want: 200, check: wantBody(`"profile_id":"p1"`)},
		{name: "lookup no-store", method: "GET", target: "/v1/profiles?type=device_id&value=dev-42", secret: secretAll, want: 200, check: wantHeader("Cache-Control", "no-store")},
		{name: "lookup missing value", method: "GET", target: "/v1/profiles?type=email", secret: secretReader, want: 400},
		{name: "lookup missing type", method: "GET", target: "/v1/profiles?value=bob@shop.io", secret: secretReader, want: 400},
		{name: "lookup unknown type", method: "GET", target: "/v1/profiles?type=bob@shop.io&value=email", secret: secretReader, want: 400},
		{name: "lookup unknown email", method: "GET", target: "/v1/profiles?type=email&value=carol@shop.io", secret: secretReader, want: 404},
		{name: "lookup blocked email", method: "GET", target: "/v1/profiles?type=email&value=test@example.com", secret: secretReader, want: 404},
		{name: "lookup over-long value", method: "GET", target: "/v1/profiles?type=user_id&value=" + strings.Repeat("u", 600), secret: secretReader, want: 404},
		{name: "lookup without token", method: "GET", target: "/v1/profiles?type=email&value=bob@shop.io", want: 401, check: wantHeader("WWW-Authenticate", `Bearer realm="spine"`)},
		{name: "lookup basic auth", method: "GET", target: "/v1/profiles?type=email&value=bob@shop.io", secret: "-basic", want: 401, check: wantHeader("WWW-Authenticate", "invalid_request")},
		{name: "lookup wrong token", method: "GET", target: "/v1/profiles?type=email&value=bob@shop.io", secret: "nope-0123456789abcdef", want: 401, check: wantHeader("WWW-Authenticate", "invalid_token")},
		{name: "lookup writer forbidden", method: "GET", target: "/v1/profiles?type=email&value=bob@shop.io", secret: secretWriter, want: 403, check: wantHeader("WWW-Authenticate", `scope="read"`)},
		{name: "lookup admin lacks read", method: "GET", target: "/v1/profiles?type=email&value=bob@shop.io", secret: secretAdmin, want: 403},

		// GET /v1/profiles/{id}
		{name: "profile", method: "GET", target: "/v1/profiles/p1", secret: secretReader, want: 200, check: wantBody(`"total_spend":{"EUR":12.5}`)},
		{name: "profile absorbed id", method: "GET", target: "/v1/profiles/p0", secret: secretReader, want: 200, check: wantBody(`"merged_from":["p0"]`)},
		{name: "profile unknown", method: "GET", target: "/v1/profiles/nope", secret: secretReader, want: 404},
		{name: "profile over-long id", method: "GET", target: "/v1/profiles/" + strings.Repeat("p", 600), secret: secretReader, want: 404},
		{name: "profile without token", method: "GET", target: "/v1/profiles/p1", want: 401},
		{name: "profile writer forbidden", method: "GET", target: "/v1/profiles/p1", secret: secretWriter, want: 403},

		// GET /v1/profiles/{id}/graph
		{name: "graph", full: true, method: "GET", target: "/v1/profiles/p1/graph", secret: secretReader, want: 200, check: wantBody(`"links":[]`)},
		{name: "graph unknown", full: true, method: "GET", target: "/v1/profiles/nope/graph", secret: secretReader, want: 404},
		{name: "graph without the capability", method: "GET", target: "/v1/profiles/p1/graph", secret: secretReader, want: 501},
		{name: "graph writer forbidden", full: true, method: "GET", target: "/v1/profiles/p1/graph", secret: secretWriter, want: 403},
		{name: "graph without token", full: true, method: "GET", target: "/v1/profiles/p1/graph", want: 401},

		// GET /v1/profiles/{id}/export
		{name: "export", full: true, method: "GET", target: "/v1/profiles/p1/export", secret: secretAdmin, want: 200, check: wantBody(`"profile":{"profile_id":"p1"`)},
		{name: "export unknown", full: true, method: "GET", target: "/v1/profiles/nope/export", secret: secretAdmin, want: 404},
		{name: "export without the capability", method: "GET", target: "/v1/profiles/p1/export", secret: secretAdmin, want: 501},
		{name: "export reader forbidden", full: true, method: "GET", target: "/v1/profiles/p1/export", secret: secretReader, want: 403},
		{name: "export without token", full: true, method: "GET", target: "/v1/profiles/p1/export", want: 401},

		// POST /v1/profiles/{id}/erase
		{name: "erase", method: "POST", target: "/v1/profiles/p1/erase", secret: secretAdmin, want: 200, check: func(t *testing.T, w *httptest.ResponseRecorder, e *fakeEngine) {
			wantBody(`"profile_ids":["p1","p0"]`)(t, w, e)
			wantCommand(canon.CmdErase, "admin")(t, w, e)
		}},
		{name: "erase unknown", method: "POST", target: "/v1/profiles/nope/erase", secret: secretAdmin, want: 404},
		{name: "erase writer forbidden", method: "POST", target: "/v1/profiles/p1/erase", secret: secretWriter, want: 403},
		{name: "erase without token", method: "POST", target: "/v1/profiles/p1/erase", want: 401},

		// PUT /v1/profiles/{id}/consent
		{name: "consent", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"email_marketing": false, "analytics": true}`, secret: secretWriter, want: 200, check: func(t *testing.T, w *httptest.ResponseRecorder, e *fakeEngine) {
			wantBody(`"email_marketing":{"value":false`)(t, w, e)
			wantCommand(canon.CmdConsent, "writer")(t, w, e)
			if strings.Contains(w.Body.String(), "identifiers") {
				t.Errorf("consent answer %s carries the profile; want consent only", w.Body)
			}
		}},
		{name: "consent unknown purpose", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"telepathy": true}`, secret: secretWriter, want: 400},
		{name: "consent not boolean", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"sms": "no"}`, secret: secretWriter, want: 400},
		{name: "consent null", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"sms": null}`, secret: secretWriter, want: 400},
		{name: "consent empty object", method: "PUT", target: "/v1/profiles/p1/consent", body: `{}`, secret: secretWriter, want: 400},
		{name: "consent array", method: "PUT", target: "/v1/profiles/p1/consent", body: `[true]`, secret: secretWriter, want: 400},
		{name: "consent malformed", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"sms": tru`, secret: secretWriter, want: 400},
		{name: "consent trailing data", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"sms": true} {}`, secret: secretWriter, want: 400},
		{name: "consent no body", method: "PUT", target: "/v1/profiles/p1/consent", secret: secretWriter, want: 400},
		{name: "consent too large", method: "PUT", target: "/v1/profiles/p1/consent", body: big, secret: secretWriter, want: 413},
		{name: "consent unknown profile", method: "PUT", target: "/v1/profiles/nope/consent", body: `{"sms": true}`, secret: secretWriter, want: 404},
		{name: "consent reader forbidden", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"sms": true}`, secret: secretReader, want: 403},
		{name: "consent without token", method: "PUT", target: "/v1/profiles/p1/consent", body: `{"sms": true}`, want: 401},

		// POST and DELETE /v1/links
		{name: "link normalizes", method: "POST", target: "/v1/links", body: link, secret: secretAdmin, want: 200, check: func(t *testing.T, w *httptest.ResponseRecorder, e *fakeEngine) {
			wantCommand(canon.CmdLink, "admin")(t, w, e)
			if len(e.cmds) == 1 && e.cmds[0].Pair.A != bobEmail {
				t.Errorf("link pair a = %v, want the normalized email", e.cmds[0].Pair.A.LogValue())
			}
		}},
		{name: "link conflict", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"email","value":"alice@shop.io"}}`, secret: secretAdmin, want: 409},
		{name: "link unknown identifier", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"email","value":"carol@shop.io"}}`, secret: secretAdmin, want: 404},
		{name: "link missing b", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":"bob@shop.io"}}`, secret: secretAdmin, want: 400},
		{name: "link unknown field", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":"bob@shop.io","trust":"verified"},"b":{"type":"device_id","value":"dev-42"}}`, secret: secretAdmin, want: 400, check: wantBody(`unknown field`)},
		{name: "link unknown type", method: "POST", target: "/v1/links", body: `{"a":{"type":"fax","value":"bob@shop.io"},"b":{"type":"device_id","value":"dev-42"}}`, secret: secretAdmin, want: 400},
		{name: "link blocked value", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":"test@example.com"},"b":{"type":"device_id","value":"dev-42"}}`, secret: secretAdmin, want: 400, check: wantBody(`a.value`)},
		{name: "link same identifier", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"email","value":"BOB@shop.io"}}`, secret: secretAdmin, want: 400},
		{name: "link wrong type", method: "POST", target: "/v1/links", body: `{"a":{"type":"email","value":42},"b":{"type":"device_id","value":"dev-42"}}`, secret: secretAdmin, want: 400},
		{name: "link too large", method: "POST", target: "/v1/links", body: bigLink, secret: secretAdmin, want: 413},
		{name: "link reader forbidden", method: "POST", target: "/v1/links", body: link, secret: secretReader, want: 403},
		{name: "link writer forbidden", method: "POST", target: "/v1/links", body: link, secret: secretWriter, want: 403},
		{name: "link without token", method: "POST", target: "/v1/links", body: link, want: 401},
		{name: "unlink", method: "DELETE", target: "/v1/links", body: link, secret: secretAdmin, want: 200, check: wantCommand(canon.CmdUnlink, "admin")},
		{name: "unlink unknown", method: "DELETE", target: "/v1/links", body: `{"a":{"type":"email","value":"carol@shop.io"},"b":{"type":"device_id","value":"dev-42"}}`, secret: secretAdmin, want: 404},
		{name: "unlink empty body", method: "DELETE", target: "/v1/links", secret: secretAdmin, want: 400},
		{name: "unlink too large", method: "DELETE", target: "/v1/links", body: bigLink, secret: secretAdmin, want: 413},
		{name: "unlink conflict", method: "DELETE", target: "/v1/links", body: `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"email","value":"alice@shop.io"}}`, secret: secretAdmin, want: 409},
		{name: "unlink reader forbidden", method: "DELETE", target: "/v1/links", body: link, secret: secretReader, want: 403},
		{name: "unlink without token", method: "DELETE", target: "/v1/links", body: link, want: 401},

		// GET and DELETE /v1/quarantine
		{name: "quarantine", full: true, method: "GET", target: "/v1/quarantine?limit=10", secret: secretAdmin, want: 200, check: wantBody(`"type":"quarantine"`)},
		{name: "quarantine bad limit", full: true, method: "GET", target: "/v1/quarantine?limit=0", secret: secretAdmin, want: 400},
		{name: "quarantine without the capability", method: "GET", target: "/v1/quarantine", secret: secretAdmin, want: 501},
		{name: "quarantine reader forbidden", full: true, method: "GET", target: "/v1/quarantine", secret: secretReader, want: 403},
		{name: "quarantine without token", full: true, method: "GET", target: "/v1/quarantine", want: 401},
		{name: "release normalizes", method: "DELETE", target: "/v1/quarantine?type=email&value=INFO@store.io", secret: secretAdmin, want: 200, check: wantCommand(canon.CmdRelease, "admin")},
		{name: "release not quarantined", method: "DELETE", target: "/v1/quarantine?type=email&value=bob@shop.io", secret: secretAdmin, want: 404},
		{name: "release blocked", method: "DELETE", target: "/v1/quarantine?type=email&value=test@example.com", secret: secretAdmin, want: 404},
		{name: "release missing params", method: "DELETE", target: "/v1/quarantine", secret: secretAdmin, want: 400},
		{name: "release reader forbidden", method: "DELETE", target: "/v1/quarantine?type=email&value=info@store.io", secret: secretReader, want: 403},
		{name: "release without token", method: "DELETE", target: "/v1/quarantine?type=email&value=info@store.io", want: 401},

		// GET /v1/accounts/{id}
		{name: "account", full: true, method: "GET", target: "/v1/accounts/acme", secret: secretReader, want: 200, check: wantBody(`"members":["p1"]`)},
		{name: "account unknown", full: true, method: "GET", target: "/v1/accounts/nope", secret: secretReader, want: 404},
		{name: "account without the capability", method: "GET", target: "/v1/accounts/acme", secret: secretReader, want: 501},
		{name: "account writer forbidden", full: true, method: "GET", target: "/v1/accounts/acme", secret: secretWriter, want: 403},
		{name: "account without token", full: true, method: "GET", target: "/v1/accounts/acme", want: 401},

		// Operational endpoints, without auth.
		{name: "healthz", method: "GET", target: "/healthz", want: 200, check: wantBody(`"status":"ok"`)},
		{name: "readyz not ready", method: "GET", target: "/readyz", want: 503},
		{name: "metrics", method: "GET", target: "/metrics", want: 200},

		// What the mux answers by itself is JSON too.
		{name: "unknown path", method: "GET", target: "/v2/nothing", secret: secretAll, want: 404},
		{name: "wrong method", method: "PATCH", target: "/v1/links", secret: secretAll, want: 405, check: wantHeader("Allow", "POST")},
	}
}

// runCase runs c against a fresh fixture and checks what every answer must
// satisfy: the status, a JSON error body, no identifier value in errors.
// It returns the mux pattern the request matched and the status.
func runCase(t *testing.T, c endpointCase) (string, int) {
	t.Helper()
	s := newTestServer(t, c.full, nil, nil)
	r := request(c.method, c.target, c.body, c.secret)
	if c.secret == "-basic" {
		r.Header.Set("Authorization", "Basic Ym9iOnNlY3JldA==")
	}
	_, pattern := s.mux.Handler(r)
	w := s.do(r)
	if w.Code != c.want {
		t.Errorf("%s %s = %d %s, want %d", c.method, c.target, w.Code, w.Body, c.want)
	}
	if w.Code >= 400 {
		checkErrorBody(t, w)
	}
	if c.check != nil {
		c.check(t, w, s.eng)
	}
	return pattern, w.Code
}

func checkErrorBody(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body, err)
	}
	if msg, ok := body["error"].(string); len(body) != 1 || !ok || msg == "" {
		t.Errorf(`error body = %s, want exactly {"error": "<message>"}`, w.Body)
	}
	low := strings.ToLower(w.Body.String())
	for _, v := range []string{"bob@shop.io", "alice@shop.io", "carol@shop.io", "info@store.io", "test@example.com", "dev-42", "5550100000"} {
		if strings.Contains(low, v) {
			t.Errorf("error body %s echoes an identifier value", w.Body)
		}
	}
}

func TestEndpoints(t *testing.T) {
	for _, c := range endpointCases() {
		t.Run(c.name, func(t *testing.T) { runCase(t, c) })
	}
}

func TestEraseThenLookupIsNotFound(t *testing.T) {
	s := newTestServer(t, false, nil, nil)
	if w := s.do(request("POST", "/v1/profiles/p1/erase", "", secretAll)); w.Code != 200 {
		t.Fatalf("erase = %d %s, want 200", w.Code, w.Body)
	}
	for _, target := range []string{"/v1/profiles/p1", "/v1/profiles?type=email&value=bob@shop.io", "/v1/profiles?type=device_id&value=dev-42"} {
		if w := s.do(request("GET", target, "", secretAll)); w.Code != 404 {
			t.Errorf("GET %s after erase = %d, want 404", target, w.Code)
		}
	}
	if w := s.do(request("POST", "/v1/profiles/p1/erase", "", secretAll)); w.Code != 404 {
		t.Errorf("second erase = %d, want 404", w.Code)
	}
}

func TestEngineErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
		msg  string
	}{
		{errors.New("badger: value log corrupt at /var/lib/spine/000042.vlog"), 500, "internal error"},
		{&canon.FieldError{Field: "consent", Rule: "purpose retired"}, 500, "internal error"},
		{errors.Join(canon.ErrInvalid, &canon.FieldError{Field: "consent", Rule: "purpose retired"}), 400, "invalid request: consent: purpose retired"},
		{canon.ErrConflict, 409, "conflict"},
		{context.DeadlineExceeded, 503, "request timed out"},
	} {
		var logs bytes.Buffer
		s := newTestServer(t, false, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
		s.eng.fail = tc.err
		w := s.do(request("GET", "/v1/profiles/p1", "", secretReader))
		if w.Code != tc.want || !strings.Contains(w.Body.String(), `"error":"`+tc.msg+`"`) {
			t.Errorf("engine error %q: got %d %s, want %d %q", tc.err, w.Code, w.Body, tc.want, tc.msg)
		}
		if tc.want == 500 && !strings.Contains(logs.String(), "api: request failed") {
			t.Errorf("engine error %q was not logged: %s", tc.err, logs.String())
		}
	}
}

func TestRateLimit(t *testing.T) {
	s := newTestServer(t, false, nil, func(c *Config) { c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 2} })
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	get := func(secret string) *httptest.ResponseRecorder {
		return s.do(request("GET", "/v1/profiles/p1", "", secret))
	}
	for i := range 2 {
		if w := get(secretReader); w.Code != 200 {
			t.Fatalf("request %d within burst = %d, want 200", i, w.Code)
		}
	}
	w := get(secretReader)
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("request past burst = %d Retry-After %q, want 429 and 2", w.Code, w.Header().Get("Retry-After"))
	}
	checkErrorBody(t, w)
	if w := get(secretAll); w.Code != 200 {
		t.Errorf("another token = %d, want 200: buckets are per token", w.Code)
	}
	now = now.Add(2 * time.Second)
	if w := get(secretReader); w.Code != 200 {
		t.Errorf("after refill = %d, want 200", w.Code)
	}
}

func TestReadiness(t *testing.T) {
	ready := false
	s := newTestServer(t, false, nil, func(c *Config) { c.Ready = func() bool { return ready } })
	if w := s.do(request("GET", "/readyz", "", "")); w.Code != 503 {
		t.Errorf("readyz before ready = %d, want 503", w.Code)
	}
	ready = true
	if w := s.do(request("GET", "/readyz", "", "")); w.Code != 200 {
		t.Errorf("readyz when ready = %d, want 200", w.Code)
	}
	s.SetReady(func() bool { return false })
	if w := s.do(request("GET", "/readyz", "", "")); w.Code != 503 {
		t.Errorf("readyz after SetReady(false) = %d, want 503", w.Code)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	s := newTestServer(t, false, nil, nil)
	s.do(request("GET", "/v1/profiles/p1", "", secretReader))
	s.do(request("GET", "/v1/profiles/nope", "", secretReader))
	s.do(request("GET", "/no/such/path/12345", "", ""))
	w := s.do(request("GET", "/metrics", "", ""))
	if w.Code != 200 {
		t.Fatalf("metrics = %d, want 200", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`spine_api_requests_total{code="200",route="GET /v1/profiles/{id}"} 1`,
		`spine_api_requests_total{code="404",route="GET /v1/profiles/{id}"} 1`,
		`spine_api_requests_total{code="404",route="unmatched"} 1`,
		`spine_api_request_seconds_count{route="GET /v1/profiles/{id}"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "12345") {
		t.Errorf("an unmatched path leaked into a metric label")
	}

	s2, err := New(s.cfg, s.eng, fakeNorm{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	s2.Handler().ServeHTTP(w, request("GET", "/metrics", "", ""))
	if w.Code != 501 {
		t.Errorf("metrics without gatherer = %d, want 501", w.Code)
	}
}

func TestAuditLogHasNoPII(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, true, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	reqs := []*http.Request{
		request("GET", "/v1/profiles/p1/export", "", secretAdmin),
		request("PUT", "/v1/profiles/p1/consent", `{"sms": false}`, secretWriter),
		request("POST", "/v1/links", `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"device_id","value":"dev-42"}}`, secretAdmin),
		request("DELETE", "/v1/links", `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"email","value":"alice@shop.io"}}`, secretAdmin),
		request("DELETE", "/v1/quarantine?type=email&value=info@store.io", "", secretAdmin),
		request("POST", "/v1/profiles/p1/erase", "", secretAdmin),
		request("GET", "/v1/profiles?type=email&value=bob@shop.io", "", "nope-0123456789abcdef"),
		request("GET", "/v1/profiles?type=email&value=bob@shop.io", "", secretWriter),
	}
	for _, r := range reqs {
		s.do(r)
	}
	var actions []string
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["audit"] == true {
			actions = append(actions, rec["action"].(string)+":"+rec["token"].(string))
		}
	}
	want := "export:admin consent:writer link:admin unlink:admin release:admin erase:admin auth: auth:writer"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audit actions = %s, want %s", got, want)
	}
	for _, secret := range []string{"bob@shop.io", "alice@shop.io", "info@store.io", "dev-42", secretAdmin, secretWriter, "nope-0123456789abcdef"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"identifier_a":"email#`) {
		t.Errorf("link audit lacks the hashed identifier:\n%s", logs.String())
	}
}

func TestRequestTimeout(t *testing.T) {
	s := newTestServer(t, false, nil, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond })
	s.eng.block = make(chan struct{})
	w := s.do(request("GET", "/v1/profiles?type=email&value=bob@shop.io", "", secretReader))
	if w.Code != 503 {
		t.Errorf("blocked lookup = %d %s, want 503", w.Code, w.Body)
	}
}

// TestServeGracefulShutdown starts a real listener, cancels the context
// while a request is in flight, and checks that the request completes and
// Serve returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	s := newTestServer(t, false, nil, func(c *Config) { c.ShutdownTimeout = 5 * time.Second })
	s.eng.block = make(chan struct{})
	s.eng.entered = make(chan struct{}, 1)
	s.SetReady(func() bool { return true })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz = %d, want 200", resp.StatusCode)
	}

	type result struct {
		code int
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		r, _ := http.NewRequest("GET", base+"/v1/profiles?type=email&value=bob@shop.io", nil)
		r.Header.Set("Authorization", "Bearer "+secretReader)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inflight <- result{code: resp.StatusCode}
	}()
	// Wait until the request is inside the engine, then shut down, and
	// let the request finish only once the listener is closed.
	<-s.eng.entered
	cancel()
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if s.isReady() {
		t.Errorf("readyz is still ready while shutting down")
	}
	close(s.eng.block)
	if r := <-inflight; r.err != nil || r.code != 200 {
		t.Errorf("in-flight request = %d, %v; want 200", r.code, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunListenError(t *testing.T) {
	s := newTestServer(t, false, nil, func(c *Config) { c.Addr = "127.0.0.1:-1" })
	if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "httpapi: listen") {
		t.Errorf("Run on a bad address = %v, want a listen error", err)
	}
}

// TestEncodedProfileAnswers: an engine that answers lookups with stored
// JSON (RawProfiles) gives the same status, headers and body as one the
// server encodes for, found or not, and its errors map alike.
func TestEncodedProfileAnswers(t *testing.T) {
	typed, raw := newTestServer(t, false, nil, nil), newTestServer(t, true, nil, nil)
	for _, target := range []string{
		"/v1/profiles?type=email&value=Bob@Shop.IO", "/v1/profiles/p1", "/v1/profiles/p0",
		"/v1/profiles?type=email&value=nobody@shop.io", "/v1/profiles/nobody",
	} {
		a, b := typed.do(request("GET", target, "", secretReader)), raw.do(request("GET", target, "", secretReader))
		if a.Code != b.Code || a.Body.String() != b.Body.String() {
			t.Errorf("GET %s: encoded %d %s; stored %d %s", target, a.Code, a.Body, b.Code, b.Body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "X-Content-Type-Options"} {
			if a.Header().Get(h) != b.Header().Get(h) {
				t.Errorf("GET %s: %s encoded %q, stored %q", target, h, a.Header().Get(h), b.Header().Get(h))
			}
		}
	}
	raw.eng.fail = context.DeadlineExceeded
	if w := raw.do(request("GET", "/v1/profiles?type=email&value=bob@shop.io", "", secretReader)); w.Code != 503 {
		t.Errorf("stored lookup with a timed-out engine = %d %s, want 503", w.Code, w.Body)
	}
}
