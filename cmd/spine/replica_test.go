package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/spinecdp/spine/ingest/kafkatest"
	"github.com/spinecdp/spine/schemas/canon"
)

// replicaToken may read, and erase, to see that the replica refuses to.
const replicaToken = "replica-0123456789abcdef"

// TestReplicaAnswersAsTheEngine: the engine merges two identities and
// publishes the profile stream; a replica (spine replica, as its flags
// build it) started afterwards answers lookups of both identifiers with
// the engine's own answer, refuses commands with 501, and once the engine
// erases the person, answers 404 for both.
func TestReplicaAnswersAsTheEngine(t *testing.T) {
	addr, _ := kafkatest.Cluster(t) // no topics: the engine creates them
	s := startE2ESpine(t, addr, t.TempDir())

	// A web visitor, then the same person registering in the CIAM, then
	// the identify that joins the two.
	anon := e2eID(canon.AnonymousID, "a-rep-0001")
	mail := e2eID(canon.Email, "rita.replica@shop.io")
	user := e2eID(canon.UserID, "u-rep-0001")
	msgs := []e2eMsg{
		{ch: canon.Web, value: []byte(`{"type":"page","messageId":"rep-web-1","timestamp":"2026-11-02T08:30:00Z","anonymousId":"a-rep-0001","name":"Home","properties":{"path":"/"}}`)},
		{ch: canon.CIAM, value: []byte(`{"event_id":"rep-ciam-1","timestamp":"2026-11-02T08:31:00Z","event":"registered","user_id":"u-rep-0001","email":"Rita.Replica@shop.io","email_verified":false}`)},
	}
	e2eProduce(t, addr, msgs)
	s.waitApplied(addr)
	if a, b := s.mustLookup("before the identify", anon), s.mustLookup("before the identify", mail); a.ID == b.ID {
		t.Fatalf("fixture: the visitor and the registration share profile %s before the identify", a.ID)
	}
	e2eProduce(t, addr, []e2eMsg{{ch: canon.Web, value: []byte(`{"type":"identify","messageId":"rep-web-2","timestamp":"2026-11-02T08:32:00Z","anonymousId":"a-rep-0001","userId":"u-rep-0001","traits":{"email":"rita.replica@shop.io"}}`)}})
	s.waitApplied(addr)
	merged := s.mustLookup("after the identify", anon)
	if p := s.mustLookup("after the identify", mail); p.ID != merged.ID || len(merged.MergedFrom) == 0 {
		t.Fatalf("fixture: after the identify the visitor is %s (merged from %v), the email %s; want one merged profile", merged.ID, merged.MergedFrom, p.ID)
	}
	s.waitSinks() // the profile stream has it all

	rep := startE2EReplica(t, addr)
	for _, id := range []canon.Identifier{anon, mail, user} {
		q := "/v1/profiles?" + url.Values{"type": {string(id.Type)}, "value": {id.Value}}.Encode()
		wantCode, want := e2eGetRaw(t, s.base, e2eToken, q)
		code, got := e2eGetRaw(t, rep, replicaToken, q)
		if wantCode != http.StatusOK || code != wantCode || !bytes.Equal(got, want) {
			t.Errorf("GET %s: replica %d %s; engine %d %s", q, code, got, wantCode, want)
		}
	}
	// The absorbed profile id answers with the survivor, as on the engine.
	absorbedPath := "/v1/profiles/" + merged.MergedFrom[0]
	wantCode, want := e2eGetRaw(t, s.base, e2eToken, absorbedPath)
	if code, got := e2eGetRaw(t, rep, replicaToken, absorbedPath); wantCode != http.StatusOK || code != wantCode || !bytes.Equal(got, want) {
		t.Errorf("GET %s: replica %d %s; engine %d %s", absorbedPath, code, got, wantCode, want)
	}
	// Commands stay with the engine.
	const noCommands = 501 // what a server without the Commander capability answers
	if code := e2ePostCode(t, rep, replicaToken, "/v1/profiles/"+merged.ID+"/erase"); code != noCommands {
		t.Errorf("POST erase on the replica = %d, want %d", code, noCommands)
	}

	if code := s.post("/v1/profiles/"+merged.ID+"/erase", nil); code != http.StatusOK {
		t.Fatalf("POST erase on the engine = %d, want 200", code)
	}
	s.waitSinks()
	e2eWaitFor(t, "the erasure on the replica", func() bool {
		for _, id := range []canon.Identifier{anon, mail, user} {
			q := "/v1/profiles?" + url.Values{"type": {string(id.Type)}, "value": {id.Value}}.Encode()
			if code, _ := e2eGetRaw(t, rep, replicaToken, q); code != http.StatusNotFound {
				return false
			}
		}
		return true
	})
	for _, pid := range append([]string{merged.ID}, merged.MergedFrom...) {
		if code, body := e2eGetRaw(t, rep, replicaToken, "/v1/profiles/"+pid); code != http.StatusNotFound {
			t.Errorf("GET /v1/profiles/%s on the replica after the erasure = %d %s, want 404", pid, code, body)
		}
	}
}

// startE2EReplica starts `spine replica --brokers addr` (startReplica, as
// cmdReplica wires it) on a free port, waits until /readyz answers 200
// and returns its base URL. It is stopped when the test ends.
func startE2EReplica(t *testing.T, addr string) string {
	t.Helper()
	host := e2eFreeAddr(t)
	fs, o := replicaFlags()
	if err := fs.parse([]string{"--brokers", addr, "--http", host, "--tokens", replicaToken + ":read+admin"}, func(string) string { return "" }); err != nil {
		t.Fatalf("replica flags: %v", err)
	}
	r, srv, err := startReplica(o, e2eLogger(t))
	if err != nil {
		t.Fatalf("startReplica: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = r.Run(ctx) })
	wg.Go(func() { errs[1] = srv.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		r.Close()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("replica: %v", err)
		}
	})
	base := "http://" + host
	e2eWaitFor(t, "replica /readyz = 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// e2eGetRaw GETs base+path with a bearer token and returns the status and
// body.
func e2eGetRaw(t *testing.T, base, token, path string) (int, []byte) {
	t.Helper()
	return e2eDo(t, http.MethodGet, base, token, path)
}

func e2ePostCode(t *testing.T, base, token, path string) int {
	t.Helper()
	code, _ := e2eDo(t, http.MethodPost, base, token, path)
	return code
}

func e2eDo(t *testing.T, method, base, token, path string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, body
}

// TestReplicaGC: the replica's collector target and memory limit, unless
// GOGC or GOMEMLIMIT say otherwise.
func TestReplicaGC(t *testing.T) {
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	defer func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(limit) }()
	for _, tc := range []struct {
		env       map[string]string
		wantGC    int
		wantLimit int64
	}{
		{nil, replicaGCPercent, 3 * 512 << 20},
		{map[string]string{"GOGC": "150"}, 100, 3 * 512 << 20},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, replicaGCPercent, math.MaxInt64},
	} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		replicaGC(512, func(k string) string { return tc.env[k] })
		if got := debug.SetGCPercent(100); got != tc.wantGC {
			t.Errorf("env %v: GC percent %d, want %d", tc.env, got, tc.wantGC)
		}
		if got := debug.SetMemoryLimit(math.MaxInt64); got != tc.wantLimit {
			t.Errorf("env %v: memory limit %d, want %d", tc.env, got, tc.wantLimit)
		}
	}
}
