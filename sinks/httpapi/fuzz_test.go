package httpapi

import (
	"strings"
	"testing"
)

// fuzzBody sends body to method target and holds the server to its promise:
// no panic (a panic is recovered as a 500, so 5xx is the failure), and every
// error is a JSON {"error": ...} without identifier values.
func fuzzBody(f *testing.F, method, target, secret string, seeds []string) {
	s := newTestServer(f, true, nil, func(c *Config) { c.MaxBodyBytes = 4 << 10 })
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := s.do(request(method, target, body, secret))
		if w.Code < 200 || w.Code >= 500 {
			t.Fatalf("%s %s with %q = %d %s, want 2xx or 4xx", method, target, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			checkErrorBody(t, w)
		}
	})
}

func FuzzConsentBody(f *testing.F) {
	fuzzBody(f, "PUT", "/v1/profiles/p1/consent", secretWriter, []string{
		`{"email_marketing": false}`,
		`{"sms": true, "analytics": false, "personalization": true, "third_party_sharing": false}`,
		`{"sms": null}`, `{"sms": "true"}`, `{"sms": 1}`, `{}`, `[]`, `null`, `true`, ``,
		`{"sms": true, "sms": false}`, `{"sms": true}{"sms": false}`, `{"sms": tr`,
		`{"` + strings.Repeat("a", 5000) + `": true}`, "{\"sms\":\xff}",
	})
}

func FuzzLinkBody(f *testing.F) {
	seeds := []string{
		`{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"device_id","value":"dev-42"}}`,
		`{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"email","value":"alice@shop.io"}}`,
		`{"a":{"type":"email","value":"test@example.com"},"b":{"type":"phone","value":"+1 555 010 0000"}}`,
		`{"a":{"type":"email"},"b":null}`, `{"a":1,"b":2}`, `{"a":{"type":"fax","value":"x"},"b":{"type":"fax","value":"y"}}`,
		`{"a":{"type":"email","value":"bob@shop.io","x":1}}`, `{}`, `[]`, ``, `{"a":`,
		`{"a":{"type":"user_id","value":"` + strings.Repeat("u", 600) + `"},"b":{"type":"user_id","value":"v"}}`,
	}
	fuzzBody(f, "POST", "/v1/links", secretAdmin, seeds)
}

func FuzzUnlinkBody(f *testing.F) {
	fuzzBody(f, "DELETE", "/v1/links", secretAdmin, []string{
		`{"a":{"type":"email","value":"bob@shop.io"},"b":{"type":"device_id","value":"dev-42"}}`,
		`{"a":{"type":"phone","value":"(555) 010-0000"},"b":{"type":"device_id","value":"\u0000"}}`,
		`{"b":{"type":"email","value":"bob@shop.io"}}`, `"a"`,
	})
}
