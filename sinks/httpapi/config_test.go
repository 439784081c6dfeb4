package httpapi

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	got, err := ParseTokens("s3cret:read+write+admin, pers0:read,a:b:c:ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{
		{Name: "token1", Secret: "s3cret", Scopes: []Scope{ScopeRead, ScopeWrite, ScopeAdmin}},
		{Name: "token2", Secret: "pers0", Scopes: []Scope{ScopeRead}},
		{Name: "token3", Secret: "a:b:c", Scopes: []Scope{ScopeAdmin}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTokens = %#v, want %#v", got, want)
	}
	for _, bad := range []string{"", "hunter2", "hunter2:", ":read", "hunter2:read+root", "ok:read,,x:read"} {
		_, err := ParseTokens(bad)
		if err == nil {
			t.Errorf("ParseTokens(%q) = nil error, want one", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseTokens(%q) error %q contains the secret", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Tokens = testTokens
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(default + tokens) = %v", err)
	}
	bad := Config{
		Tokens: []Token{
			{Name: "a", Secret: "hunter2-secret", Scopes: []Scope{"root"}},
			{Name: "a", Secret: "hunter2-secret"},
			{Secret: "with space"},
		},
		RateLimit: RateLimit{PerSecond: 5},
		TLSCert:   "cert.pem",
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate(bad) = nil")
	}
	for _, want := range []string{
		"Addr is required",
		`Tokens[0]: unknown scope "root"`,
		"Tokens[1]: Name is also used by Tokens[0]",
		"Tokens[1]: Secret is also used by Tokens[0]",
		"Tokens[1]: at least one scope is required",
		"Tokens[2]: Name is required",
		"Tokens[2]: Secret must not contain white space",
		"MaxBodyBytes (0) must be > 0",
		"RateLimit.Burst (0) must be >= 1",
		"TLSCert and TLSKey must be set together",
		"ReadHeaderTimeout (0s) must be > 0",
		"ShutdownTimeout (0s) must be > 0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) = %v\nwant it to report %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate error contains a secret: %v", err)
	}
	if _, err := New(bad, newFakeEngine(), fakeNorm{}, nil, nil, nil); err == nil {
		t.Error("New(bad config) = nil error")
	}
	if _, err := New(good, nil, fakeNorm{}, nil, nil, nil); err == nil {
		t.Error("New(nil Profiles) = nil error")
	}
}

func TestTokenFormattingHidesSecret(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tokens = testTokens
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, cfg); strings.Contains(s, secretAll) {
			t.Errorf("Sprintf(%s, cfg) leaks a secret: %s", verb, s)
		}
	}
}
