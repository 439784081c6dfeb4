package canon

import "time"

// Level is a profile's identity level.
type Level string

// Identity levels, weakest first.
const (
	Anonymous    Level = "anonymous"    // only anonymous_id / device_id
	Pseudonymous Level = "pseudonymous" // email, phone, loyalty, card or crm, no user_id
	Registered   Level = "registered"   // has a user_id
	VerifiedUser Level = "verified"     // registered, and the CIAM verified an email or phone
)

// Rank orders levels: higher is stronger.
func (l Level) Rank() int {
	switch l {
	case Pseudonymous:
		return 1
	case Registered:
		return 2
	case VerifiedUser:
		return 3
	}
	return 0
}

// Lifecycle stages, in order.
const (
	StageVisitor    = "visitor"
	StageLead       = "lead"
	StageRegistered = "registered"
	StageCustomer   = "customer"
	StageLoyal      = "loyal"
)

// Stages lists the lifecycle stages in order.
var Stages = []string{StageVisitor, StageLead, StageRegistered, StageCustomer, StageLoyal}

// Purposes lists the consent purposes.
var Purposes = []string{"email_marketing", "sms", "personalization", "analytics", "third_party_sharing"}

// Profile is the unified view of one person. It is what the API returns,
// what the profile stream carries and what ClickHouse stores as JSON.
type Profile struct {
	ID           string                  `json:"profile_id"`
	Level        Level                   `json:"identity_level"`
	Identifiers  []ProfileIdentifier     `json:"identifiers"`
	Traits       map[string]any          `json:"traits"`
	TraitSources map[string]TraitSource  `json:"trait_sources,omitempty"`
	Computed     Computed                `json:"computed"`
	Consent      map[string]ConsentState `json:"consent"`
	Groups       []string                `json:"groups,omitempty"`
	MergedFrom   []string                `json:"merged_from,omitempty"`
	Version      uint64                  `json:"version"`
	UpdatedAt    time.Time               `json:"updated_at"`
}

// ProfileIdentifier is one identifier held by a profile.
type ProfileIdentifier struct {
	Type      IDType    `json:"type"`
	Value     string    `json:"value"`
	Trust     Trust     `json:"trust"`
	FirstSeen time.Time `json:"first_seen"`
}

// Identifier returns the identifier without its profile metadata.
func (p ProfileIdentifier) Identifier() Identifier { return Identifier{Type: p.Type, Value: p.Value} }

// TraitSource records where a trait's surviving value came from, which is
// what survivorship compares.
type TraitSource struct {
	Time     time.Time `json:"time"`
	Channel  Channel   `json:"channel"`
	Verified bool      `json:"verified,omitempty"` // from a CIAM-verified source
}

// ConsentState is one purpose's consent.
type ConsentState struct {
	Value  bool      `json:"value"`
	Time   time.Time `json:"time"`
	Source string    `json:"source"` // channel, or "api"
}

// Computed holds the values derived from the person's events. Every field is
// exact and independent of the order the events arrived in.
type Computed struct {
	FirstSeen       time.Time            `json:"first_seen"`
	LastSeen        time.Time            `json:"last_seen"`
	Channels        []Channel            `json:"channels"`
	EventsByChannel map[Channel]int64    `json:"events_by_channel"`
	OrderCount      int64                `json:"order_count"`
	TotalSpend      Amounts              `json:"total_spend"`
	ReturnTotal     Amounts              `json:"return_total"`
	RefundCount     int64                `json:"refund_count"`
	RefundTotal     Amounts              `json:"refund_total"`
	TicketsOpened   int64                `json:"tickets_opened"`
	AvgCSAT         float64              `json:"avg_csat"`
	CSATSum         int64                `json:"csat_sum"`
	CSATCount       int64                `json:"csat_count"`
	Devices         int                  `json:"devices"`
	LastChannel     Channel              `json:"last_channel"`
	LifecycleStage  string               `json:"lifecycle_stage"`
	Lifecycle       map[string]time.Time `json:"lifecycle,omitempty"` // stage -> when reached
}

// Identifier returns the profile's first identifier of type t.
func (p *Profile) Identifier(t IDType) (string, bool) {
	for _, i := range p.Identifiers {
		if i.Type == t {
			return i.Value, true
		}
	}
	return "", false
}
