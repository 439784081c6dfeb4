package normalize

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Config says how identifiers are normalized and which values are blocked.
// The zero value blocks nothing and has no default region, which Validate
// refuses; start from DefaultConfig.
type Config struct {
	// DefaultRegion is the ISO 3166-1 alpha-2 region (for example "US", "GB")
	// in which phone numbers without a leading + and country code are read.
	DefaultRegion string
	// Blocked lists exact values that never link anything, for every
	// identifier type. They are compared with the trimmed value,
	// case-insensitively.
	Blocked []string
	// BlockedPatterns lists regular expressions (RE2 syntax) for blocked
	// values of every type. They are matched against the trimmed value,
	// case-insensitively; anchor them (^...$) to match the whole value.
	BlockedPatterns []string
	// BlockedEmailLocals lists email local parts (before the @) that are
	// placeholders, compared case-insensitively: test@anything is blocked.
	BlockedEmailLocals []string
	// BlockedEmailDomains lists email domains that never belong to a
	// person. "example.com" blocks that domain exactly; "*.test" blocks the
	// domain "test" and every domain ending in ".test".
	BlockedEmailDomains []string
}

// DefaultConfig returns the defaults of DESIGN section 2: region US, the
// usual placeholder values, values made only of 0 and - (such as the
// all-zero device id 00000000-0000-0000-0000-000000000000), placeholder email
// local parts and the domains reserved for examples by RFC 2606 and 6761.
func DefaultConfig() Config {
	return Config{
		DefaultRegion: "US",
		Blocked: []string{
			"null", "undefined", "none", "nil", "n/a", "0", "-1",
			"unknown", "anonymous", "guest",
		},
		BlockedPatterns: []string{`^[0-]+$`},
		BlockedEmailLocals: []string{
			"test", "none", "noemail", "no-email", "noreply", "no-reply",
			"null", "na", "unknown", "asdf",
		},
		BlockedEmailDomains: []string{
			"example.com", "example.org", "example.net",
			"*.example", "*.invalid", "*.test", "*.localhost",
		},
	}
}

// Validate reports every problem with c at once, one per line.
func (c Config) Validate() error {
	var buf strings.Builder
	if c.DefaultRegion == "" {
		buf.WriteString("DefaultRegion is required (for example \"US\")\n")
	} else if !phonenumbers.GetSupportedRegions()[c.DefaultRegion] {
		fmt.Fprintf(&buf, "DefaultRegion (%q) is not a supported region code\n", c.DefaultRegion)
	}
	for i, v := range c.Blocked {
		if strings.TrimSpace(v) == "" {
			fmt.Fprintf(&buf, "Blocked[%d] is empty\n", i)
		}
	}
	for i, p := range c.BlockedPatterns {
		if _, err := regexp.Compile(p); err != nil {
			fmt.Fprintf(&buf, "BlockedPatterns[%d] does not compile: %v\n", i, err)
		}
	}
	for i, v := range c.BlockedEmailLocals {
		if strings.TrimSpace(v) == "" || strings.Contains(v, "@") {
			fmt.Fprintf(&buf, "BlockedEmailLocals[%d] (%q) must be a non-empty local part without @\n", i, v)
		}
	}
	for i, v := range c.BlockedEmailDomains {
		d := strings.TrimPrefix(v, "*.")
		if strings.TrimSpace(d) == "" || strings.ContainsAny(d, "@* ") {
			fmt.Fprintf(&buf, "BlockedEmailDomains[%d] (%q) must be a domain or *.suffix\n", i, v)
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	return errors.New("normalize: invalid config:\n" + buf.String())
}
