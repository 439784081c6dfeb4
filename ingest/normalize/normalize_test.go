package normalize

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/spinecdp/spine/schemas/canon"
)

func TestNormalize(t *testing.T) {
	n := Default()
	tests := []struct {
		name string
		typ  canon.IDType
		in   string
		want string // normalized value, when Rule is empty
		rule Rule
	}{
		{"email trimmed and lowered", canon.Email, "  Bob@Shop.IO ", "bob@shop.io", ""},
		{"email plus tag kept", canon.Email, "bob+news@shop.io", "bob+news@shop.io", ""},
		{"email no at", canon.Email, "bob.shop.io", "", RuleInvalid},
		{"email two ats", canon.Email, "bob@x@shop.io", "", RuleInvalid},
		{"email empty local", canon.Email, "@shop.io", "", RuleInvalid},
		{"email undotted domain", canon.Email, "bob@localhost", "", RuleInvalid},
		{"email trailing dot", canon.Email, "bob@shop.", "", RuleInvalid},
		{"email double dot", canon.Email, "bob@shop..io", "", RuleInvalid},
		{"email inner space", canon.Email, "bob smith@shop.io", "", RuleInvalid},
		{"email display name", canon.Email, "Bob <bob@shop.io>", "", RuleInvalid},
		{"email placeholder local", canon.Email, "test@test.com", "", RuleBlocked},
		{"email placeholder local upper", canon.Email, "NoReply@shop.io", "", RuleBlocked},
		{"email no-email", canon.Email, "no-email@shop.io", "", RuleBlocked},
		{"email example.com", canon.Email, "jane@Example.COM", "", RuleBlocked},
		{"email example.net", canon.Email, "jane@example.net", "", RuleBlocked},
		{"email .test", canon.Email, "jane@shop.test", "", RuleBlocked},
		{"email .invalid", canon.Email, "jane@x.y.invalid", "", RuleBlocked},
		{"email .localhost", canon.Email, "jane@my.localhost", "", RuleBlocked},
		{"email .example", canon.Email, "jane@corp.example", "", RuleBlocked},
		{"email sub of example.com is fine", canon.Email, "jane@mail.example.com.au", "jane@mail.example.com.au", ""},
		{"email null", canon.Email, "NULL", "", RuleBlocked},
		{"phone US national", canon.Phone, "(650) 253-0000", "+16502530000", ""},
		{"phone international", canon.Phone, "+44 20 7031 3000", "+442070313000", ""},
		{"phone E.164 kept", canon.Phone, "+16502530000", "+16502530000", ""},
		{"phone too short", canon.Phone, "12345", "", RuleInvalid},
		{"phone letters", canon.Phone, "call me", "", RuleInvalid},
		{"phone unassigned", canon.Phone, "+1 555 555 5555", "", RuleInvalid},
		{"phone zero", canon.Phone, "0", "", RuleBlocked},
		{"phone minus one", canon.Phone, "-1", "", RuleBlocked},
		{"user id trimmed", canon.UserID, "  u-123 ", "u-123", ""},
		{"user id case kept", canon.UserID, "U-ABC", "U-ABC", ""},
		{"user id null", canon.UserID, "Null", "", RuleBlocked},
		{"user id undefined", canon.UserID, "undefined", "", RuleBlocked},
		{"user id n/a", canon.UserID, "N/A", "", RuleBlocked},
		{"anonymous id anonymous", canon.AnonymousID, "Anonymous", "", RuleBlocked},
		{"anonymous id guest", canon.AnonymousID, "GUEST", "", RuleBlocked},
		{"crm id unknown", canon.CRMID, "unknown", "", RuleBlocked},
		{"crm id none", canon.CRMID, "none", "", RuleBlocked},
		{"crm id nil", canon.CRMID, "nil", "", RuleBlocked},
		{"device all zero", canon.DeviceID, "00000000-0000-0000-0000-000000000000", "", RuleBlocked},
		{"device dashes", canon.DeviceID, "---", "", RuleBlocked},
		{"device zeros", canon.DeviceID, "0000", "", RuleBlocked},
		{"device real", canon.DeviceID, "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6F9619FF-8B86-D011-B42D-00C04FC964FF", ""},
		{"loyalty with zeros ok", canon.LoyaltyID, "L-0007", "L-0007", ""},
		{"card fp", canon.CardFP, "fp_9a8b7c", "fp_9a8b7c", ""},
		{"empty", canon.UserID, "", "", RuleEmpty},
		{"blank", canon.Email, " \t\n", "", RuleEmpty},
		{"too long", canon.UserID, strings.Repeat("x", canon.MaxIDLen+1), "", RuleTooLong},
		{"max length ok", canon.UserID, strings.Repeat("x", canon.MaxIDLen), strings.Repeat("x", canon.MaxIDLen), ""},
		{"invalid utf8", canon.UserID, "u\xff1", "", RuleInvalid},
		{"unknown type", canon.IDType("ssn"), "123", "", RuleUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := n.Normalize(tt.typ, tt.in)
			// Asked again, the answer is the same (phones come from the
			// memo the second time).
			again, err2 := n.Normalize(tt.typ, tt.in)
			if again != got || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
				t.Fatalf("Normalize(%s) asked twice: %v, %v then %v, %v", tt.typ, got, err, again, err2)
			}
			if tt.rule != "" {
				var ne *Error
				if !errors.As(err, &ne) || ne.Rule != tt.rule || ne.Type != tt.typ {
					t.Fatalf("Normalize(%s) error = %v, want rule %s", tt.typ, err, tt.rule)
				}
				if tt.in != "" && strings.TrimSpace(tt.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) && len(tt.in) > 4 {
					t.Errorf("error %q contains the value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%s) error = %v, want %q", tt.typ, err, tt.want)
			}
			if got.Type != tt.typ || got.Value != tt.want {
				t.Errorf("Normalize(%s) = %v, want %q", tt.typ, got.Value, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	bad := Config{
		DefaultRegion:       "XX",
		Blocked:             []string{" "},
		BlockedPatterns:     []string{"("},
		BlockedEmailLocals:  []string{"a@b"},
		BlockedEmailDomains: []string{"*."},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want every problem")
	}
	for _, want := range []string{"DefaultRegion", "Blocked[0]", "BlockedPatterns[0]", "BlockedEmailLocals[0]", "BlockedEmailDomains[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, missing %s", err, want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New(Config{}) = nil error, want missing region")
	}
}

func TestCustomConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DefaultRegion = "GB"
	cfg.Blocked = append(cfg.Blocked, "info@shop.com")
	cfg.BlockedPatterns = append(cfg.BlockedPatterns, `^tmp-`)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n.Normalize(canon.Phone, "020 7031 3000"); err != nil || got.Value != "+442070313000" {
		t.Errorf("Normalize(phone) in GB = %v, %v", got.Value, err)
	}
	for typ, v := range map[canon.IDType]string{canon.Email: "INFO@shop.com", canon.DeviceID: "TMP-42"} {
		if _, err := n.Normalize(typ, v); err == nil {
			t.Errorf("Normalize(%s) accepted a blocked value", typ)
		}
	}
}

func TestConcurrent(t *testing.T) {
	n := Default()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := n.Normalize(canon.Phone, "+1 650 253 0000"); err != nil {
					t.Error(err)
					return
				}
				if _, err := n.Normalize(canon.Email, "test@shop.io"); err == nil {
					t.Error("placeholder email accepted")
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Bob@Shop.io", "+1 650 253 0000", "(650) 253-0000", "null", "00000000-0000-0000-0000-000000000000", "u-1", "", "İ@x.io"} {
		f.Add(s)
	}
	n := Default()
	f.Fuzz(func(t *testing.T, raw string) {
		for _, typ := range canon.DefaultIDTypes {
			id, err := n.Normalize(typ, raw)
			if err != nil {
				var ne *Error
				if !errors.As(err, &ne) {
					t.Fatalf("Normalize(%s) error %T, want *Error", typ, err)
				}
				continue
			}
			if id.Type != typ || id.Value == "" || len(id.Value) > canon.MaxIDLen {
				t.Fatalf("Normalize(%s) = %+v: bad identifier", typ, id)
			}
			again, err := n.Normalize(typ, id.Value)
			if err != nil || again != id {
				t.Fatalf("Normalize(%s) not idempotent: %v then %v, %v", typ, id.Value, again.Value, err)
			}
		}
	})
}
