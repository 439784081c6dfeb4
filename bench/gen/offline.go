package gen

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// The store, support desk, smart devices, and the CIAM's later events.

// store plays visits to a store: purchases identified by loyalty card and
// payment card, the first of them with the email that links the card to the
// person, and sometimes a return.
func (p *planner) store() {
	r := p.r
	p.loyaltyID = "LOY-" + strings.ToUpper(hex16(derive(p.s.cfg.Seed, saltLoyalty, p.i)))
	p.cards = p.cards[:0]
	for range 1 + r.IntN(2) {
		p.cards = append(p.cards, "fp_"+hex16(r.Uint64()))
	}
	home := r.IntN(numStores)
	visits := make([]time.Duration, 1+r.IntN(4))
	for k := range visits {
		visits[k] = p.sometime()
	}
	slices.Sort(visits)
	for k, at := range visits {
		p.at = at
		store := home
		if r.Float64() < 0.2 {
			store = r.IntN(numStores)
		}
		m, ids, total := p.posBase(store, "purchase", k)
		for range 1 + r.IntN(3) {
			pr := pick(r, catalog)
			q := 1 + r.IntN(2)
			total += pr.cents * int64(q)
			m.Items = append(m.Items, posItem{SKU: pr.sku, Qty: q, UnitPrice: json.Number(cents(pr.cents))})
		}
		m.Total = json.Number(cents(total))
		p.add(canon.POS, m, ids, effect{kind: effOrder, amount: cents(total), currency: p.currency})
		if r.Float64() < 0.2 {
			p.at += time.Duration(1+r.IntN(10)) * 24 * time.Hour
			it := pick(r, m.Items)
			ret, ids, _ := p.posBase(store, "return", 1)
			ret.Items = []posItem{{SKU: it.SKU, Qty: 1, UnitPrice: it.UnitPrice}}
			ret.Total = it.UnitPrice
			p.add(canon.POS, ret, ids, effect{kind: effReturn, amount: string(it.UnitPrice), currency: p.currency})
		}
	}
}

// posBase starts a transaction with the person's identifiers as the till
// captured them. The k == 0 visit always carries the real email.
func (p *planner) posBase(store int, typ string, k int) (*posMsg, []canon.Identifier, int64) {
	r := p.r
	card := pick(r, p.cards)
	m := &posMsg{TransactionID: "TX-" + strings.ToUpper(uuid4(r)), StoreID: fmt.Sprintf("ST-%03d", store),
		Type: typ, Currency: p.currency, LoyaltyID: p.idAs(p.loyaltyID), CardFingerprint: card}
	ids := []canon.Identifier{id(canon.LoyaltyID, p.loyaltyID), id(canon.CardFP, card)}
	hard := p.s.cfg.Hard
	switch x := r.Float64(); {
	case k == 0 || x < 0.4:
		m.Email = p.emailAs()
		ids = append(ids, id(canon.Email, p.email))
	case hard && x < 0.5: // the cashier's placeholder
		m.Email = pick(r, junkEmails)
	}
	switch x := r.Float64(); {
	case p.phone != "" && x < 0.25:
		m.Phone = p.phoneAs()
		ids = append(ids, id(canon.Phone, e164(p.phone)))
	case hard && x < 0.35: // the store's own number, typed for customers who give none
		m.Phone = phoneVariant(r, storePhone(store))
	}
	return m, ids, 0
}

var ticketSubjects = []string{"Where is my order?", "Item arrived damaged", "Wrong size", "Loyalty points missing", "App login problem"}

// support plays tickets at the help desk. The first ticket carries the email
// that links the CRM contact to the person; later events carry only the
// contact id.
func (p *planner) support() {
	r := p.r
	p.crmID = "003" + strings.ToUpper(hex16(derive(p.s.cfg.Seed, saltCRM, p.i)))
	for k := range 1 + r.IntN(2) {
		p.at = p.sometime()
		ticket := "TCK-" + strings.ToUpper(uuid4(r)[:8])
		medium := pick(r, []string{"email", "chat", "voice"})
		m := p.supportBase(ticket, "ticket_opened")
		m.Medium, m.Subject = medium, pick(r, ticketSubjects)
		ids := []canon.Identifier{id(canon.CRMID, p.crmID)}
		switch {
		case k == 0 || r.Float64() < 0.5:
			m.Email = p.emailAs()
			ids = append(ids, id(canon.Email, p.email))
		case p.s.cfg.Hard && r.Float64() < 0.3:
			m.Email = pick(r, junkEmails)
		}
		if p.phone != "" && medium == "voice" {
			m.Phone = p.phoneAs()
			ids = append(ids, id(canon.Phone, e164(p.phone)))
		}
		p.add(canon.Support, m, ids, effect{kind: effTicket})
		crm := []canon.Identifier{id(canon.CRMID, p.crmID)}
		if r.Float64() < 0.35 {
			p.tick(1800, 2*86400)
			amount := cents(pick(r, catalog).cents)
			m := p.supportBase(ticket, "refund_issued")
			m.RefundAmount, m.Currency = json.Number(amount), p.currency
			p.add(canon.Support, m, crm, effect{kind: effRefund, amount: amount, currency: p.currency})
		}
		p.tick(600, 3*86400)
		p.add(canon.Support, p.supportBase(ticket, "ticket_closed"), crm, effect{})
		if r.Float64() < 0.6 {
			p.tick(60, 86400)
			m := p.supportBase(ticket, "csat_submitted")
			m.CSAT = 1 + r.IntN(5)
			p.add(canon.Support, m, crm, effect{kind: effCSAT, csat: m.CSAT})
		}
	}
}

func (p *planner) supportBase(ticket, event string) *supportMsg {
	return &supportMsg{EventID: uuid4(p.r), TicketID: ticket, Event: event, CRMContactID: p.idAs(p.crmID)}
}

var deviceModels = []struct{ code, model string }{
	{"TH", "Northwind Smart Thermostat"}, {"SC", "Northwind Trail Scale"}, {"HB", "Northwind Home Hub"},
}

// serial is the k-th smart device's serial of person i; unique per (i, k).
func (p *planner) serial(k int) (string, string) {
	d := deviceModels[(p.i+k)%len(deviceModels)]
	return "SN-" + d.code + "-" + strings.ToUpper(hex16(derive(p.s.cfg.Seed, saltSerial, p.i*4+k))), d.model
}

// devices pairs smart devices to the account and streams their telemetry.
// Some report before they are paired: Spine must merge that anonymous
// device profile into the owner's on pairing.
func (p *planner) devices() {
	r := p.r
	for k := range 1 + r.IntN(2) {
		p.at = p.sometime()
		serial, model := p.serial(k)
		dev := []canon.Identifier{id(canon.DeviceID, serial)}
		if r.Float64() < 0.2 {
			p.telemetry(serial, p.i, dev, 1+r.IntN(3))
		}
		m := &iotMsg{MessageID: uuid4(r), DeviceSerial: serial, Event: "device_paired",
			OwnerUserID: p.userID, Firmware: "2.4." + fmt.Sprint(r.IntN(10)), Model: model}
		ids := []canon.Identifier{id(canon.DeviceID, serial), id(canon.UserID, p.userID)}
		if r.Float64() < 0.6 {
			m.OwnerEmail = p.emailAs()
			ids = append(ids, id(canon.Email, p.email))
		}
		p.add(canon.IoT, m, ids, effect{})
		p.telemetry(serial, p.i, dev, 3+r.IntN(8))
	}
}

// orphanDevice is a device its owner never pairs: Spine can only ever see
// it as an anonymous device, so it belongs to no person in the truth.
func (p *planner) orphanDevice() {
	p.at = p.sometime()
	serial, _ := p.serial(3)
	p.telemetry(serial, NoPerson, []canon.Identifier{id(canon.DeviceID, serial)}, 2+p.r.IntN(5))
}

func (p *planner) telemetry(serial string, owner int, ids []canon.Identifier, n int) {
	r := p.r
	for range n {
		p.tick(1800, 6*3600)
		event := "telemetry"
		if r.Float64() < 0.1 {
			event = "alert"
		}
		m := &iotMsg{MessageID: uuid4(r), DeviceSerial: serial, Event: event, Firmware: "2.4.1",
			Metrics: map[string]float64{
				"temp_c":   math.Round((15+r.Float64()*12)*10) / 10,
				"humidity": math.Round((25+r.Float64()*50)*10) / 10,
				"battery":  math.Round(r.Float64()*100) / 100,
			}}
		p.addAs(owner, canon.IoT, m, ids, effect{})
	}
}

func (p *planner) phoneVerified() {
	yes := true
	phone := e164(p.phone)
	if p.s.cfg.Hard && p.r.Float64() < 0.3 {
		phone = phoneVariant(p.r, p.phone)
	}
	c := &ciamMsg{EventID: uuid4(p.r), Event: "phone_verified", UserID: p.userID, Phone: phone, PhoneVerified: &yes}
	p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID), id(canon.Phone, e164(p.phone))}, effect{verified: true})
	if p.loyaltyID != "" && p.r.Float64() < 0.3 {
		p.tick(60, 3600)
		c := &ciamMsg{EventID: uuid4(p.r), Event: "account_linked", UserID: p.userID,
			Linked: &ciamLinked{Type: string(canon.LoyaltyID), Value: p.loyaltyID}}
		p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID), id(canon.LoyaltyID, p.loyaltyID)}, effect{})
	}
}

func (p *planner) consentUpdated() {
	consent := map[string]bool{}
	for _, purpose := range canon.Purposes {
		if p.r.Float64() < 0.6 {
			consent[purpose] = p.r.Float64() < 0.7
		}
	}
	if len(consent) == 0 {
		consent["email_marketing"] = false
	}
	c := &ciamMsg{EventID: uuid4(p.r), Event: "consent_updated", UserID: p.userID, Consent: consent}
	p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID)}, effect{consent: consent})
}

var cities = []string{"Seattle", "Austin", "Denver", "Boston", "Chicago", "Portland", "Atlanta", "Miami"}

func (p *planner) profileUpdated() {
	r := p.r
	traits := map[string]any{
		"birthday": fmt.Sprintf("%d-%02d-%02d", 1950+r.IntN(55), 1+r.IntN(12), 1+r.IntN(28)),
		"address":  map[string]any{"city": pick(r, cities), "country": "US"},
	}
	c := &ciamMsg{EventID: uuid4(r), Event: "profile_updated", UserID: p.userID, Traits: traits}
	p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID)}, effect{})
}
