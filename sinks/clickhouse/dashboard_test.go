package clickhouse_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// dashDoc mirrors the document sinks/httpapi/dashboard.go documents.
type dashDoc struct {
	GeneratedAt time.Time `json:"generated_at"`
	Source      string    `json:"source"`
	Totals      struct {
		Events, Profiles, Merges, Conflicts, Quarantined, DLQ int64
	} `json:"totals"`
	EventsPerChannel []struct {
		Bucket  string `json:"bucket"`
		Channel string `json:"channel"`
		Events  int64  `json:"events"`
	} `json:"events_per_channel"`
	IdentityLevels []struct {
		Level    string `json:"level"`
		Profiles int64  `json:"profiles"`
	} `json:"identity_levels"`
	LifecycleFunnel []struct {
		Stage             string  `json:"stage"`
		Profiles          int64   `json:"profiles"`
		MedianHoursToStep float64 `json:"median_hours_to_step"`
	} `json:"lifecycle_funnel"`
	RevenueByChannel []struct {
		Channel  string `json:"channel"`
		Currency string `json:"currency"`
		Amount   string `json:"amount"`
	} `json:"revenue_by_channel"`
	IdentityLog []struct {
		Type  string `json:"type"`
		Count int64  `json:"count"`
	} `json:"identity_log"`
	ConsentRates []struct {
		Purpose   string `json:"purpose"`
		Granted   int64  `json:"granted"`
		Withdrawn int64  `json:"withdrawn"`
	} `json:"consent_rates"`
	DLQ []json.RawMessage `json:"dlq"`
}

// dashboardHistory: two days of web and POS traffic with two orders and a
// refund, four live profiles at the four levels (one updated, so FINAL
// matters) plus one absorbed, and a merge and a conflict in the log.
func dashboardHistory() []canon.Change {
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	annOld := person("p-a", canon.Pseudonymous, canon.StageLead, map[string]time.Time{canon.StageVisitor: t0, canon.StageLead: h(2)}, nil)
	ann := person("p-a", canon.Registered, canon.StageCustomer, map[string]time.Time{
		canon.StageVisitor: t0, canon.StageLead: h(2), canon.StageRegistered: h(5), canon.StageCustomer: h(6),
	}, map[string]bool{"email_marketing": true, "analytics": true})
	ann.Profile.Version = 2
	return changes(1,
		sale(canon.Web, "m-1", "p-a", canon.KindPage, t0, "", 0),
		sale(canon.Web, "m-2", "p-b", canon.KindPage, t0, "", 0),
		sale(canon.POS, "t-1", "p-a", canon.KindOrder, h(1), "EUR", 10_500_000),
		sale(canon.Web, "m-3", "p-a", canon.KindPage, day2, "", 0),
		sale(canon.POS, "t-2", "p-d", canon.KindOrder, day2, "USD", 5_000_000),
		sale(canon.Web, "r-1", "p-a", canon.KindRefund, day2, "EUR", 2_000_000),
		annOld,
		ann,
		person("p-b", canon.Pseudonymous, canon.StageLead, map[string]time.Time{canon.StageVisitor: t0, canon.StageLead: h(4)},
			map[string]bool{"analytics": false}),
		person("p-c", canon.Anonymous, canon.StageVisitor, map[string]time.Time{canon.StageVisitor: t0}, nil),
		person("p-d", canon.VerifiedUser, canon.StageCustomer, map[string]time.Time{
			canon.StageVisitor: t0, canon.StageLead: h(1), canon.StageRegistered: h(3), canon.StageCustomer: h(12),
		}, map[string]bool{"email_marketing": false, "sms": true}),
		person("p-e", canon.Anonymous, canon.StageVisitor, map[string]time.Time{canon.StageVisitor: t0}, nil),
		logRec(canon.LogMerge, "p-a", []string{"p-e"}, nil),
		canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: "p-e", Reason: "absorbed", Survivor: "p-a"}},
		logRec(canon.LogConflict, "p-b", []string{"p-a"}, nil),
	)
}

func TestDashboard(t *testing.T) {
	s, _ := openSink(t)
	if err := s.Write(t.Context(), dashboardHistory()); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC()
	raw, err := s.Dashboard(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var d dashDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if d.Source != "clickhouse" {
		t.Errorf("source = %q", d.Source)
	}
	if d.GeneratedAt.Before(before.Add(-time.Second)) || d.GeneratedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("generated_at = %v", d.GeneratedAt)
	}
	check := func(name string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		var gv, wv any
		_ = json.Unmarshal(g, &gv)
		_ = json.Unmarshal(w, &wv)
		if !reflect.DeepEqual(gv, wv) {
			t.Errorf("%s =\n\t%s\nwant\n\t%s", name, g, w)
		}
	}
	type m = map[string]any
	check("totals", d.Totals, m{"Events": 6, "Profiles": 4, "Merges": 1, "Conflicts": 1, "Quarantined": 0, "DLQ": 0})
	check("events_per_channel", d.EventsPerChannel, []m{
		{"bucket": "2026-03-14T00:00:00Z", "channel": "pos", "events": 1},
		{"bucket": "2026-03-14T00:00:00Z", "channel": "web", "events": 2},
		{"bucket": "2026-03-15T00:00:00Z", "channel": "pos", "events": 1},
		{"bucket": "2026-03-15T00:00:00Z", "channel": "web", "events": 2},
	})
	check("identity_levels", d.IdentityLevels, []m{
		{"level": "anonymous", "profiles": 1}, {"level": "pseudonymous", "profiles": 1},
		{"level": "registered", "profiles": 1}, {"level": "verified", "profiles": 1},
	})
	// Step to step: lead after visitor 1, 2, 4 h; registered after lead 2,
	// 3 h; customer after registered 1, 9 h.
	check("lifecycle_funnel", d.LifecycleFunnel, []m{
		{"stage": "visitor", "profiles": 4, "median_hours_to_step": 0},
		{"stage": "lead", "profiles": 3, "median_hours_to_step": 2},
		{"stage": "registered", "profiles": 2, "median_hours_to_step": 2.5},
		{"stage": "customer", "profiles": 2, "median_hours_to_step": 5},
		{"stage": "loyal", "profiles": 0, "median_hours_to_step": 0},
	})
	// The refund is not order revenue, and web has nothing else.
	check("revenue_by_channel", d.RevenueByChannel, []m{
		{"channel": "pos", "currency": "EUR", "amount": "10.5"},
		{"channel": "pos", "currency": "USD", "amount": "5"},
	})
	check("identity_log", d.IdentityLog, []m{
		{"type": "merge", "count": 1}, {"type": "conflict", "count": 1}, {"type": "quarantine", "count": 0},
	})
	check("consent_rates", d.ConsentRates, []m{
		{"purpose": "email_marketing", "granted": 1, "withdrawn": 1},
		{"purpose": "sms", "granted": 1, "withdrawn": 0},
		{"purpose": "personalization", "granted": 0, "withdrawn": 0},
		{"purpose": "analytics", "granted": 1, "withdrawn": 1},
		{"purpose": "third_party_sharing", "granted": 0, "withdrawn": 0},
	})
	if d.DLQ == nil || len(d.DLQ) != 0 {
		t.Errorf("dlq = %v, want [] for the API to fill", d.DLQ)
	}

	// Within the TTL the cached document is served, new data or not.
	more := changes(100, sale(canon.POS, "t-9", "p-a", canon.KindOrder, day2, "EUR", 1_000_000))
	if err := s.Write(t.Context(), more); err != nil {
		t.Fatal(err)
	}
	again, err := s.Dashboard(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Errorf("second call within the TTL recomputed:\n%s\nwas\n%s", again, raw)
	}
}
