package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spinecdp/spine/schemas/canon"
)

// Test tokens. Secrets are long enough not to trigger the short-secret warning.
const (
	secretAll    = "all-0123456789abcdef"    // read+write+admin
	secretReader = "reader-0123456789abcdef" // read
	secretWriter = "writer-0123456789abcdef" // write
	secretAdmin  = "admin-0123456789abcdef"  // admin only
)

var testTokens = []Token{
	{Name: "all", Secret: secretAll, Scopes: []Scope{ScopeRead, ScopeWrite, ScopeAdmin}},
	{Name: "reader", Secret: secretReader, Scopes: []Scope{ScopeRead}},
	{Name: "writer", Secret: secretWriter, Scopes: []Scope{ScopeWrite}},
	{Name: "admin", Secret: secretAdmin, Scopes: []Scope{ScopeAdmin}},
}

// Identifier values of the fixture. No response body or log line may
// contain them except where a profile is returned on purpose.
var (
	bobEmail   = canon.Identifier{Type: canon.Email, Value: "bob@shop.io"}
	bobDevice  = canon.Identifier{Type: canon.DeviceID, Value: "dev-42"}
	bobPhone   = canon.Identifier{Type: canon.Phone, Value: "+15550100000"}
	aliceEmail = canon.Identifier{Type: canon.Email, Value: "alice@shop.io"}
	junkEmail  = canon.Identifier{Type: canon.Email, Value: "info@store.io"}
)

// fakeNorm normalizes like ingest would, in miniature: emails trimmed and
// lower-cased with placeholder addresses blocked, phones reduced to digits
// and given a +, other ids trimmed.
type fakeNorm struct{}

func (fakeNorm) Normalize(t canon.IDType, raw string) (canon.Identifier, error) {
	v := strings.TrimSpace(raw)
	switch t {
	case canon.Email:
		v = strings.ToLower(v)
		local, domain, ok := strings.Cut(v, "@")
		if !ok || local == "" || domain == "" || local == "test" || domain == "example.com" {
			return canon.Identifier{}, errors.New("normalize: email: blocked or invalid")
		}
	case canon.Phone:
		var b strings.Builder
		for _, r := range v {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		if b.Len() < 10 || b.Len() > 15 {
			return canon.Identifier{}, errors.New("normalize: phone: invalid")
		}
		v = "+" + b.String()
	}
	if v == "" || v == "null" {
		return canon.Identifier{}, errors.New("normalize: blocked")
	}
	return canon.Identifier{Type: t, Value: v}, nil
}

// fakeEngine is an in-memory Profiles: p1 is Bob (email, device, phone),
// which absorbed p0; p2 is Alice; info@store.io is quarantined.
type fakeEngine struct {
	mu          sync.Mutex
	profiles    map[string]*canon.Profile
	index       map[canon.Identifier]string
	absorbed    map[string]string
	quarantined map[canon.Identifier]bool
	cmds        []canon.Command
	fail        error         // when set, every call returns it
	block       chan struct{} // when set, Lookup waits for it or ctx
	entered     chan struct{} // when set, Lookup sends to it before waiting
}

func newFakeEngine() *fakeEngine {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	bob := &canon.Profile{
		ID: "p1", Level: canon.Registered,
		Identifiers: []canon.ProfileIdentifier{
			{Type: bobEmail.Type, Value: bobEmail.Value, Trust: canon.Verified, FirstSeen: t0},
			{Type: bobDevice.Type, Value: bobDevice.Value, Trust: canon.Observed, FirstSeen: t0},
			{Type: bobPhone.Type, Value: bobPhone.Value, Trust: canon.Asserted, FirstSeen: t0},
		},
		Traits: map[string]any{"first_name": "Bob"},
		Computed: canon.Computed{
			FirstSeen: t0, LastSeen: t0, Channels: []canon.Channel{canon.Web, canon.POS},
			EventsByChannel: map[canon.Channel]int64{canon.Web: 3, canon.POS: 1},
			OrderCount:      1, TotalSpend: canon.Amounts{"EUR": 12_500_000},
			LifecycleStage: canon.StageCustomer,
		},
		Consent:    map[string]canon.ConsentState{"analytics": {Value: true, Time: t0, Source: "web"}},
		MergedFrom: []string{"p0"},
		Version:    7, UpdatedAt: t0,
	}
	alice := &canon.Profile{
		ID: "p2", Level: canon.Pseudonymous,
		Identifiers: []canon.ProfileIdentifier{{Type: aliceEmail.Type, Value: aliceEmail.Value, Trust: canon.Asserted, FirstSeen: t0}},
		Version:     1, UpdatedAt: t0,
	}
	return &fakeEngine{
		profiles:    map[string]*canon.Profile{"p1": bob, "p2": alice},
		index:       map[canon.Identifier]string{bobEmail: "p1", bobDevice: "p1", bobPhone: "p1", aliceEmail: "p2"},
		absorbed:    map[string]string{"p0": "p1"},
		quarantined: map[canon.Identifier]bool{junkEmail: true},
	}
}

func (e *fakeEngine) Lookup(ctx context.Context, id canon.Identifier) (canon.Profile, error) {
	if e.entered != nil {
		e.entered <- struct{}{}
	}
	if e.block != nil {
		select {
		case <-e.block:
		case <-ctx.Done():
			return canon.Profile{}, fmt.Errorf("fake: lookup: %w", ctx.Err())
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return canon.Profile{}, e.fail
	}
	pid, ok := e.index[id]
	if !ok {
		return canon.Profile{}, fmt.Errorf("fake: lookup %s: %w", id.Type, canon.ErrNotFound)
	}
	return *e.profiles[pid], nil
}

func (e *fakeEngine) Profile(_ context.Context, id string) (canon.Profile, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return canon.Profile{}, e.fail
	}
	if s, ok := e.absorbed[id]; ok {
		id = s
	}
	p, ok := e.profiles[id]
	if !ok {
		return canon.Profile{}, canon.ErrNotFound
	}
	return *p, nil
}

func (e *fakeEngine) Do(_ context.Context, c canon.Command) (canon.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return canon.Result{}, e.fail
	}
	e.cmds = append(e.cmds, c)
	switch c.Kind {
	case canon.CmdErase:
		p, ok := e.profiles[c.ProfileID]
		if !ok {
			return canon.Result{}, canon.ErrNotFound
		}
		delete(e.profiles, c.ProfileID)
		for _, i := range p.Identifiers {
			delete(e.index, canon.Identifier{Type: i.Type, Value: i.Value})
		}
		return canon.Result{Receipt: &canon.Receipt{
			ProfileIDs: append([]string{p.ID}, p.MergedFrom...), Identifiers: len(p.Identifiers),
			Sinks: []string{"clickhouse", "kafka"}, At: c.Time,
		}}, nil
	case canon.CmdConsent:
		p, ok := e.profiles[c.ProfileID]
		if !ok {
			return canon.Result{}, canon.ErrNotFound
		}
		if p.Consent == nil {
			p.Consent = map[string]canon.ConsentState{}
		}
		for k, v := range c.Consent {
			p.Consent[k] = canon.ConsentState{Value: v, Time: c.Time, Source: "api"}
		}
		p.Version++
		cp := *p
		return canon.Result{Profile: &cp}, nil
	case canon.CmdLink, canon.CmdUnlink:
		pa, oka := e.index[c.Pair.A]
		pb, okb := e.index[c.Pair.B]
		if !oka || !okb {
			return canon.Result{}, canon.ErrNotFound
		}
		if pa != pb {
			// The fake refuses merges, as a full type limit would.
			return canon.Result{}, fmt.Errorf("fake: link: %w", canon.ErrConflict)
		}
		cp := *e.profiles[pa]
		return canon.Result{Profile: &cp}, nil
	case canon.CmdRelease:
		if !e.quarantined[*c.Identifier] {
			return canon.Result{}, canon.ErrNotFound
		}
		delete(e.quarantined, *c.Identifier)
		return canon.Result{}, nil
	}
	return canon.Result{}, fmt.Errorf("fake: command %q: %w", c.Kind, canon.ErrInvalid)
}

// fullEngine adds every optional capability to fakeEngine.
type fullEngine struct{ *fakeEngine }

// LookupJSON and ProfileJSON answer with the JSON of what Lookup and
// Profile return, as the engine answers from the bytes it stored.
func (e fullEngine) LookupJSON(ctx context.Context, id canon.Identifier) ([]byte, error) {
	p, err := e.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(p)
}

func (e fullEngine) ProfileJSON(ctx context.Context, id string) ([]byte, error) {
	p, err := e.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(p)
}

func (e fullEngine) Graph(ctx context.Context, id string) (json.RawMessage, error) {
	p, err := e.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"profile_id": p.ID, "identifiers": p.Identifiers, "links": []any{}})
}

func (e fullEngine) Export(ctx context.Context, id string) (json.RawMessage, error) {
	p, err := e.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"profile": p})
}

func (e fullEngine) Quarantined(_ context.Context, limit int) ([]canon.LogRecord, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return nil, e.fail
	}
	var out []canon.LogRecord
	for id := range e.quarantined {
		if len(out) == limit {
			break
		}
		out = append(out, canon.LogRecord{Type: canon.LogQuarantine, Identifier: &id, Reason: "conflicts"})
	}
	return out, nil
}

func (e fullEngine) Account(_ context.Context, id string) (json.RawMessage, error) {
	if e.fail != nil {
		return nil, e.fail
	}
	if id != "acme" {
		return nil, canon.ErrNotFound
	}
	return json.RawMessage(`{"account_id":"acme","members":["p1"]}`), nil
}

type testServer struct {
	*Server
	eng *fakeEngine
	reg *prometheus.Registry
}

// newTestServer returns a server over a fresh fixture: with every
// capability when full, with only Profiles otherwise. mod may change the
// config first.
func newTestServer(t testing.TB, full bool, log *slog.Logger, mod func(*Config)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Tokens = testTokens
	cfg.RateLimit = RateLimit{} // off; the rate-limit test turns it on
	if mod != nil {
		mod(&cfg)
	}
	eng := newFakeEngine()
	var p Profiles = eng
	if full {
		p = fullEngine{eng}
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, p, fakeNorm{}, log, reg, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testServer{Server: s, eng: eng, reg: reg}
}

// request builds a request with the given bearer secret ("" for none).
func request(method, target, body, secret string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		r.Header.Set("Authorization", "Bearer "+secret)
	}
	return r
}

func (s *testServer) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}
