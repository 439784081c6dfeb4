package clickhouse

import (
	"slices"
	"time"

	json "github.com/goccy/go-json"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
)

// The tables the sink writes, as the migrations name them.
const (
	tableEvents      = "events"
	tableProfiles    = "profiles"
	tableIdentityMap = "identity_map"
	tableMerges      = "merges"
	tableAccounts    = "accounts"
	// tableEventsDaily is filled by a materialized view on events; the
	// sink only deletes from it (erasure).
	tableEventsDaily = "events_daily"
	// tableRecountRequests holds the days an erasure's recount is owed
	// (rollup.go).
	tableRecountRequests = "recount_requests"
)

// row collects one row's column names next to its values, so the two can
// never drift apart; every row of a table yields the same names, and the
// first row's names become the INSERT's explicit column list (which 18.16
// requires for batch inserts).
type row struct {
	dialect schemas.Dialect
	names   []string
	vals    []any
}

// newRow returns an empty row with room for cols columns (a time may take
// two, see time), so that building a row allocates its two slices once
// instead of regrowing them column by column.
func newRow(d schemas.Dialect, cols int) *row {
	return &row{dialect: d, names: make([]string, 0, cols), vals: make([]any, 0, cols)}
}

// The columns of each kind of row in the dialect with more of them
// (TestRowColumns keeps them right).
const (
	eventCols   = 20
	profileCols = 27 // deletion rows too
	mappingCols = 8
	logCols     = 14
	accountCols = 10
)

func (r *row) add(col string, v any) {
	r.names = append(r.names, col)
	r.vals = append(r.vals, v)
}

// minTime and maxTime bound what both DateTime (UInt32 seconds since 1970)
// and DateTime64(3) hold; times outside, and zero times, are clamped.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

// clampTime bounds t to what DateTime and DateTime64(3) hold.
func clampTime(t time.Time) time.Time {
	t = t.UTC()
	if t.Before(minTime) {
		return minTime
	}
	if t.After(maxTime) {
		return maxTime
	}
	return t
}

// time adds a time as the dialect stores it: one DateTime64(3) column, or
// DateTime seconds plus a UInt16 of milliseconds (schemas.Dialect.TimeColumns).
func (r *row) time(col string, t time.Time) {
	t = clampTime(t)
	cols := r.dialect.TimeColumns(col)
	if len(cols) == 1 {
		r.add(cols[0], t.Truncate(time.Millisecond))
		return
	}
	r.add(cols[0], t.Truncate(time.Second))
	r.add(cols[1], uint16(t.Nanosecond()/int(time.Millisecond)))
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// jsonString renders v as JSON for a String column; empty maps become "".
// The values come from decoded JSON, so marshalling cannot fail in practice;
// if it does the column is left empty rather than failing the batch forever.
func jsonString[M ~map[K]V, K comparable, V any](v M) string {
	if len(v) == 0 {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func strOr(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func eventRow(d schemas.Dialect, c *canon.Change) *row {
	e := c.Event
	r := newRow(d, eventCols)
	r.add("channel", string(e.Channel))
	r.add("message_id", e.MessageID)
	r.add("profile_id", e.ProfileID)
	r.add("kind", string(e.Kind))
	r.add("name", e.Name)
	r.time("event_time", e.Time)
	// Only the types: values live in identity_map, where erasure finds them.
	types := make([]string, len(e.Identifiers))
	for i, o := range e.Identifiers {
		types[i] = string(o.Type)
	}
	r.add("id_types", types)
	at, ah := anchor(e.Identifiers)
	if e.Anchor.Type != "" {
		at, ah = e.Anchor.Type, valueHash(e.Anchor.Value)
	}
	if e.ProfileID == "" {
		// A parked event (only quarantined identifiers) is nobody's: no
		// anchor, so that queries resolving events through the identity
		// map (events_resolved) give it to no profile.
		at, ah = "", 0
	}
	r.add("anchor_type", string(at))
	r.add("anchor_hash", ah)
	var micros int64
	var currency string
	if e.Amount != nil {
		micros, currency = e.Amount.Micros, e.Amount.Currency
	}
	r.add("amount_micros", micros)
	r.add("currency", currency)
	r.add("csat", uint8(max(0, min(e.CSAT, 255))))
	r.add("group_id", e.GroupID)
	r.add("traits", jsonString(e.Traits))
	// The engine's own encoding, when the change carries it.
	props := string(c.RawProps)
	if c.RawProps == nil {
		props = jsonString(e.Props)
	}
	r.add("properties", props)
	r.add("consent", jsonString(e.Consent))
	r.add("seq", c.Seq)
	r.time("ingested_at", c.At)
	return r
}

func traitString(p *canon.Profile, key string) string {
	s, _ := p.Traits[key].(string)
	return s
}

func profileRow(d schemas.Dialect, c *canon.Change) (*row, error) {
	p := c.Profile
	doc := c.Raw // the engine's own encoding, when the change carries it
	if doc == nil {
		var err error
		if doc, err = json.Marshal(p); err != nil {
			return nil, err
		}
	}
	r := newRow(d, profileCols)
	r.add("profile_id", p.ID)
	r.add("version", p.Version)
	r.add("identity_level", string(p.Level))
	userID, _ := p.Identifier(canon.UserID)
	r.add("user_id", userID)
	email, ok := p.Identifier(canon.Email)
	if !ok {
		email = traitString(p, "email")
	}
	r.add("email", email)
	phone, ok := p.Identifier(canon.Phone)
	if !ok {
		phone = traitString(p, "phone")
	}
	r.add("phone", phone)
	r.add("first_name", traitString(p, "first_name"))
	r.add("last_name", traitString(p, "last_name"))
	r.time("first_seen", p.Computed.FirstSeen)
	r.time("last_seen", p.Computed.LastSeen)
	r.add("order_count", p.Computed.OrderCount)
	r.add("lifecycle_stage", p.Computed.LifecycleStage)
	stages, times := lifecycle(p.Computed.Lifecycle)
	r.add("lifecycle_stages", stages)
	r.add("lifecycle_times", times)
	purposes, granted := consent(p.Consent)
	r.add("consent_purposes", purposes)
	r.add("consent_granted", granted)
	r.add("last_channel", string(p.Computed.LastChannel))
	r.add("groups", strOr(p.Groups))
	r.add("deleted", uint8(0))
	r.add("delete_reason", "")
	r.add("merged_into", "")
	r.add("profile", string(doc))
	r.add("seq", c.Seq)
	r.time("updated_at", p.UpdatedAt)
	return r, nil
}

// deletionRow is a profiles row that marks the id gone. Its seq is above
// every earlier version's, so it replaces them under FINAL.
func deletionRow(d schemas.Dialect, c *canon.Change) *row {
	del := c.Delete
	r := newRow(d, profileCols)
	r.add("profile_id", del.ProfileID)
	r.add("version", uint64(0))
	r.add("identity_level", "")
	r.add("user_id", "")
	r.add("email", "")
	r.add("phone", "")
	r.add("first_name", "")
	r.add("last_name", "")
	r.time("first_seen", time.Time{})
	r.time("last_seen", time.Time{})
	r.add("order_count", int64(0))
	r.add("lifecycle_stage", "")
	r.add("lifecycle_stages", []string{})
	r.add("lifecycle_times", []time.Time{})
	r.add("consent_purposes", []string{})
	r.add("consent_granted", []uint8{})
	r.add("last_channel", "")
	r.add("groups", []string{})
	r.add("deleted", uint8(1))
	r.add("delete_reason", del.Reason)
	r.add("merged_into", del.Survivor)
	r.add("profile", "")
	r.add("seq", c.Seq)
	r.time("updated_at", c.At)
	return r
}

func mappingRow(d schemas.Dialect, c *canon.Change) *row {
	m := c.Mapping
	r := newRow(d, mappingCols)
	r.add("id_type", string(m.Identifier.Type))
	r.add("id_value", m.Identifier.Value)
	r.add("profile_id", m.ProfileID)
	r.add("version", m.Version)
	r.add("deleted", flag(m.ProfileID == ""))
	r.add("seq", c.Seq)
	r.time("updated_at", c.At)
	return r
}

func logRow(d schemas.Dialect, c *canon.Change) *row {
	l := c.Log
	r := newRow(d, logCols)
	r.add("seq", c.Seq)
	r.add("type", string(l.Type))
	r.add("profile_id", l.ProfileID)
	r.add("others", strOr(l.Others))
	var idType, idValue string
	if l.Identifier != nil {
		idType, idValue = string(l.Identifier.Type), l.Identifier.Value
	}
	if c.Restricted {
		idValue = "" // a person kept out of analytics: the type only
	}
	r.add("id_type", idType)
	r.add("id_value", idValue)
	r.add("reason", l.Reason)
	var ev canon.Evidence
	if l.Evidence != nil {
		ev = *l.Evidence
	}
	r.add("evidence_channel", string(ev.Channel))
	r.add("evidence_message_id", ev.MessageID)
	r.time("evidence_time", ev.Time)
	trust := ""
	if ev.Trust != 0 {
		trust = ev.Trust.String()
	}
	r.add("evidence_trust", trust)
	r.time("logged_at", c.At)
	return r
}

// anchor picks the identifier that decided the event's profile: the one of
// highest priority in canon.DefaultIDTypes. It returns its type and the
// cityHash64 of its value (what identity_map rows hash to in queries), or
// ("", 0) for an event without identifiers.
//
// The engine records the anchor exactly in canon.EventRecord.Anchor; this
// rule (DESIGN section 3 under the default order) serves change records
// written before it did.
func anchor(obs []canon.Observation) (canon.IDType, uint64) {
	best, rank := -1, len(canon.DefaultIDTypes)
	for i, o := range obs {
		for k, t := range canon.DefaultIDTypes {
			if o.Type == t && k < rank {
				best, rank = i, k
			}
		}
	}
	if best < 0 {
		return "", 0
	}
	return obs[best].Type, valueHash(obs[best].Value)
}

// lifecycle renders the stages a profile reached as parallel arrays, in
// funnel order (canon.Stages), then any stage this sink does not know, by
// name, so a newer engine's stages are kept rather than dropped.
func lifecycle(m map[string]time.Time) ([]string, []time.Time) {
	names := make([]string, 0, len(m))
	for _, s := range canon.Stages {
		if _, ok := m[s]; ok {
			names = append(names, s)
		}
	}
	var extra []string
	for s := range m {
		if !slices.Contains(canon.Stages, s) {
			extra = append(extra, s)
		}
	}
	slices.Sort(extra)
	names = append(names, extra...)
	times := make([]time.Time, len(names))
	for i, s := range names {
		times[i] = clampTime(m[s]).Truncate(time.Second)
	}
	return names, times
}

// consent renders the recorded consent choices as parallel arrays, sorted
// by purpose.
func consent(m map[string]canon.ConsentState) ([]string, []uint8) {
	purposes := make([]string, 0, len(m))
	for p := range m {
		purposes = append(purposes, p)
	}
	slices.Sort(purposes)
	granted := make([]uint8, len(purposes))
	for i, p := range purposes {
		granted[i] = flag(m[p].Value)
	}
	return purposes, granted
}

// account is a B2B account as the engine is to emit it. canon has no
// account change yet (the proposed canon.ChangeAccount carries this shape:
// see the package doc); Write gains one case when it does.
// account is the engine's account record.
type account = canon.Account

func accountRow(d schemas.Dialect, seq uint64, at time.Time, a *account) *row {
	r := newRow(d, accountCols)
	r.add("account_id", a.ID)
	name, _ := a.Traits["name"].(string)
	r.add("name", name)
	r.add("traits", jsonString(a.Traits))
	members := slices.Clone(strOr(a.Members))
	slices.Sort(members)
	r.add("members", members)
	r.add("member_count", uint32(len(members)))
	r.add("version", a.Version)
	r.add("deleted", flag(a.Deleted))
	r.add("seq", seq)
	r.time("updated_at", at)
	return r
}
