package ciam

import (
	"testing"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/msg/msgtest"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var dec = New(normalize.Default(), msg.Limits{})

const head = `"event_id":"e1","timestamp":"2025-01-02T03:04:05Z","user_id":"u1"`

var user = canon.Identifier{Type: canon.UserID, Value: "u1"}

func trustOf(ev canon.Event, t canon.IDType) canon.Trust {
	for _, o := range ev.Identifiers {
		if o.Type == t {
			return o.Trust
		}
	}
	return 0
}

func TestDecode(t *testing.T) {
	msgtest.Run(t, dec, []msgtest.Case{
		{Name: "registered unverified email", In: `{"event":"registered",` + head + `,"email":"a@b.io"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindRegistered || trustOf(ev, canon.UserID) != canon.Verified || trustOf(ev, canon.Email) != canon.Asserted {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "verified flag", In: `{"event":"login",` + head + `,"email":"a@b.io","email_verified":true,"phone":"+16502530000","phone_verified":true}`,
			Check: func(t *testing.T, ev canon.Event) {
				if trustOf(ev, canon.Email) != canon.Verified || trustOf(ev, canon.Phone) != canon.Verified {
					t.Errorf("identifiers = %+v", ev.Identifiers)
				}
			}},
		{Name: "email_verified event verifies", In: `{"event":"email_verified",` + head + `,"email":"a@b.io"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindVerified || ev.Name != "email_verified" || trustOf(ev, canon.Email) != canon.Verified {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "account linked", In: `{"event":"account_linked",` + head + `,"linked":{"type":"email","value":"X@Y.io"}}`,
			Check: func(t *testing.T, ev canon.Event) {
				want := canon.Pair{A: user, B: canon.Identifier{Type: canon.Email, Value: "x@y.io"}}
				if ev.Link == nil || *ev.Link != want || trustOf(ev, canon.Email) != canon.Verified {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "account unlinked", In: `{"event":"account_unlinked",` + head + `,"linked":{"type":"crm_id","value":"C9"}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Unlink == nil || ev.Unlink.B.Value != "C9" || len(ev.Identifiers) != 1 {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "account linked blocked value", In: `{"event":"account_linked",` + head + `,"linked":{"type":"email","value":"test@shop.io"}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Link != nil || ev.Dropped["blocked"] != 1 {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "consent", In: `{"event":"consent_updated",` + head + `,"consent":{"sms":true,"analytics":false}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if len(ev.Consent) != 2 || !ev.Consent["sms"] || ev.Consent["analytics"] {
					t.Errorf("consent = %v", ev.Consent)
				}
			}},
		{Name: "organization string", In: `{"event":"login",` + head + `,"organization":"acme"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.GroupID != "acme" {
					t.Errorf("group = %q", ev.GroupID)
				}
			}},
		{Name: "organization object", In: `{"event":"login",` + head + `,"organization":{"id":42,"name":"Acme"}}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.GroupID != "42" || ev.GroupTraits["name"] != "Acme" {
					t.Errorf("group = %q %v", ev.GroupID, ev.GroupTraits)
				}
			}},
		{Name: "erasure leaves out device", In: `{"event":"erasure_requested",` + head + `,"device_id":"d1","anonymous_id":"a1"}`,
			Check: func(t *testing.T, ev canon.Event) {
				if ev.Kind != canon.KindErasure || len(ev.Identifiers) != 1 || ev.Dropped[RuleErasureScope] != 2 || ev.Props != nil {
					t.Errorf("got %+v", ev)
				}
			}},
		{Name: "erasure by email", In: `{"event":"erasure_requested","event_id":"e","timestamp":"2025-01-02T03:04:05Z","email":"a@b.io"}`},

		{Name: "missing event", In: `{` + head + `}`, Reason: msg.ReasonMissingField, Field: "event"},
		{Name: "unknown event", In: `{"event":"logout",` + head + `}`, Reason: msg.ReasonUnknownEvent, Field: "event"},
		{Name: "missing event_id", In: `{"event":"login","timestamp":"2025-01-02T03:04:05Z","user_id":"u"}`, Reason: msg.ReasonMissingField, Field: "event_id"},
		{Name: "user id wrong type", In: `{"event":"login","event_id":"e","timestamp":"2025-01-02T03:04:05Z","user_id":{"id":1}}`, Reason: msg.ReasonWrongType, Field: "user_id"},
		{Name: "verified flag wrong type", In: `{"event":"login",` + head + `,"email_verified":"yes"}`, Reason: msg.ReasonWrongType, Field: "email_verified"},
		{Name: "email_verified without email", In: `{"event":"email_verified",` + head + `}`, Reason: msg.ReasonMissingField, Field: "email"},
		{Name: "email_verified false", In: `{"event":"email_verified",` + head + `,"email":"a@b.io","email_verified":false}`, Reason: msg.ReasonInvalidValue, Field: "email_verified"},
		{Name: "phone_verified without phone", In: `{"event":"phone_verified",` + head + `}`, Reason: msg.ReasonMissingField, Field: "phone"},
		{Name: "linked missing", In: `{"event":"account_linked",` + head + `}`, Reason: msg.ReasonMissingField, Field: "linked"},
		{Name: "linked without user", In: `{"event":"account_linked","event_id":"e","timestamp":"2025-01-02T03:04:05Z","email":"a@b.io","linked":{"type":"email","value":"x@y.io"}}`, Reason: msg.ReasonMissingField, Field: "user_id"},
		{Name: "linked not object", In: `{"event":"account_unlinked",` + head + `,"linked":"email:x@y.io"}`, Reason: msg.ReasonWrongType, Field: "linked"},
		{Name: "linked bad type", In: `{"event":"account_linked",` + head + `,"linked":{"type":"ssn","value":"1"}}`, Reason: msg.ReasonInvalidValue, Field: "linked.type"},
		{Name: "linked missing type", In: `{"event":"account_linked",` + head + `,"linked":{"value":"1"}}`, Reason: msg.ReasonMissingField, Field: "linked.type"},
		{Name: "linked missing value", In: `{"event":"account_linked",` + head + `,"linked":{"type":"email"}}`, Reason: msg.ReasonMissingField, Field: "linked.value"},
		{Name: "consent unknown purpose", In: `{"event":"consent_updated",` + head + `,"consent":{"telepathy":true}}`, Reason: msg.ReasonInvalidValue, Field: "consent"},
		{Name: "consent not bool", In: `{"event":"consent_updated",` + head + `,"consent":{"sms":"yes"}}`, Reason: msg.ReasonWrongType, Field: "consent"},
		// Two faults: the first purpose in key order names the reject, whatever the map order.
		{Name: "consent two faults", In: `{"event":"consent_updated",` + head + `,"consent":{"telepathy":true,"sms":"yes"}}`, Reason: msg.ReasonWrongType, Field: "consent"},
		{Name: "consent two faults, unknown first", In: `{"event":"consent_updated",` + head + `,"consent":{"sms":"yes","aardvark":true}}`, Reason: msg.ReasonInvalidValue, Field: "consent"},
		{Name: "consent empty", In: `{"event":"consent_updated",` + head + `,"consent":{}}`, Reason: msg.ReasonMissingField, Field: "consent"},
		{Name: "consent missing", In: `{"event":"consent_updated",` + head + `}`, Reason: msg.ReasonMissingField, Field: "consent"},
		{Name: "traits not object", In: `{"event":"profile_updated",` + head + `,"traits":[]}`, Reason: msg.ReasonWrongType, Field: "traits"},
		{Name: "organization bool", In: `{"event":"login",` + head + `,"organization":true}`, Reason: msg.ReasonWrongType, Field: "organization"},
		{Name: "organization object without id", In: `{"event":"login",` + head + `,"organization":{"name":"x"}}`, Reason: msg.ReasonMissingField, Field: "organization.id"},
		{Name: "erasure without person", In: `{"event":"erasure_requested","event_id":"e","timestamp":"2025-01-02T03:04:05Z","device_id":"d1"}`, Reason: msg.ReasonMissingField, Field: "user_id"},
		{Name: "erasure blocked person", In: `{"event":"erasure_requested","event_id":"e","timestamp":"2025-01-02T03:04:05Z","user_id":"null","device_id":"d1"}`, Reason: msg.ReasonNoIdentifier},
		{Name: "no identifier", In: `{"event":"login","event_id":"e","timestamp":"2025-01-02T03:04:05Z","user_id":"guest"}`, Reason: msg.ReasonNoIdentifier},
	})
}

func TestGolden(t *testing.T) {
	msgtest.Golden(t, func(string) msgtest.Decode { return dec })
}

func FuzzDecode(f *testing.F) {
	msgtest.Fuzz(f, canon.CIAM, dec)
}
