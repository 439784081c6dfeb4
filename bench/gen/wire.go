package gen

import "encoding/json"

// The structs below are the channels' wire shapes (DESIGN section 5). Field
// order is fixed by the struct and map keys are sorted by encoding/json, so
// rendering is deterministic. Every id field is omitempty so that a malformed
// copy can drop it.

// body is one message's payload before rendering.
type body interface {
	setTime(ts string)
	dropID() // for the "missing id" malformed case
}

type segment struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId,omitempty"`
	Timestamp   string         `json:"timestamp"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	UserID      string         `json:"userId,omitempty"`
	PreviousID  string         `json:"previousId,omitempty"`
	GroupID     string         `json:"groupId,omitempty"`
	Event       string         `json:"event,omitempty"`
	Name        string         `json:"name,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	Context     segContext     `json:"context"`
}

type segContext struct {
	IP        string         `json:"ip,omitempty"`
	UserAgent string         `json:"userAgent,omitempty"`
	Locale    string         `json:"locale,omitempty"`
	Page      *segPage       `json:"page,omitempty"`
	Device    *segDevice     `json:"device,omitempty"`
	App       *segApp        `json:"app,omitempty"`
	OS        *segOS         `json:"os,omitempty"`
	Library   segLibrary     `json:"library"`
	Traits    map[string]any `json:"traits,omitempty"`
}

type segPage struct {
	Path     string `json:"path"`
	URL      string `json:"url"`
	Title    string `json:"title,omitempty"`
	Referrer string `json:"referrer,omitempty"`
}

type segDevice struct {
	ID           string `json:"id,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	Type         string `json:"type,omitempty"`
}

type segApp struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Build   string `json:"build"`
}

type segOS struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type segLibrary struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (m *segment) setTime(ts string) { m.Timestamp = ts }
func (m *segment) dropID()           { m.MessageID = "" }

type iotMsg struct {
	MessageID    string             `json:"message_id,omitempty"`
	Timestamp    string             `json:"timestamp"`
	DeviceSerial string             `json:"device_serial"`
	Event        string             `json:"event"`
	OwnerUserID  string             `json:"owner_user_id,omitempty"`
	OwnerEmail   string             `json:"owner_email,omitempty"`
	Firmware     string             `json:"firmware,omitempty"`
	Model        string             `json:"model,omitempty"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
}

func (m *iotMsg) setTime(ts string) { m.Timestamp = ts }
func (m *iotMsg) dropID()           { m.MessageID = "" }

type posMsg struct {
	TransactionID   string      `json:"transaction_id,omitempty"`
	Timestamp       string      `json:"timestamp"`
	StoreID         string      `json:"store_id"`
	Type            string      `json:"type"`
	Total           json.Number `json:"total"`
	Currency        string      `json:"currency"`
	LoyaltyID       string      `json:"loyalty_id,omitempty"`
	CardFingerprint string      `json:"card_fingerprint,omitempty"`
	Email           string      `json:"email,omitempty"`
	Phone           string      `json:"phone,omitempty"`
	Items           []posItem   `json:"items"`
}

type posItem struct {
	SKU       string      `json:"sku"`
	Qty       int         `json:"qty"`
	UnitPrice json.Number `json:"unit_price"`
}

func (m *posMsg) setTime(ts string) { m.Timestamp = ts }
func (m *posMsg) dropID()           { m.TransactionID = "" }

type supportMsg struct {
	EventID      string      `json:"event_id,omitempty"`
	Timestamp    string      `json:"timestamp"`
	TicketID     string      `json:"ticket_id"`
	Event        string      `json:"event"`
	CRMContactID string      `json:"crm_contact_id,omitempty"`
	Email        string      `json:"email,omitempty"`
	Phone        string      `json:"phone,omitempty"`
	RefundAmount json.Number `json:"refund_amount,omitempty"`
	Currency     string      `json:"currency,omitempty"`
	CSAT         int         `json:"csat,omitempty"`
	Medium       string      `json:"medium,omitempty"`
	Subject      string      `json:"subject,omitempty"`
}

func (m *supportMsg) setTime(ts string) { m.Timestamp = ts }
func (m *supportMsg) dropID()           { m.EventID = "" }

type ciamMsg struct {
	EventID       string          `json:"event_id,omitempty"`
	Timestamp     string          `json:"timestamp"`
	Event         string          `json:"event"`
	UserID        string          `json:"user_id"`
	AnonymousID   string          `json:"anonymous_id,omitempty"`
	DeviceID      string          `json:"device_id,omitempty"`
	Email         string          `json:"email,omitempty"`
	EmailVerified *bool           `json:"email_verified,omitempty"`
	Phone         string          `json:"phone,omitempty"`
	PhoneVerified *bool           `json:"phone_verified,omitempty"`
	Linked        *ciamLinked     `json:"linked,omitempty"`
	Traits        map[string]any  `json:"traits,omitempty"`
	Consent       map[string]bool `json:"consent,omitempty"`
}

type ciamLinked struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (m *ciamMsg) setTime(ts string) { m.Timestamp = ts }
func (m *ciamMsg) dropID()           { m.EventID = "" }
