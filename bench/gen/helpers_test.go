package gen

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/spinecdp/spine/schemas/canon"
)

// collect drains a generator.
func collect(t testing.TB, cfg Config) (*Generator, []Message) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var out []Message
	for {
		m, ok := g.Next()
		if !ok {
			return g, out
		}
		out = append(out, m)
	}
}

func hardConfig(persons int) Config {
	c := DefaultConfig()
	c.Persons, c.Seed, c.Hard = persons, 42, true
	return c
}

// parsed is an independent reading of one message, written against DESIGN
// section 5 rather than against the generator's structs.
type parsed struct {
	doc     map[string]any
	id      string
	ids     []canon.Identifier // normalized, junk removed
	junk    []canon.Identifier // raw junk values seen
	kind    string             // order, return, refund, ticket, csat, consent
	amount  int64
	cur     string
	csat    int64
	consent map[string]bool
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[k]
	}
	switch v := cur.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// parseMessage decodes a message and extracts its identifiers the way Spine
// normalizes them; junk and shared values are set aside.
func parseMessage(t testing.TB, m Message, junk, shared map[canon.Identifier]bool) (parsed, error) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(m.Value)))
	dec.UseNumber()
	var p parsed
	if err := dec.Decode(&p.doc); err != nil {
		return p, err
	}
	d := p.doc
	add := func(typ canon.IDType, raw string) {
		if raw == "" {
			return
		}
		v := strings.TrimSpace(raw)
		switch typ {
		case canon.Email:
			v = strings.ToLower(v)
		case canon.Phone:
			num, err := phonenumbers.Parse(raw, "US")
			if err != nil || !phonenumbers.IsValidNumber(num) {
				t.Errorf("phone %q is not valid for libphonenumber", raw)
				return
			}
			v = phonenumbers.Format(num, phonenumbers.E164)
		}
		id := canon.Identifier{Type: typ, Value: v}
		switch {
		case junk[id]:
			p.junk = append(p.junk, id)
		case !shared[id]:
			p.ids = append(p.ids, id)
		}
	}
	switch m.Channel {
	case canon.Web, canon.Mobile:
		p.id = str(d, "messageId")
		add(canon.AnonymousID, str(d, "anonymousId"))
		add(canon.UserID, str(d, "userId"))
		add(canon.AnonymousID, str(d, "previousId"))
		add(canon.Email, str(d, "traits", "email"))
		add(canon.Phone, str(d, "traits", "phone"))
		add(canon.Email, str(d, "context", "traits", "email"))
		add(canon.DeviceID, str(d, "context", "device", "id"))
		if str(d, "type") == "track" && str(d, "event") == "Order Completed" {
			amt := str(d, "properties", "revenue")
			if amt == "" {
				amt = str(d, "properties", "total")
			}
			p.kind, p.cur = "order", str(d, "properties", "currency")
			p.amount = micros(t, amt)
		}
	case canon.IoT:
		p.id = str(d, "message_id")
		add(canon.DeviceID, str(d, "device_serial"))
		add(canon.UserID, str(d, "owner_user_id"))
		add(canon.Email, str(d, "owner_email"))
	case canon.POS:
		p.id = str(d, "transaction_id")
		add(canon.LoyaltyID, str(d, "loyalty_id"))
		add(canon.CardFP, str(d, "card_fingerprint"))
		add(canon.Email, str(d, "email"))
		add(canon.Phone, str(d, "phone"))
		p.kind, p.cur, p.amount = map[string]string{"purchase": "order", "return": "return"}[str(d, "type")], str(d, "currency"), micros(t, str(d, "total"))
	case canon.Support:
		p.id = str(d, "event_id")
		add(canon.CRMID, str(d, "crm_contact_id"))
		add(canon.Email, str(d, "email"))
		add(canon.Phone, str(d, "phone"))
		switch str(d, "event") {
		case "ticket_opened":
			p.kind = "ticket"
		case "refund_issued":
			p.kind, p.cur, p.amount = "refund", str(d, "currency"), micros(t, str(d, "refund_amount"))
		case "csat_submitted":
			p.kind = "csat"
			p.csat = micros(t, str(d, "csat")) / 1_000_000
		}
	case canon.CIAM:
		p.id = str(d, "event_id")
		add(canon.UserID, str(d, "user_id"))
		add(canon.AnonymousID, str(d, "anonymous_id"))
		add(canon.DeviceID, str(d, "device_id"))
		add(canon.Email, str(d, "email"))
		add(canon.Phone, str(d, "phone"))
		if l, ok := d["linked"].(map[string]any); ok {
			add(canon.IDType(str(l, "type")), str(l, "value"))
		}
		if c, ok := d["consent"].(map[string]any); ok {
			p.kind, p.consent = "consent", map[string]bool{}
			for k, v := range c {
				p.consent[k] = v.(bool)
			}
		}
	}
	return p, nil
}

func micros(t testing.TB, s string) int64 {
	t.Helper()
	v, ok := canon.ParseDecimal(s)
	if !ok {
		t.Errorf("amount %q does not parse", s)
	}
	return v
}

func junkSet(tr Truth) map[canon.Identifier]bool {
	m := map[canon.Identifier]bool{}
	for _, id := range tr.Junk {
		m[id] = true
	}
	return m
}

func sharedSet(tr Truth) map[canon.Identifier]bool {
	m := map[canon.Identifier]bool{}
	for _, s := range tr.Shared {
		m[s.Identifier] = true
	}
	return m
}

func parseTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("timestamp %q: %v", s, err)
	}
	return v
}
