package canon

import (
	"strings"
	"testing"
)

// Log tags never hold the value; once keyed they depend on the key, so
// hashing candidate phone numbers without it finds nothing.
func TestShortHashIsKeyed(t *testing.T) {
	t.Cleanup(func() { logKey.Store(nil) })
	phone := Identifier{Type: Phone, Value: "+14155550100"}
	unkeyed := phone.ShortHash()
	if unkeyed != phone.ShortHash() || len(unkeyed) != 8 {
		t.Fatalf("unkeyed tag %q is not a stable 4-byte hex tag", unkeyed)
	}
	SetLogKey([]byte("0123456789abcdef0123456789abcdef"))
	a := phone.ShortHash()
	SetLogKey([]byte("fedcba9876543210fedcba9876543210"))
	b := phone.ShortHash()
	if a == unkeyed || b == unkeyed || a == b || len(a) != 8 {
		t.Errorf("tags unkeyed %q, key A %q, key B %q: want three different 4-byte tags", unkeyed, a, b)
	}
	if b != phone.ShortHash() {
		t.Error("a keyed tag changed between calls")
	}
	if v := phone.LogValue().String(); strings.Contains(v, "4155550100") || v != "phone#"+b {
		t.Errorf("LogValue = %q", v)
	}
}
