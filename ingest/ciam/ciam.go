package ciam

import (
	"slices"
	"strings"

	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

var kinds = map[string]canon.Kind{
	"registered":        canon.KindRegistered,
	"login":             canon.KindLogin,
	"email_verified":    canon.KindVerified,
	"phone_verified":    canon.KindVerified,
	"account_linked":    canon.KindAccountLinked,
	"account_unlinked":  canon.KindAccountUnlinked,
	"profile_updated":   canon.KindProfileUpdated,
	"consent_updated":   canon.KindConsentUpdated,
	"erasure_requested": canon.KindErasure,
}

// RuleErasureScope is the Dropped rule of co-occurrence ids (anonymous_id,
// device_id) left out of an erasure request.
const RuleErasureScope = "erasure_scope"

// New returns the ciam decoder, which normalizes identifiers with n and
// reads messages within lim.
func New(n *normalize.Normalizer, lim msg.Limits) func([]byte) (canon.Event, error) {
	return msg.NewDecoder(msg.Envelope{
		Channel:    canon.CIAM,
		IDField:    "event_id",
		EventField: "event",
		TimeField:  "timestamp",
		Kinds:      kinds,
		Fill:       fill,
	}, n, lim)
}

// fill reads the identity fields of o into ev.
func fill(o *msg.Object, ev *canon.Event, ids *msg.IDs) {
	kind, name := ev.Kind, ev.Name
	user, hasUser := ids.Read(o, "user_id", canon.UserID, canon.Verified)
	ids.Read(o, "email", canon.Email, contactTrust(o, name, "email", "email_verified"))
	ids.Read(o, "phone", canon.Phone, contactTrust(o, name, "phone", "phone_verified"))
	for _, key := range []string{"anonymous_id", "device_id"} {
		t := canon.AnonymousID
		if key == "device_id" {
			t = canon.DeviceID
		}
		if kind != canon.KindErasure {
			ids.Read(o, key, t, canon.Observed)
		} else if _, present := o.ID(key); present {
			ids.Drop(RuleErasureScope, 1)
		}
	}
	switch kind {
	case canon.KindAccountLinked, canon.KindAccountUnlinked:
		if !o.Has("user_id") {
			o.Fail(msg.ReasonMissingField, "user_id", "is required to link or unlink")
		}
		linked, hasLinked := readLinked(o, ids)
		if !hasUser || !hasLinked {
			break
		}
		pair := &canon.Pair{A: user, B: linked}
		if kind == canon.KindAccountLinked {
			ev.Link = pair
			ids.Add(linked, canon.Verified)
		} else {
			ev.Unlink = pair
		}
	case canon.KindErasure:
		if !o.Has("user_id") && !o.Has("email") {
			o.Fail(msg.ReasonMissingField, "user_id", "is required (or email) to erase a person")
		}
	}
	ev.Traits = o.Obj("traits").Map()
	ev.Consent = consent(o.Obj("consent"))
	if kind == canon.KindConsentUpdated && len(ev.Consent) == 0 && o.Err() == nil {
		o.Fail(msg.ReasonMissingField, "consent", "is required and must name a purpose")
	}
	ev.GroupID, ev.GroupTraits = organization(o)
}

// contactTrust reads the flag (<key>_verified, a constant so that no
// string is built per message): the CIAM verified the email or phone if it
// says so, or if the event is that verification.
func contactTrust(o *msg.Object, event, key, flag string) canon.Trust {
	verified, set := o.Bool(flag)
	if event == flag {
		if !o.Has(key) {
			o.Fail(msg.ReasonMissingField, key, "is required by "+flag)
		}
		if set && !verified {
			o.Fail(msg.ReasonInvalidValue, flag, "must not be false on a "+flag+" event")
		}
		verified = true
	}
	if verified {
		return canon.Verified
	}
	return canon.Asserted
}

// readLinked reads and normalizes the required linked {type, value}.
func readLinked(o *msg.Object, ids *msg.IDs) (canon.Identifier, bool) {
	if !o.Has("linked") {
		o.Fail(msg.ReasonMissingField, "linked", "is required")
		return canon.Identifier{}, false
	}
	l := o.Obj("linked")
	t := canon.IDType(l.ReqStr("type"))
	if !t.Valid() && o.Err() == nil {
		l.Fail(msg.ReasonInvalidValue, "type", "must be a canonical identifier type")
	}
	if !l.Has("value") && o.Err() == nil {
		l.Fail(msg.ReasonMissingField, "value", "is required")
	}
	if o.Err() != nil {
		return canon.Identifier{}, false
	}
	return ids.Take(l, "value", t)
}

// consent reads {purpose: bool} for the purposes of canon.Purposes. The
// purposes are read in key order, so a message with several faults always
// gets the same reject.
func consent(c *msg.Object) map[string]bool {
	var out map[string]bool
	m := c.Map()
	// Room on the stack for the usual few purposes.
	keys := make([]string, 0, 8)
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, purpose := range keys {
		v := m[purpose]
		if v == nil {
			continue // null: no decision
		}
		if !slices.Contains(canon.Purposes, purpose) {
			c.Fail(msg.ReasonInvalidValue, "", "names a purpose that is not one of "+purposeList)
			return nil
		}
		b, ok := v.(bool)
		if !ok {
			c.Fail(msg.ReasonWrongType, "", "values must be booleans")
			return nil
		}
		if out == nil {
			out = make(map[string]bool, len(canon.Purposes))
		}
		out[purpose] = b
	}
	return out
}

var purposeList = strings.Join(canon.Purposes, ", ")

// organization reads the B2B account: a string or integer id, or an object
// with an id whose fields become the group traits.
func organization(o *msg.Object) (string, map[string]any) {
	if o.IsObj("organization") {
		org := o.Obj("organization")
		return org.ReqID("id"), org.Map()
	}
	id, _ := o.ID("organization")
	return strings.TrimSpace(id), nil
}
