package canon

import "time"

// Dashboard is the KPI document the dashboard page shows (GET
// /v1/dashboard). ClickHouse computes it when configured (source
// "clickhouse"); otherwise the engine does from its own state (source
// "engine"), without the series over time and revenue by channel.
type Dashboard struct {
	GeneratedAt      time.Time        `json:"generated_at"`
	Source           string           `json:"source"`
	Totals           DashboardTotals  `json:"totals"`
	EventsPerChannel []ChannelBucket  `json:"events_per_channel"`
	IdentityLevels   []LevelCount     `json:"identity_levels"`
	LifecycleFunnel  []FunnelStep     `json:"lifecycle_funnel"`
	RevenueByChannel []ChannelRevenue `json:"revenue_by_channel"`
	IdentityLog      []LogCount       `json:"identity_log"`
	ConsentRates     []ConsentRate    `json:"consent_rates"`
	DLQ              []DLQCount       `json:"dlq"`
}

// DashboardTotals are headline counts.
type DashboardTotals struct {
	Events      int64 `json:"events"`
	Profiles    int64 `json:"profiles"`
	Merges      int64 `json:"merges"`
	Conflicts   int64 `json:"conflicts"`
	Quarantined int64 `json:"quarantined"`
	DLQ         int64 `json:"dlq"`
}

// ChannelBucket counts one channel's events in one time bucket.
type ChannelBucket struct {
	Bucket  time.Time `json:"bucket"`
	Channel Channel   `json:"channel"`
	Events  int64     `json:"events"`
}

// LevelCount counts profiles at one identity level.
type LevelCount struct {
	Level    Level `json:"level"`
	Profiles int64 `json:"profiles"`
}

// FunnelStep counts profiles that reached a lifecycle stage, with the
// median time from the previous stage.
type FunnelStep struct {
	Stage             string  `json:"stage"`
	Profiles          int64   `json:"profiles"`
	MedianHoursToStep float64 `json:"median_hours_to_step"`
}

// ChannelRevenue is revenue of one channel in one currency.
type ChannelRevenue struct {
	Channel  Channel `json:"channel"`
	Currency string  `json:"currency"`
	Amount   string  `json:"amount"`
}

// LogCount counts identity-log records of one type.
type LogCount struct {
	Type  LogType `json:"type"`
	Count int64   `json:"count"`
}

// ConsentRate counts grants and withdrawals of one purpose.
type ConsentRate struct {
	Purpose   string `json:"purpose"`
	Granted   int64  `json:"granted"`
	Withdrawn int64  `json:"withdrawn"`
}

// DLQCount counts rejected messages; the API fills it from its metrics.
type DLQCount struct {
	Channel Channel `json:"channel"`
	Reason  string  `json:"reason"`
	Count   int64   `json:"count"`
}
