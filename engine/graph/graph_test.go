package graph_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/schemas/canon"
)

// The rule itself is tested through the engine (engine/graph_test.go and
// the property test in engine/property_test.go); these are the graph's
// pure parts.

func newGraph(t *testing.T, c graph.Config) *graph.Graph {
	t.Helper()
	g, err := graph.New(c, []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func o(t canon.IDType, v string, tr canon.Trust) canon.Observation {
	return canon.Observation{Identifier: canon.Identifier{Type: t, Value: v}, Trust: tr}
}

func TestSortByPriorityKeepsMostTrusted(t *testing.T) {
	g := newGraph(t, graph.DefaultConfig())
	in := []canon.Observation{
		o(canon.AnonymousID, "a", canon.Observed),
		o(canon.Email, "z@x.io", canon.Asserted),
		o(canon.Email, "b@x.io", canon.Asserted),
		o(canon.UserID, "u", canon.Verified),
		o(canon.Email, "z@x.io", canon.Verified),
		o(canon.DeviceID, "d", canon.Observed),
	}
	orig := slices.Clone(in)
	want := []canon.Observation{
		o(canon.UserID, "u", canon.Verified),
		o(canon.Email, "b@x.io", canon.Asserted),
		o(canon.Email, "z@x.io", canon.Verified),
		o(canon.DeviceID, "d", canon.Observed),
		o(canon.AnonymousID, "a", canon.Observed),
	}
	if got := g.Sort(in); !slices.Equal(got, want) {
		t.Errorf("Sort = %v\nwant %v", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Error("Sort changed its input")
	}
}

func TestConfiguredPriorityAndLimits(t *testing.T) {
	c := graph.DefaultConfig()
	// Put email first: it then outranks user_id.
	slices.SortStableFunc(c.Types, func(a, b graph.TypeConfig) int {
		if a.Type == canon.Email {
			return -1
		}
		if b.Type == canon.Email {
			return 1
		}
		return 0
	})
	g := newGraph(t, c)
	if g.Priority(canon.Email) >= g.Priority(canon.UserID) || g.Limit(canon.UserID) != 1 || g.Limit(canon.AnonymousID) != 1000 {
		t.Errorf("priority email %d, user_id %d; limits user_id %d, anonymous_id %d",
			g.Priority(canon.Email), g.Priority(canon.UserID), g.Limit(canon.UserID), g.Limit(canon.AnonymousID))
	}
}

func TestConfigValidate(t *testing.T) {
	if err := graph.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := graph.DefaultConfig()
	c.Types[0].Limit = 0
	c.Types[1].Policy = "merge"
	c.Types[2].ByTrust = map[canon.Trust]graph.Policy{canon.Asserted: "maybe"}
	c.Types = append(c.Types[:7], graph.TypeConfig{Type: "ssn", Limit: 1, Policy: graph.Link}) // drops anonymous_id
	c.QuarantineAfter, c.QuarantineNames = 1, 0
	err := c.Validate()
	if err == nil {
		t.Fatal("a bad configuration passed")
	}
	for _, want := range []string{
		`"user_id": limit must be at least 1`, `"crm_id": unknown policy "merge"`, `"email": unknown policy "maybe"`,
		`unknown identifier type "ssn"`, `"anonymous_id" is not configured`, "quarantine_after", "quarantine_names",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v\nmissing %q", err, want)
		}
	}
	if _, err := graph.New(graph.DefaultConfig(), []byte("short")); err == nil {
		t.Error("a short erasure secret was accepted")
	}
}

func TestHashIsKeyed(t *testing.T) {
	id := canon.Identifier{Type: canon.Email, Value: "p@x.io"}
	a := newGraph(t, graph.DefaultConfig())
	b, err := graph.New(graph.DefaultConfig(), []byte("another-secret-of-16"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash(id) != a.Hash(id) || a.Hash(id) == b.Hash(id) || strings.Contains(a.Hash(id), id.Value) {
		t.Error("the erasure hash is not a stable keyed hash")
	}
	if a.Hash(id) == a.Hash(canon.Identifier{Type: canon.Phone, Value: id.Value}) {
		t.Error("the erasure hash ignores the type")
	}
	// Stores keep these hashes: the definition is HMAC-SHA256 of the
	// identifier's key, in hex, and must not change.
	m := hmac.New(sha256.New, []byte("another-secret-of-16"))
	m.Write([]byte(id.Key()))
	if want := hex.EncodeToString(m.Sum(nil)); b.Hash(id) != want {
		t.Errorf("Hash = %s, want HMAC-SHA256 of the key %s", b.Hash(id), want)
	}
}
