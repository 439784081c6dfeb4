package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
)

// The dashboard (GET /v1/dashboard, the httpapi.Dashboard capability) from
// ClickHouse: the documented queries of schemas/queries/dashboard_*.sql over
// the roll-ups of migration 0009, plus a few totals. The document's shape is
// the one sinks/httpapi/dashboard.go documents (DashboardDoc in
// schemas/openapi.yaml); the types below mirror engine/dashboard.go, whose
// "source": "engine" document is the fallback.

// dashboardTTL is how long a computed document is served again. The page
// polls every few seconds per open tab; the cache makes that at most one
// round of queries per TTL per process, whatever the number of tabs.
const dashboardTTL = 5 * time.Second

// dashboardDays bounds events_per_channel to the most recent days of the
// roll-up, so the document stays small however long the history is.
const dashboardDays = 90

// The document's types are the contract's (canon.Dashboard).
type (
	dashboardDoc    = canon.Dashboard
	dashboardTotals = canon.DashboardTotals
	channelBucket   = canon.ChannelBucket
	levelCount      = canon.LevelCount
	funnelStep      = canon.FunnelStep
	channelRevenue  = canon.ChannelRevenue
	logCount        = canon.LogCount
	consentRate     = canon.ConsentRate
	dlqCount        = canon.DLQCount
)

// dashCache is one sink's cached document. The mutex is held while a
// document is computed, so concurrent callers wait for that one round of
// queries instead of starting their own.
type dashCache struct {
	mu   sync.Mutex
	at   time.Time
	data json.RawMessage
}

// Dashboard implements the API's dashboard capability (httpapi.Dashboard)
// from ClickHouse, "source": "clickhouse". It is safe to call from any
// goroutine while the sink writes: it uses only the connection pool.
// Results are cached for dashboardTTL; errors are not.
func (s *Sink) Dashboard(ctx context.Context) (json.RawMessage, error) {
	c := &s.dash
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data != nil && time.Since(c.at) < dashboardTTL {
		return c.data, nil
	}
	d, err := s.dashboard(ctx)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: dashboard: %w", err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: dashboard: %w", err)
	}
	c.at, c.data = time.Now(), b
	return b, nil
}

func (s *Sink) dashboard(ctx context.Context) (*dashboardDoc, error) {
	q, err := dashboardQueries()
	if err != nil {
		return nil, err
	}
	d := &dashboardDoc{
		GeneratedAt: time.Now().UTC(), Source: "clickhouse",
		EventsPerChannel: []channelBucket{}, IdentityLevels: []levelCount{}, LifecycleFunnel: []funnelStep{},
		RevenueByChannel: []channelRevenue{}, IdentityLog: []logCount{}, ConsentRates: []consentRate{}, DLQ: []dlqCount{},
	}
	for _, step := range []func(context.Context, *dashboardDoc, map[string]string) error{
		s.dashChannels, s.dashRevenue, s.dashIdentity, s.dashFunnel, s.dashConsent, s.dashLog,
	} {
		if err := step(ctx, d, q); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// dashboardQueries returns the documented dashboard queries by name.
func dashboardQueries() (map[string]string, error) {
	qs, err := schemas.Queries()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, q := range qs {
		if strings.HasPrefix(q.Name, "dashboard_") {
			out[q.Name] = q.SQL
		}
	}
	for _, n := range []string{"dashboard_channels", "dashboard_revenue", "dashboard_identity", "dashboard_funnel", "dashboard_consent"} {
		if out[n] == "" {
			return nil, fmt.Errorf("query %s is missing from schemas/queries", n)
		}
	}
	return out, nil
}

// dashChannels: events per day and channel (dashboard_channels, the last
// dashboardDays days of the roll-up) and totals.events (all days).
func (s *Sink) dashChannels(ctx context.Context, d *dashboardDoc, q map[string]string) error {
	sql := "SELECT day, channel, events FROM (" + q["dashboard_channels"] + ")\n" +
		"WHERE day > (SELECT max(day) FROM rollup_channel_daily) - " + strconv.Itoa(dashboardDays)
	err := s.each(ctx, "dashboard_channels", sql, func(r record) {
		d.EventsPerChannel = append(d.EventsPerChannel, channelBucket{
			Bucket: dayOf(r.time("day")), Channel: canon.Channel(r.str("channel")), Events: r.int("events"),
		})
	})
	if err != nil {
		return err
	}
	return s.each(ctx, "total events", "SELECT sum(events) AS events FROM rollup_channel_daily FINAL", func(r record) {
		d.Totals.Events = r.int("events")
	})
}

// dashRevenue: order revenue per channel and currency over all days.
// dashboard_revenue sums over channels, so this is the same read of the
// roll-up's currency arrays grouped by channel instead of by day (aliases
// differ from the columns for the reason dashboard_revenue gives).
// Refunds are not order revenue; a channel with refunds only has no row.
func (s *Sink) dashRevenue(ctx context.Context, d *dashboardDoc, _ map[string]string) error {
	const sql = `SELECT toString(channel) AS ch, currency, sum(rev) AS revenue
FROM rollup_channel_daily FINAL
ARRAY JOIN currencies AS currency, revenue_micros AS rev
GROUP BY ch, currency
HAVING revenue != 0
ORDER BY ch, currency`
	return s.each(ctx, "revenue by channel", sql, func(r record) {
		d.RevenueByChannel = append(d.RevenueByChannel, channelRevenue{
			Channel: canon.Channel(r.str("ch")), Currency: r.str("currency"), Amount: canon.FormatMicros(r.int("revenue")),
		})
	})
}

// dashIdentity: profiles per identity level from the newest day of
// dashboard_identity (a snapshot, which may lag Config.SnapshotInterval
// behind totals.profiles: that one is counted live in dashFunnel).
func (s *Sink) dashIdentity(ctx context.Context, d *dashboardDoc, q map[string]string) error {
	levels := map[canon.Level]int64{}
	err := s.each(ctx, "dashboard_identity", q["dashboard_identity"], func(r record) {
		// Rows are ordered by day: the last one wins.
		levels = map[canon.Level]int64{
			canon.Anonymous: r.int("anonymous"), canon.Pseudonymous: r.int("pseudonymous"),
			canon.Registered: r.int("registered"), canon.VerifiedUser: r.int("verified"),
		}
	})
	if err != nil {
		return err
	}
	for _, l := range []canon.Level{canon.Anonymous, canon.Pseudonymous, canon.Registered, canon.VerifiedUser} {
		d.IdentityLevels = append(d.IdentityLevels, levelCount{Level: l, Profiles: levels[l]})
	}
	return nil
}

// dashFunnel: profiles that ever reached each stage from the newest day of
// dashboard_funnel. The roll-up's times run from first seen, while the
// document wants the median from the previous stage, so those come from
// the lifecycle arrays of live profiles (stepSQL), which also give
// totals.profiles in the same scan.
func (s *Sink) dashFunnel(ctx context.Context, d *dashboardDoc, q map[string]string) error {
	reached := map[string]int64{}
	var last time.Time
	err := s.each(ctx, "dashboard_funnel", q["dashboard_funnel"], func(r record) {
		if day := r.time("day"); !day.Equal(last) {
			last, reached = day, map[string]int64{}
		}
		reached[r.str("stage")] = r.int("reached")
	})
	if err != nil {
		return err
	}
	medians := make([]float64, len(canon.Stages))
	err = s.each(ctx, "lifecycle steps", stepSQL(), func(r record) {
		d.Totals.Profiles = r.int("profiles")
		for i := 1; i < len(canon.Stages); i++ {
			medians[i] = r.float("m" + strconv.Itoa(i))
		}
	})
	if err != nil {
		return err
	}
	for i, st := range canon.Stages {
		d.LifecycleFunnel = append(d.LifecycleFunnel, funnelStep{Stage: st, Profiles: reached[st], MedianHoursToStep: medians[i]})
	}
	return nil
}

// stepSQL counts live profiles and, for each stage after the first, the
// median hours from the stage before to it over the profiles that reached
// both: the mean of the two middle values for an even count, as the engine
// computes it. Column profiles, then m1 .. m4.
func stepSQL() string {
	var inner, outer []string
	at := func(stage string) string {
		return "toInt64(toUnixTimestamp(lifecycle_times[indexOf(lifecycle_stages, " + quote(stage) + ")]))"
	}
	for i := 1; i < len(canon.Stages); i++ {
		prev, cur, n := canon.Stages[i-1], canon.Stages[i], strconv.Itoa(i)
		inner = append(inner, "arraySort(groupArrayIf("+at(cur)+" - "+at(prev)+
			", has(lifecycle_stages, "+quote(cur)+") AND has(lifecycle_stages, "+quote(prev)+"))) AS s"+n)
		l := "length(s" + n + ")"
		mid := "s" + n + "[intDiv(" + l + ", 2) + 1]"
		below := "s" + n + "[intDiv(" + l + ", 2)]"
		outer = append(outer, "if("+l+" = 0, toFloat64(0), if("+l+" % 2 = 1, toFloat64("+mid+"), (toFloat64("+below+") + toFloat64("+mid+")) / 2)) / 3600 AS m"+n)
	}
	return "SELECT profiles, " + strings.Join(outer, ", ") + "\nFROM\n(\n    SELECT count() AS profiles, " + strings.Join(inner, ", ") +
		"\n    FROM (SELECT lifecycle_stages, lifecycle_times FROM profiles FINAL WHERE deleted = 0)\n)"
}

// dashConsent: per purpose, live profiles whose latest choice grants or
// withdraws it, from the newest day of dashboard_consent.
func (s *Sink) dashConsent(ctx context.Context, d *dashboardDoc, q map[string]string) error {
	rates := map[string]consentRate{}
	var last time.Time
	err := s.each(ctx, "dashboard_consent", q["dashboard_consent"], func(r record) {
		if day := r.time("day"); !day.Equal(last) {
			last, rates = day, map[string]consentRate{}
		}
		p, granted := r.str("purpose"), r.int("granted")
		rates[p] = consentRate{Purpose: p, Granted: granted, Withdrawn: r.int("decided") - granted}
	})
	if err != nil {
		return err
	}
	for _, p := range canon.Purposes {
		c := rates[p]
		c.Purpose = p
		d.ConsentRates = append(d.ConsentRates, c)
		delete(rates, p)
	}
	for _, p := range slices.Sorted(maps.Keys(rates)) { // purposes newer than this binary
		d.ConsentRates = append(d.ConsentRates, rates[p])
	}
	return nil
}

// logTypes orders identity_log; merge, conflict and quarantine are always
// listed, like the engine's document does.
var logTypes = []canon.LogType{canon.LogMerge, canon.LogSplit, canon.LogConflict, canon.LogQuarantine, canon.LogRelease,
	canon.LogCandidate, canon.LogLink, canon.LogUnlink, canon.LogErase}

// dashLog: identity-log records by type, and the merge, conflict and
// quarantine totals. Quarantined counts values still quarantined: each
// release record lifts one quarantine.
func (s *Sink) dashLog(ctx context.Context, d *dashboardDoc, _ map[string]string) error {
	const sql = "SELECT toString(type) AS log_type, count() AS n FROM merges FINAL GROUP BY log_type"
	counts := map[string]int64{}
	err := s.each(ctx, "identity log", sql, func(r record) { counts[r.str("log_type")] = r.int("n") })
	if err != nil {
		return err
	}
	for _, t := range logTypes {
		n, ok := counts[string(t)]
		if ok || t == canon.LogMerge || t == canon.LogConflict || t == canon.LogQuarantine {
			d.IdentityLog = append(d.IdentityLog, logCount{Type: t, Count: n})
		}
		delete(counts, string(t))
	}
	for _, t := range slices.Sorted(maps.Keys(counts)) {
		d.IdentityLog = append(d.IdentityLog, logCount{Type: canon.LogType(t), Count: counts[t]})
	}
	byType := func(t canon.LogType) int64 {
		i := slices.IndexFunc(d.IdentityLog, func(l logCount) bool { return l.Type == t })
		if i < 0 {
			return 0
		}
		return d.IdentityLog[i].Count
	}
	d.Totals.Merges, d.Totals.Conflicts = byType(canon.LogMerge), byType(canon.LogConflict)
	d.Totals.Quarantined = max(byType(canon.LogQuarantine)-byType(canon.LogRelease), 0)
	return nil
}

// record is one result row by column name, with lenient conversions: the
// dialects return different integer widths and wrappers for the same
// column.
type record map[string]any

func (r record) str(col string) string { return fmt.Sprint(r[col]) }

func (r record) int(col string) int64 {
	v := reflect.ValueOf(r[col])
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(v.Uint())
	case reflect.Float32, reflect.Float64:
		return int64(v.Float())
	}
	return 0
}

func (r record) float(col string) float64 {
	v := reflect.ValueOf(r[col])
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return float64(r.int(col))
}

func (r record) time(col string) time.Time {
	t, _ := r[col].(time.Time)
	return t
}

// each runs sql and calls fn with every row.
func (s *Sink) each(ctx context.Context, what, sql string, fn func(record)) error {
	rows, err := s.conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("%s: %w", what, classify(err))
	}
	defer rows.Close()
	cts := rows.ColumnTypes()
	for rows.Next() {
		dest := make([]any, len(cts))
		for i, ct := range cts {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		r := make(record, len(cts))
		for i, ct := range cts {
			r[ct.Name()] = deref(reflect.ValueOf(dest[i]).Elem())
		}
		fn(r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, classify(err))
	}
	return nil
}

// deref unwraps the pointers of Nullable columns; NULL becomes nil.
func deref(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	return v.Interface()
}
