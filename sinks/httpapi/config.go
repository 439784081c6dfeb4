package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Scope is a permission a token carries.
type Scope string

// The scopes. They are independent: admin does not imply read.
const (
	ScopeRead  Scope = "read"  // lookups: profiles, graph, accounts
	ScopeWrite Scope = "write" // consent updates
	ScopeAdmin Scope = "admin" // export, erase, link, unlink, quarantine
)

// Valid reports whether s is one of the known scopes.
func (s Scope) Valid() bool {
	return s == ScopeRead || s == ScopeWrite || s == ScopeAdmin
}

// Token is one bearer token the API accepts.
type Token struct {
	// Name identifies the token in logs and metrics; it is never secret.
	Name string
	// Secret is what clients send after "Bearer ". It is never logged.
	Secret string
	// Scopes lists what the token may do.
	Scopes []Scope
}

// String describes the token without its secret, so that printing a Config
// with %v does not leak it.
func (t Token) String() string {
	s := make([]string, len(t.Scopes))
	for i, sc := range t.Scopes {
		s[i] = string(sc)
	}
	return t.Name + ":" + strings.Join(s, "+")
}

// GoString is String, for %#v.
func (t Token) GoString() string { return "httpapi.Token{" + t.String() + "}" }

// LogValue implements slog.LogValuer: the name only.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.Name) }

// RateLimit is a token bucket: PerSecond requests are added each second up
// to Burst. A PerSecond of zero disables the limit.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Config configures the API server. Start from DefaultConfig: New does not
// fill in zero values.
type Config struct {
	// Addr is the listen address of Run, host:port.
	Addr string
	// Tokens are the accepted bearer tokens; at least one is required.
	Tokens []Token
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes int64
	// RateLimit applies to each token separately.
	RateLimit RateLimit
	// TLSCert and TLSKey are PEM files; set both to serve HTTPS, or neither.
	TLSCert, TLSKey string
	// ReadHeaderTimeout bounds reading request headers (slowloris); required.
	ReadHeaderTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout are http.Server's; zero
	// means none.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RequestTimeout bounds each call into the engine, through the request's
	// context; zero means none.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Run once its context
	// ends; connections still open then are closed.
	ShutdownTimeout time.Duration
	// Ready reports whether the process is ready to serve (topics exist,
	// state open, consumer joined). /readyz answers 503 while it is nil or
	// false. Server.SetReady replaces it.
	Ready func() bool
}

// DefaultConfig returns the defaults: listen on 127.0.0.1:8080, 64 KiB
// bodies, 1000 requests/s (burst 2000) per token, and timeouts suited to a
// low-latency lookup service. Tokens must still be set.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		MaxBodyBytes:      64 << 10,
		RateLimit:         RateLimit{PerSecond: 1000, Burst: 2000},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		RequestTimeout:    10 * time.Second,
		ShutdownTimeout:   10 * time.Second,
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	if c.Addr == "" {
		add("Addr is required")
	}
	if len(c.Tokens) == 0 {
		add("at least one token is required")
	}
	names := make(map[string]int, len(c.Tokens))
	secrets := make(map[string]int, len(c.Tokens))
	for i, t := range c.Tokens {
		// Problems name the token by position: its name may be the problem,
		// and its secret must never appear in an error.
		switch {
		case t.Name == "":
			add("Tokens[%d]: Name is required", i)
		case names[t.Name] > 0:
			add("Tokens[%d]: Name is also used by Tokens[%d]", i, names[t.Name]-1)
		default:
			names[t.Name] = i + 1
		}
		switch {
		case t.Secret == "":
			add("Tokens[%d]: Secret is required", i)
		case strings.IndexFunc(t.Secret, unicode.IsSpace) >= 0:
			add("Tokens[%d]: Secret must not contain white space", i)
		case secrets[t.Secret] > 0:
			add("Tokens[%d]: Secret is also used by Tokens[%d]", i, secrets[t.Secret]-1)
		default:
			secrets[t.Secret] = i + 1
		}
		if len(t.Scopes) == 0 {
			add("Tokens[%d]: at least one scope is required", i)
		}
		for _, s := range t.Scopes {
			if !s.Valid() {
				add("Tokens[%d]: unknown scope %q (want read, write or admin)", i, s)
			}
		}
	}
	if c.MaxBodyBytes <= 0 {
		add("MaxBodyBytes (%d) must be > 0", c.MaxBodyBytes)
	}
	if c.RateLimit.PerSecond < 0 {
		add("RateLimit.PerSecond (%g) must be >= 0", c.RateLimit.PerSecond)
	}
	if c.RateLimit.PerSecond > 0 && c.RateLimit.Burst < 1 {
		add("RateLimit.Burst (%d) must be >= 1 when RateLimit.PerSecond is set", c.RateLimit.Burst)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("TLSCert and TLSKey must be set together")
	}
	if c.ReadHeaderTimeout <= 0 {
		add("ReadHeaderTimeout (%s) must be > 0", c.ReadHeaderTimeout)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout}, {"RequestTimeout", c.RequestTimeout}} {
		if d.v < 0 {
			add("%s (%s) must be >= 0", d.name, d.v)
		}
	}
	if c.ShutdownTimeout <= 0 {
		add("ShutdownTimeout (%s) must be > 0", c.ShutdownTimeout)
	}
	if len(probs) == 0 {
		return nil
	}
	return errors.New("httpapi: invalid config:\n  " + strings.Join(probs, "\n  "))
}

// ParseTokens parses the --tokens flag of DESIGN §9:
// "SECRET:SCOPE+SCOPE[,SECRET:SCOPE...]", for example
// "s3cret:read+write+admin,pers0:read". The flag carries no names, so tokens
// are named by position: token1, token2, ... Secrets may contain ':' (the
// scopes follow the last one) but not ',' or white space. Errors name the
// position, never the secret.
func ParseTokens(s string) ([]Token, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("httpapi: tokens: empty")
	}
	var (
		out  []Token
		errs []error
	)
	for i, part := range strings.Split(s, ",") {
		n := i + 1
		part = strings.TrimSpace(part)
		cut := strings.LastIndexByte(part, ':')
		if cut <= 0 || cut == len(part)-1 {
			errs = append(errs, fmt.Errorf("httpapi: tokens: entry %d: want SECRET:SCOPE[+SCOPE...]", n))
			continue
		}
		t := Token{Name: "token" + strconv.Itoa(n), Secret: part[:cut]}
		bad := false
		for _, sc := range strings.Split(part[cut+1:], "+") {
			sc := Scope(strings.ToLower(strings.TrimSpace(sc)))
			if !sc.Valid() {
				errs = append(errs, fmt.Errorf("httpapi: tokens: entry %d: unknown scope %q (want read, write or admin)", n, sc))
				bad = true
				continue
			}
			t.Scopes = append(t.Scopes, sc)
		}
		if !bad {
			out = append(out, t)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
