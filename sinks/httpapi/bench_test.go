package httpapi

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkLookupHandler measures the handler on a lookup hit: auth, rate
// limit, normalization, the (in-memory) engine call, JSON encoding and
// metrics. The engine's own latency is not included.
func BenchmarkLookupHandler(b *testing.B) {
	s := newTestServer(b, false, nil, func(c *Config) {
		c.RateLimit = RateLimit{PerSecond: 1e12, Burst: 1 << 30}
	})
	h := s.Handler()
	r := request("GET", "/v1/profiles?type=email&value=Bob@Shop.IO", "", secretReader)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("lookup = %d %s", w.Code, w.Body)
		}
	}
}
