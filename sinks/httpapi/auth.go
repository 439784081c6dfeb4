package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// principal is a configured token as the server holds it: the digest of its
// secret (never the secret itself), its scopes and its rate-limit bucket.
type principal struct {
	name   string
	digest [sha256.Size]byte
	scopes map[Scope]bool
	bucket *bucket // nil when rate limiting is off
}

func newPrincipals(cfg Config, now time.Time) []*principal {
	out := make([]*principal, len(cfg.Tokens))
	for i, t := range cfg.Tokens {
		p := &principal{name: t.Name, digest: sha256.Sum256([]byte(t.Secret)), scopes: map[Scope]bool{}}
		for _, s := range t.Scopes {
			p.scopes[s] = true
		}
		if cfg.RateLimit.PerSecond > 0 {
			p.bucket = newBucket(cfg.RateLimit, now)
		}
		out[i] = p
	}
	return out
}

// authFailure says why a request was refused before reaching its handler.
type authFailure struct {
	status int
	reason string // for the audit log and the error body
	header string // WWW-Authenticate
}

// realm is the WWW-Authenticate challenge of the API (RFC 6750).
const realm = `Bearer realm="spine"`

var (
	errMissing = &authFailure{http.StatusUnauthorized, "missing bearer token", realm}
	errBadForm = &authFailure{http.StatusUnauthorized, "malformed Authorization header", realm + `, error="invalid_request"`}
	errUnknown = &authFailure{http.StatusUnauthorized, "invalid bearer token", realm + `, error="invalid_token"`}
)

func errScope(s Scope) *authFailure {
	return &authFailure{http.StatusForbidden, "token lacks the " + string(s) + " scope",
		realm + `, error="insufficient_scope", scope="` + string(s) + `"`}
}

// authenticate finds the token of the request's Authorization header.
//
// Timing: the presented secret is hashed first, so that comparisons run over
// fixed-length digests (subtle.ConstantTimeCompare returns early on a length
// mismatch, which would reveal a secret's length), and it is compared with
// every configured token without stopping at a match, so that the time taken
// reveals neither whether nor which token matched.
func authenticate(principals []*principal, h string) (*principal, *authFailure) {
	if h == "" {
		return nil, errMissing
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errBadForm
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, errBadForm
	}
	d := sha256.Sum256([]byte(secret))
	match := -1
	for i, p := range principals {
		eq := subtle.ConstantTimeCompare(d[:], p.digest[:])
		// Select i without branching on the comparison's result.
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return nil, errUnknown
	}
	return principals[match], nil
}

// bucket is one token's token bucket. Buckets are created at New, one per
// configured token, so their number is bounded by the configuration and no
// request can make the limiter grow.
type bucket struct {
	rate  float64 // tokens per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(l RateLimit, now time.Time) *bucket {
	return &bucket{rate: l.PerSecond, burst: float64(l.Burst), tokens: float64(l.Burst), last: now}
}

// take spends one request. When none is left it returns false and how long
// until one is, rounded up to whole seconds for Retry-After (at least 1).
func (b *bucket) take(now time.Time) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.burst, b.tokens+el*b.rate)
	}
	// A clock that went back only moves the reference: no refill for it.
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := math.Ceil((1 - b.tokens) / b.rate)
	return false, int(math.Max(1, math.Min(wait, 3600)))
}
