package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Dashboard serves GET /v1/dashboard: the KPIs of the built-in dashboard
// (and of the Grafana one, which runs the same queries). Like the other
// capabilities it is discovered by type assertion on the Profiles value;
// the ClickHouse side answers with "source": "clickhouse", an engine that
// only knows its own state with "source": "engine" and whatever subset it
// can compute. The document's shape is DashboardDoc in
// schemas/openapi.yaml:
//
//	{"generated_at": RFC 3339, "source": "clickhouse"|"engine",
//	 "totals": {"events", "profiles", "merges", "conflicts", "quarantined", "dlq"},
//	 "events_per_channel": [{"bucket": RFC 3339, "channel", "events"}],
//	 "identity_levels":    [{"level", "profiles"}],
//	 "lifecycle_funnel":   [{"stage", "profiles", "median_hours_to_step"}],
//	 "revenue_by_channel": [{"channel", "currency", "amount": "123.45"}],
//	 "identity_log":       [{"type", "count"}],
//	 "consent_rates":      [{"purpose", "granted", "withdrawn"}],
//	 "dlq":                [{"channel", "reason", "count"}]}
//
// Dead letters never reach the engine or ClickHouse, so an implementation
// may leave "dlq" out: the server then fills it, and totals.dlq, from the
// spine_ingest_dlq_total counter of its Prometheus gatherer. The call runs
// every few seconds per open dashboard, so it should answer from
// pre-aggregated state rather than scan everything.
type Dashboard interface {
	Dashboard(ctx context.Context) (json.RawMessage, error)
}

// dlqMetric is the consumer's dead-letter counter (ingest/consumer).
const dlqMetric = "spine_ingest_dlq_total"

// dlqRow is one entry of the dashboard's "dlq" list.
type dlqRow struct {
	Channel string `json:"channel"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
}

// GET /v1/dashboard
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, _ *call) error {
	d, ok := s.profiles.(Dashboard)
	if !ok {
		return errNoCapability
	}
	doc, err := d.Dashboard(r.Context())
	if err != nil {
		return err
	}
	out, err := s.fillDLQ(doc)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

// fillDLQ adds the dead-letter counts to doc when the capability left them
// out. Other members pass through untouched, so a newer implementation can
// add panels without a change here.
func (s *Server) fillDLQ(doc json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return nil, errors.New("httpapi: dashboard: the document is not a JSON object")
	}
	if !emptyList(m["dlq"]) {
		return doc, nil
	}
	rows, total, err := s.dlqCounts()
	if err != nil {
		return nil, err
	}
	if m["dlq"], err = json.Marshal(rows); err != nil {
		return nil, fmt.Errorf("httpapi: dashboard: %w", err)
	}
	if s.gatherer != nil {
		// Only a real count replaces totals.dlq: without a gatherer the
		// server knows nothing, and an implementation's own figure stays.
		var totals map[string]json.RawMessage
		if raw := m["totals"]; !emptyValue(raw) {
			if err := json.Unmarshal(raw, &totals); err != nil {
				return nil, errors.New("httpapi: dashboard: totals is not a JSON object")
			}
		}
		if totals == nil {
			totals = map[string]json.RawMessage{}
		}
		totals["dlq"] = json.RawMessage(fmt.Sprint(total))
		if m["totals"], err = json.Marshal(totals); err != nil {
			return nil, fmt.Errorf("httpapi: dashboard: %w", err)
		}
	}
	return json.Marshal(m)
}

func emptyValue(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func emptyList(raw json.RawMessage) bool {
	if emptyValue(raw) {
		return true
	}
	var l []json.RawMessage
	return json.Unmarshal(raw, &l) == nil && len(l) == 0
}

// dlqCounts reads spine_ingest_dlq_total from the gatherer: one row per
// channel and reason with a non-zero count, largest first.
func (s *Server) dlqCounts() ([]dlqRow, int64, error) {
	rows := []dlqRow{}
	if s.gatherer == nil {
		return rows, 0, nil
	}
	mfs, err := s.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		// Gather returns what it could along with the error; only a total
		// failure leaves nothing to show.
		return nil, 0, fmt.Errorf("httpapi: dashboard: gather metrics: %w", err)
	}
	var total int64
	for _, mf := range mfs {
		if mf.GetName() != dlqMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			n := int64(m.GetCounter().GetValue())
			if n <= 0 {
				continue
			}
			rows = append(rows, dlqRow{Channel: label(m, "channel"), Reason: label(m, "reason"), Count: n})
			total += n
		}
	}
	slices.SortFunc(rows, func(a, b dlqRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Reason, b.Reason))
	})
	return rows, total, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// The dashboard page: static files compiled into the binary, so that it
// works offline and behind any proxy, with nothing to build. The page holds
// no data: it asks for a token and reads the /v1 API with it, so serving it
// without authentication reveals nothing but the code.
//
//go:embed ui
var uiFS embed.FS

// asset is one embedded file, read once at start-up.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

var uiAssets = loadAssets()

func loadAssets() map[string]asset {
	out := map[string]asset{}
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	err := fs.WalkDir(uiFS, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct, ok := types[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		out[path.Base(p)] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("httpapi: embedded ui: " + err.Error()) // a broken build, not a runtime condition
	}
	return out
}

// pageCSP lets the page load only its own files and call only its own
// origin: profile traits are customer-supplied text, and even if one ever
// slipped into markup, no injected script or exfiltrating request could
// run. Styles set through the DOM's style property are not affected by
// style-src, so the page needs no 'unsafe-inline'.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageRoutes registers the dashboard page and its assets. They are outside
// the routes table because "/" must match only itself: the mux pattern is
// "GET /{$}" while the spec (and s.scopes, which the OpenAPI test compares
// with it) calls the path "/".
func (s *Server) pageRoutes() {
	for _, rt := range []struct{ pattern, spec string }{
		{"GET /{$}", "GET /"},
		{"GET /ui/{file}", "GET /ui/{file}"},
	} {
		s.mux.Handle(rt.pattern, s.wrap(rt.spec, "", "", s.page))
		s.scopes[rt.spec] = ""
	}
}

// GET / and GET /ui/{file}
func (s *Server) page(w http.ResponseWriter, r *http.Request, _ *call) error {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	a, ok := uiAssets[name]
	if !ok {
		return errNotFound
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time (cheap, thanks to the ETag), so that an
	// upgraded binary's page is never mixed with a cached older script.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304 and handles HEAD.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	return nil
}
