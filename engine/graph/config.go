package graph

import (
	"fmt"
	"strings"

	"github.com/spinecdp/spine/schemas/canon"
)

// Policy says what an identifier of a type may do to profiles.
type Policy string

// Policies.
const (
	Link      Policy = "link"      // may merge profiles
	Candidate Policy = "candidate" // proposes a merge that waits for confirmation
	Attach    Policy = "attach"    // may pick the event's profile, never merges two
)

// TypeConfig configures one identifier type.
type TypeConfig struct {
	Type   canon.IDType `yaml:"type"`
	Limit  int          `yaml:"limit"`  // max distinct values of the type in one profile
	Policy Policy       `yaml:"policy"` // default policy
	// ByTrust overrides the policy for links of a given trust.
	ByTrust map[canon.Trust]Policy `yaml:"by_trust,omitempty"`
}

// Config is the resolution rule's configuration. Types are listed highest
// priority first.
type Config struct {
	Types []TypeConfig `yaml:"types"`
	// QuarantineAfter quarantines a value whose links were refused for
	// conflicts in this many different profiles. A refused merge counts
	// against both values of the refused link, the event's anchor and the
	// one that could not join, except a value of a type whose limit
	// overflowed; a new value refused by a full profile counts against none.
	QuarantineAfter int `yaml:"quarantine_after"`
	// QuarantineNames quarantines an email or phone seen with more than
	// this many distinct first names.
	QuarantineNames int `yaml:"quarantine_names"`
}

// DefaultConfig returns the defaults of DESIGN section 2.
func DefaultConfig() Config {
	limits := map[canon.IDType]int{
		canon.UserID: 1, canon.CRMID: 1, canon.Email: 5, canon.Phone: 5,
		canon.LoyaltyID: 3, canon.CardFP: 10, canon.DeviceID: 50, canon.AnonymousID: 1000,
	}
	c := Config{QuarantineAfter: 3, QuarantineNames: 10}
	for _, t := range canon.DefaultIDTypes {
		c.Types = append(c.Types, TypeConfig{Type: t, Limit: limits[t], Policy: Link})
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var b strings.Builder
	seen := map[canon.IDType]bool{}
	for _, t := range c.Types {
		if !t.Type.Valid() {
			fmt.Fprintf(&b, "graph: unknown identifier type %q\n", t.Type)
		}
		if seen[t.Type] {
			fmt.Fprintf(&b, "graph: type %q listed twice\n", t.Type)
		}
		seen[t.Type] = true
		if t.Limit < 1 {
			fmt.Fprintf(&b, "graph: type %q: limit must be at least 1\n", t.Type)
		}
		for _, p := range append([]Policy{t.Policy}, mapValues(t.ByTrust)...) {
			if p != Link && p != Candidate && p != Attach {
				fmt.Fprintf(&b, "graph: type %q: unknown policy %q\n", t.Type, p)
			}
		}
	}
	if c.QuarantineAfter < 2 {
		fmt.Fprintf(&b, "graph: quarantine_after must be at least 2\n")
	}
	if c.QuarantineNames < 2 {
		fmt.Fprintf(&b, "graph: quarantine_names must be at least 2\n")
	}
	for _, t := range canon.DefaultIDTypes {
		if !seen[t] {
			fmt.Fprintf(&b, "graph: type %q is not configured\n", t)
		}
	}
	if b.Len() > 0 {
		return fmt.Errorf("%s", strings.TrimSpace(b.String()))
	}
	return nil
}

func mapValues(m map[canon.Trust]Policy) []Policy {
	var out []Policy
	for _, p := range m {
		out = append(out, p)
	}
	return out
}
