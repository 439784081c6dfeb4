package normalize

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nyaruka/phonenumbers"

	"github.com/spinecdp/spine/schemas/canon"
)

// Rule names why a value was refused. The set is small and stable: it is a
// metric label and the key of canon.Event.Dropped.
type Rule string

// Rules.
const (
	RuleEmpty       Rule = "empty"        // nothing left after trimming
	RuleTooLong     Rule = "too_long"     // longer than canon.MaxIDLen bytes
	RuleBlocked     Rule = "blocked"      // a configured junk value
	RuleInvalid     Rule = "invalid"      // not a well-formed value of its type
	RuleUnknownType Rule = "unknown_type" // not a canonical identifier type
)

// Error says that a value of Type was refused and by which Rule. It never
// carries the value, so it is safe to log and to count.
type Error struct {
	Type canon.IDType
	Rule Rule
}

func (e *Error) Error() string {
	return fmt.Sprintf("normalize: %s: %s", e.Type, e.Rule)
}

// Normalizer normalizes identifier values under one Config. It is immutable
// after New and safe for concurrent use.
type Normalizer struct {
	region     string
	blocked    map[string]bool
	maxBlocked int                 // the length of blocked's longest key
	patterns   []func(string) bool // MatchString, or a plain equivalent
	locals     map[string]bool
	domains    map[string]bool // exact domains
	suffixes   []string        // ".test" for "*.test"
	// phones remembers recent phone results: libphonenumber's regular
	// expressions cost about 15 µs a number (60 % of decoding a message
	// that has one), and a customer's number comes back in every message
	// that carries it. The result depends only on the value and the fixed
	// region, so Normalize stays a pure function.
	phones *lru.Cache[string, phoneResult]
}

type phoneResult struct {
	e164 string
	rule Rule
}

// phoneMemo bounds the phone memo; an entry is about 150 bytes.
const phoneMemo = 16384

// New builds a Normalizer from cfg, which must pass Validate.
func New(cfg Config) (*Normalizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	phones, err := lru.New[string, phoneResult](phoneMemo)
	if err != nil {
		return nil, fmt.Errorf("normalize: phone memo: %w", err)
	}
	n := &Normalizer{
		phones:  phones,
		region:  cfg.DefaultRegion,
		blocked: lowerSet(cfg.Blocked),
		locals:  lowerSet(cfg.BlockedEmailLocals),
		domains: make(map[string]bool),
	}
	for v := range n.blocked {
		n.maxBlocked = max(n.maxBlocked, len(v))
	}
	for _, p := range cfg.BlockedPatterns {
		p = "(?i)" + p
		match, ok := classRun(p)
		if !ok {
			match = regexp.MustCompile(p).MatchString // compiled in Validate
		}
		n.patterns = append(n.patterns, match)
	}
	for _, d := range cfg.BlockedEmailDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if s, ok := strings.CutPrefix(d, "*."); ok {
			n.domains[s] = true
			n.suffixes = append(n.suffixes, "."+s)
			continue
		}
		n.domains[d] = true
	}
	return n, nil
}

// Default returns a Normalizer built from DefaultConfig.
func Default() *Normalizer {
	n, err := New(DefaultConfig())
	if err != nil {
		panic(err) // DefaultConfig is valid; a test holds it to that
	}
	return n
}

func lowerSet(vs []string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[strings.ToLower(strings.TrimSpace(v))] = true
	}
	return m
}

// Normalize returns raw in the canonical form of type t, or an *Error when
// the value must not be used as an identifier: empty after trimming, longer
// than canon.MaxIDLen, blocked, or not a valid value of its type.
func (n *Normalizer) Normalize(t canon.IDType, raw string) (canon.Identifier, error) {
	if !t.Valid() {
		return canon.Identifier{}, &Error{Type: t, Rule: RuleUnknownType}
	}
	v := strings.TrimSpace(raw)
	switch {
	case v == "":
		return canon.Identifier{}, &Error{Type: t, Rule: RuleEmpty}
	case len(v) > canon.MaxIDLen:
		return canon.Identifier{}, &Error{Type: t, Rule: RuleTooLong}
	case !utf8.ValidString(v):
		return canon.Identifier{}, &Error{Type: t, Rule: RuleInvalid}
	case n.isBlocked(v):
		return canon.Identifier{}, &Error{Type: t, Rule: RuleBlocked}
	}
	var rule Rule
	switch t {
	case canon.Email:
		v, rule = n.email(v)
	case canon.Phone:
		v, rule = n.phone(v)
	}
	if rule == "" && len(v) > canon.MaxIDLen { // lower-casing can grow a value
		rule = RuleTooLong
	}
	if rule != "" {
		return canon.Identifier{}, &Error{Type: t, Rule: rule}
	}
	return canon.Identifier{Type: t, Value: v}, nil
}

// isBlocked matches v against the exact values and the patterns.
func (n *Normalizer) isBlocked(v string) bool {
	// Lower-casing keeps the length of ASCII, so most ids are too long to
	// be a blocked value: skip ToLower's copy and the lookup for them.
	if (len(v) <= n.maxBlocked || !isASCII(v)) && n.blocked[strings.ToLower(v)] {
		return true
	}
	for _, match := range n.patterns {
		if match(v) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// email lower-cases v and checks it looks like an address: one @, a
// non-empty local part, a dotted domain, no spaces or mail-header syntax.
func (n *Normalizer) email(v string) (string, Rule) {
	v = strings.ToLower(v)
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || !validDomain(domain) ||
		strings.ContainsFunc(v, badEmailRune) {
		return "", RuleInvalid
	}
	if n.locals[local] || n.blockedDomain(domain) {
		return "", RuleBlocked
	}
	return v, ""
}

func validDomain(d string) bool {
	return strings.Contains(d, ".") && !strings.HasPrefix(d, ".") &&
		!strings.HasSuffix(d, ".") && !strings.Contains(d, "..")
}

// badEmailRune reports runes that never occur in a bare address: spaces,
// controls, and the punctuation of display names and lists ("Bob <b@x.io>").
func badEmailRune(r rune) bool {
	return r <= ' ' || r == 0x7f || strings.ContainsRune(`<>()[]\,;:"`, r) ||
		r == utf8.RuneError
}

func (n *Normalizer) blockedDomain(d string) bool {
	if n.domains[d] {
		return true
	}
	for _, s := range n.suffixes {
		if strings.HasSuffix(d, s) {
			return true
		}
	}
	return false
}

// phone parses v in the default region and formats it as E.164. Numbers
// that parse but are not valid numbers (wrong length, unassigned ranges)
// are refused, so that a cashier's 555-0000 never links two customers.
func (n *Normalizer) phone(v string) (string, Rule) {
	if r, ok := n.phones.Get(v); ok {
		return r.e164, r.rule
	}
	r := phoneResult{rule: RuleInvalid}
	if num, err := phonenumbers.Parse(v, n.region); err == nil && phonenumbers.IsValidNumber(num) {
		r = phoneResult{e164: phonenumbers.Format(num, phonenumbers.E164)}
	}
	n.phones.Add(v, r)
	return r.e164, r.rule
}
