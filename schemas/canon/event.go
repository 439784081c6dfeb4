package canon

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Channel is the source a message came from; one Kafka topic per channel.
type Channel string

// The channels.
const (
	Web     Channel = "web"
	Mobile  Channel = "mobile"
	IoT     Channel = "iot"
	POS     Channel = "pos"
	Support Channel = "support"
	CIAM    Channel = "ciam"
)

// Channels lists every channel.
var Channels = []Channel{Web, Mobile, IoT, POS, Support, CIAM}

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	for _, k := range Channels {
		if c == k {
			return true
		}
	}
	return false
}

// Kind is what an event means to the engine. Decoders map each channel's own
// event names onto these; the channel's name is kept in Event.Name.
type Kind string

// Event kinds.
const (
	KindIdentify        Kind = "identify" // traits about the person
	KindTrack           Kind = "track"    // a generic action
	KindPage            Kind = "page"
	KindScreen          Kind = "screen"
	KindAlias           Kind = "alias"  // links a previous id to the current one
	KindGroup           Kind = "group"  // membership of a B2B account
	KindOrder           Kind = "order"  // a purchase: Amount is its total
	KindReturn          Kind = "return" // goods returned: Amount is the value
	KindRefund          Kind = "refund" // money refunded: Amount is the refund
	KindTicketOpened    Kind = "ticket_opened"
	KindTicketClosed    Kind = "ticket_closed"
	KindCSAT            Kind = "csat" // satisfaction score in CSAT
	KindDevicePaired    Kind = "device_paired"
	KindDeviceUnpaired  Kind = "device_unpaired" // removes the device's link to its owner
	KindTelemetry       Kind = "telemetry"
	KindAlert           Kind = "alert"
	KindRegistered      Kind = "registered"
	KindLogin           Kind = "login"
	KindVerified        Kind = "verified" // CIAM verified an email or phone
	KindAccountLinked   Kind = "account_linked"
	KindAccountUnlinked Kind = "account_unlinked"
	KindProfileUpdated  Kind = "profile_updated"
	KindConsentUpdated  Kind = "consent_updated"
	KindErasure         Kind = "erasure_requested"
)

// Event is the canonical form of one message from any channel. Decoders fill
// it; the engine never sees channel-specific shapes.
type Event struct {
	Channel   Channel   `json:"channel"`
	MessageID string    `json:"message_id"` // dedup key, unique per channel
	Kind      Kind      `json:"kind"`
	Name      string    `json:"name,omitempty"` // the channel's own event name
	Time      time.Time `json:"time"`           // event time, UTC

	// Identifiers the event carries, normalized, in any order; the engine
	// sorts them by priority.
	Identifiers []Observation `json:"identifiers,omitempty"`
	// Dropped counts identifiers the decoder removed (blocked, invalid or
	// null), by rule, so that their loss is visible.
	Dropped map[string]int `json:"dropped,omitempty"`

	// Unlink names a pair whose link this event removes (device_unpaired,
	// account_unlinked).
	Unlink *Pair `json:"unlink,omitempty"`
	// Link names a pair this event asserts (alias, account_linked).
	Link *Pair `json:"link,omitempty"`

	Amount      *Money          `json:"amount,omitempty"` // order, return, refund
	CSAT        int             `json:"csat,omitempty"`   // 1..5 for KindCSAT
	GroupID     string          `json:"group_id,omitempty"`
	Traits      map[string]any  `json:"traits,omitempty"`     // person traits
	Consent     map[string]bool `json:"consent,omitempty"`    // purpose -> granted
	Props       map[string]any  `json:"properties,omitempty"` // everything else
	GroupTraits map[string]any  `json:"group_traits,omitempty"`
}

// Pair is two identifiers, for link and unlink operations.
type Pair struct {
	A Identifier `json:"a"`
	B Identifier `json:"b"`
}

// MaxIDLen bounds an identifier value's length in bytes.
const MaxIDLen = 512

// Validate checks the invariants every decoded event must satisfy. Decoders
// must never return an event that fails it; fuzz tests hold them to it.
func (e *Event) Validate() error {
	switch {
	case !e.Channel.Valid():
		return &FieldError{Field: "channel", Rule: "unknown channel"}
	case e.MessageID == "":
		return &FieldError{Field: "message_id", Rule: "required"}
	case !utf8.ValidString(e.MessageID) || len(e.MessageID) > MaxIDLen:
		return &FieldError{Field: "message_id", Rule: "must be valid UTF-8 of at most 512 bytes"}
	case e.Kind == "":
		return &FieldError{Field: "kind", Rule: "required"}
	case e.Time.IsZero():
		return &FieldError{Field: "time", Rule: "required"}
	}
	if len(e.Identifiers) == 0 && e.Kind != KindErasure {
		return &FieldError{Field: "identifiers", Rule: "at least one usable identifier is required"}
	}
	for _, o := range e.Identifiers {
		if err := validID(o.Identifier); err != nil {
			return err
		}
		if o.Trust < Observed || o.Trust > Verified {
			return &FieldError{Field: "identifiers.trust", Rule: "out of range"}
		}
	}
	for _, p := range []*Pair{e.Link, e.Unlink} {
		if p == nil {
			continue
		}
		if err := validID(p.A); err != nil {
			return err
		}
		if err := validID(p.B); err != nil {
			return err
		}
	}
	if e.Amount != nil {
		if err := e.Amount.Validate(); err != nil {
			return err
		}
	}
	if e.Kind == KindCSAT && (e.CSAT < 1 || e.CSAT > 5) {
		return &FieldError{Field: "csat", Rule: "must be 1..5"}
	}
	return nil
}

func validID(i Identifier) error {
	if !i.Type.Valid() {
		return &FieldError{Field: "identifiers.type", Rule: "unknown identifier type"}
	}
	if i.Value == "" || len(i.Value) > MaxIDLen || !utf8.ValidString(i.Value) {
		return &FieldError{Field: "identifiers." + string(i.Type), Rule: "must be 1..512 bytes of UTF-8"}
	}
	return nil
}

// FieldError says which field broke which rule. It never carries the
// field's value, so it is safe to log and to put in a DLQ header.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Rule) }
