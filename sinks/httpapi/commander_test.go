package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spinecdp/spine/schemas/canon"
)

// readOnly answers the fixture's lookups and nothing else: no Do, as a
// read-only replica (sinks/replica).
type readOnly struct{ e *fakeEngine }

func (r readOnly) Lookup(ctx context.Context, id canon.Identifier) (canon.Profile, error) {
	return r.e.Lookup(ctx, id)
}

func (r readOnly) Profile(ctx context.Context, id string) (canon.Profile, error) {
	return r.e.Profile(ctx, id)
}

// readOnlyRaw also answers with stored JSON (RawProfiles), as the
// replica does.
type readOnlyRaw struct{ readOnly }

func (r readOnlyRaw) LookupJSON(ctx context.Context, id canon.Identifier) ([]byte, error) {
	return fullEngine{r.e}.LookupJSON(ctx, id)
}

func (r readOnlyRaw) ProfileJSON(ctx context.Context, id string) ([]byte, error) {
	return fullEngine{r.e}.ProfileJSON(ctx, id)
}

// TestCommandsWithoutCommander: over a Profiles that cannot carry out
// commands, every command endpoint answers 501 with a JSON error (to a
// caller allowed to send it; auth still comes first), and lookups answer
// as before.
func TestCommandsWithoutCommander(t *testing.T) {
	const link = `{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"device_id","value":"dev-42"}}`
	for name, wrap := range map[string]func(*fakeEngine) Profiles{
		"Profiles":             func(e *fakeEngine) Profiles { return readOnly{e} },
		"Profiles+RawProfiles": func(e *fakeEngine) Profiles { return readOnlyRaw{readOnly{e}} },
	} {
		t.Run(name, func(t *testing.T) {
			eng := newFakeEngine()
			p := wrap(eng)
			if _, ok := p.(Commander); ok {
				t.Fatal("fixture: the read-only Profiles is a Commander")
			}
			cfg := DefaultConfig()
			cfg.Tokens = testTokens
			cfg.RateLimit = RateLimit{}
			reg := prometheus.NewRegistry()
			srv, err := New(cfg, p, fakeNorm{}, nil, reg, reg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			s := &testServer{Server: srv, eng: eng, reg: reg}

			for _, c := range []struct {
				method, target, body, secret string
				want                         int
			}{
				{"POST", "/v1/profiles/p1/erase", "", secretAdmin, 501},
				{"PUT", "/v1/profiles/p1/consent", `{"sms": true}`, secretWriter, 501},
				{"POST", "/v1/links", link, secretAdmin, 501},
				{"DELETE", "/v1/links", link, secretAdmin, 501},
				{"DELETE", "/v1/quarantine?type=email&value=info@store.io", "", secretAdmin, 501},
				// The capability is checked before the request is read:
				// bodies and queries that would be refused are not looked at.
				{"PUT", "/v1/profiles/p1/consent", `{"sms": "maybe"}`, secretWriter, 501},
				{"POST", "/v1/links", `{"a":`, secretAdmin, 501},
				{"DELETE", "/v1/quarantine?type=bogus&value=x", "", secretAdmin, 501},
				{"POST", "/v1/profiles/p1/erase", "", "", 401},
				{"POST", "/v1/profiles/p1/erase", "", secretReader, 403},
			} {
				w := s.do(request(c.method, c.target, c.body, c.secret))
				if w.Code != c.want {
					t.Errorf("%s %s = %d %s, want %d", c.method, c.target, w.Code, w.Body, c.want)
				}
				checkErrorBody(t, w)
			}
			if len(eng.cmds) != 0 {
				t.Errorf("engine got commands %+v through a read-only Profiles", eng.cmds)
			}

			// Lookups answer, Bob's too after the refused erase.
			for _, c := range []struct {
				target string
				want   int
				body   string
			}{
				{"/v1/profiles?type=email&value=Bob@Shop.IO", 200, `"profile_id":"p1"`},
				{"/v1/profiles/p1", 200, `"profile_id":"p1"`},
				{"/v1/profiles/p0", 200, `"merged_from":["p0"]`}, // absorbed: the survivor
				{"/v1/profiles?type=email&value=carol@shop.io", 404, ""},
				{"/v1/profiles/nope", 404, ""},
			} {
				w := s.do(request("GET", c.target, "", secretReader))
				if w.Code != c.want || !strings.Contains(w.Body.String(), c.body) {
					t.Errorf("GET %s = %d %s, want %d with %s", c.target, w.Code, w.Body, c.want, c.body)
				}
			}
		})
	}
}

// unavailable answers every read with canon.ErrUnavailable, as a replica
// that no longer follows the profile stream does.
type unavailable struct{}

func (unavailable) Lookup(context.Context, canon.Identifier) (canon.Profile, error) {
	return canon.Profile{}, fmt.Errorf("replica: %w: not following", canon.ErrUnavailable)
}

func (unavailable) Profile(context.Context, string) (canon.Profile, error) {
	return canon.Profile{}, fmt.Errorf("replica: %w: not following", canon.ErrUnavailable)
}

// TestUnavailableIs503: a read the engine cannot answer now is a 503 with
// a JSON error, not a 500.
func TestUnavailableIs503(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tokens = testTokens
	cfg.RateLimit = RateLimit{}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, unavailable{}, fakeNorm{}, nil, reg, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s := &testServer{Server: srv, reg: reg}
	for _, target := range []string{"/v1/profiles?type=email&value=bob@shop.io", "/v1/profiles/p1"} {
		w := s.do(request("GET", target, "", secretReader))
		if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
			t.Errorf("GET %s = %d %s (Retry-After %q), want 503 with Retry-After 1", target, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
		checkErrorBody(t, w)
	}
}
