package gen

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/spinecdp/spine/schemas/canon"
)

// The web and mobile channels: Segment tracking-spec messages.

const siteURL = "https://www.northwind-outfitters.com"

var sitePages = []struct{ path, title string }{
	{"/", "Home"}, {"/c/footwear", "Footwear"}, {"/c/jackets", "Jackets"},
	{"/c/camping", "Camping"}, {"/sale", "Sale"}, {"/stores", "Store Locator"},
	{"/help", "Help Center"}, {"/blog/trail-guide", "Trail Guide"},
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
}

var locales = []string{"en-US", "en-US", "en-US", "en-GB", "es-US", "fr-FR", "de-DE"}

// browser is one web cookie: a Segment anonymousId on one computer.
type browser struct {
	anon, ua, ip, locale string
}

func (p *planner) newBrowser() *browser {
	r := p.r
	return &browser{
		anon:   uuid4(r),
		ua:     pick(r, userAgents),
		ip:     strconv.Itoa(23+r.IntN(180)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254)),
		locale: pick(r, locales),
	}
}

// webSeg starts a web message and lists the identifiers it carries. A
// logged-in page or track sometimes carries a junk anonymousId instead of
// the cookie, as a misconfigured tag does.
func (p *planner) webSeg(b *browser, typ, user string) (*segment, []canon.Identifier) {
	m := &segment{
		Type: typ, MessageID: uuid4(p.r), AnonymousID: b.anon, UserID: user,
		Context: segContext{IP: b.ip, UserAgent: b.ua, Locale: b.locale,
			Library: segLibrary{Name: "analytics.js", Version: "next-1.70.0"}},
	}
	var ids []canon.Identifier
	if user != "" {
		ids = append(ids, id(canon.UserID, user))
		if p.s.cfg.Hard && (typ == "page" || typ == "track") && p.r.Float64() < 0.04 {
			m.AnonymousID = pick(p.r, junkAnonymous)
			return m, ids
		}
	}
	return m, append(ids, id(canon.AnonymousID, b.anon))
}

// browse plays sessions of page views and product views.
func (p *planner) browse(b *browser, user string, sessions int) {
	for s := range sessions {
		if s > 0 {
			p.gap()
		}
		for range 2 + p.r.IntN(6) {
			p.tick(5, 120)
			if p.r.Float64() < 0.3 {
				pr := pick(p.r, catalog)
				m, ids := p.webSeg(b, "track", user)
				m.Event = "Product Viewed"
				m.Properties = map[string]any{"product_id": pr.sku, "sku": pr.sku, "name": pr.name,
					"price": json.Number(cents(pr.cents)), "currency": p.currency}
				m.Context.Page = &segPage{Path: "/p/" + strings.ToLower(pr.sku), URL: siteURL + "/p/" + strings.ToLower(pr.sku), Title: pr.name}
				p.add(canon.Web, m, ids, effect{})
				continue
			}
			pg := pick(p.r, sitePages)
			m, ids := p.webSeg(b, "page", user)
			m.Name = pg.title
			m.Properties = map[string]any{"path": pg.path, "url": siteURL + pg.path, "title": pg.title}
			m.Context.Page = &segPage{Path: pg.path, URL: siteURL + pg.path, Title: pg.title}
			p.add(canon.Web, m, ids, effect{})
		}
	}
}

// newsletter is a pseudonymous identify: an email, no userId.
func (p *planner) newsletter(b *browser) {
	p.tick(5, 60)
	m, ids := p.webSeg(b, "identify", "")
	m.Traits = map[string]any{"email": p.emailAs(), "first_name": p.first}
	p.add(canon.Web, m, append(ids, id(canon.Email, p.email)), effect{})
	p.tick(1, 5)
	m, ids = p.webSeg(b, "track", "")
	m.Event = "Newsletter Subscribed"
	m.Properties = map[string]any{"list": "weekly-deals"}
	m.Context.Traits = map[string]any{"email": p.emailAs()}
	p.add(canon.Web, m, append(ids, id(canon.Email, p.email)), effect{})
}

// signUp registers on the web: a Segment identify with the new userId and
// the email, the CIAM's registered event, and sometimes an alias.
func (p *planner) signUp(b *browser) {
	r := p.r
	p.tick(30, 300)
	m, ids := p.webSeg(b, "identify", p.userID)
	m.Traits = map[string]any{"email": p.emailAs(), "first_name": p.first, "last_name": p.last}
	ids = append(ids, id(canon.Email, p.email))
	if p.phone != "" && r.Float64() < 0.4 {
		m.Traits["phone"] = p.phoneAs()
		ids = append(ids, id(canon.Phone, e164(p.phone)))
	}
	p.add(canon.Web, m, ids, effect{})

	p.tick(0, 2)
	social := r.Float64() < 0.3 // social login: the email comes verified
	c := &ciamMsg{EventID: uuid4(r), Event: "registered", UserID: p.userID, AnonymousID: b.anon,
		Email: p.email, EmailVerified: &social,
		Traits: map[string]any{"first_name": p.first, "last_name": p.last}}
	p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID), id(canon.AnonymousID, b.anon), id(canon.Email, p.email)},
		effect{verified: social})

	p.tick(1, 10)
	m, ids = p.webSeg(b, "track", p.userID)
	m.Event = "Signed Up"
	m.Properties = map[string]any{"method": map[bool]string{true: "google", false: "email"}[social]}
	p.add(canon.Web, m, ids, effect{})
	if r.Float64() < 0.2 {
		p.tick(0, 2)
		m, ids = p.webSeg(b, "alias", p.userID)
		m.PreviousID, m.AnonymousID = b.anon, ""
		p.add(canon.Web, m, []canon.Identifier{id(canon.UserID, p.userID), id(canon.AnonymousID, b.anon)}, effect{})
	}
	if !social && r.Float64() < 0.7 {
		p.tick(60, 7200)
		yes := true
		c := &ciamMsg{EventID: uuid4(r), Event: "email_verified", UserID: p.userID, Email: p.email, EmailVerified: &yes}
		p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID), id(canon.Email, p.email)}, effect{verified: true})
	}
}

// webLogin logs in on another computer: it links that cookie.
func (p *planner) webLogin(b *browser) {
	p.tick(5, 60)
	c := &ciamMsg{EventID: uuid4(p.r), Event: "login", UserID: p.userID, AnonymousID: b.anon}
	p.add(canon.CIAM, c, []canon.Identifier{id(canon.UserID, p.userID), id(canon.AnonymousID, b.anon)}, effect{})
	p.tick(0, 3)
	m, ids := p.webSeg(b, "identify", p.userID)
	m.Traits = map[string]any{"first_name": p.first}
	p.add(canon.Web, m, ids, effect{})
}

// order draws a basket; it returns the Segment products and the total.
func (p *planner) order() ([]map[string]any, int64) {
	var products []map[string]any
	var total int64
	for range 1 + p.r.IntN(3) {
		pr := pick(p.r, catalog)
		q := 1 + p.r.IntN(2)
		total += pr.cents * int64(q)
		products = append(products, map[string]any{"product_id": pr.sku, "sku": pr.sku, "name": pr.name,
			"price": json.Number(cents(pr.cents)), "quantity": q})
	}
	return products, total
}

// orderCompleted is a Segment "Order Completed" track. Most carry revenue,
// some only total: the spec allows either.
func (p *planner) orderCompleted(m *segment) effect {
	products, total := p.order()
	field := "revenue"
	if p.r.Float64() < 0.2 {
		field = "total"
	}
	m.Type, m.Event = "track", "Order Completed"
	m.Properties = map[string]any{"order_id": "ORD-" + strings.ToUpper(uuid4(p.r)[:13]), field: json.Number(cents(total)),
		"currency": p.currency, "products": products}
	return effect{kind: effOrder, amount: cents(total), currency: p.currency}
}

func (p *planner) webOrder(b *browser) {
	p.tick(30, 600)
	m, ids := p.webSeg(b, "track", p.userID)
	eff := p.orderCompleted(m)
	p.add(canon.Web, m, ids, eff)
}

// group makes the person a member of a B2B account.
func (p *planner) group(b *browser) {
	m, ids := p.webSeg(b, "group", p.userID)
	m.GroupID = "acct_" + hex16(uint64(p.r.IntN(500)))[10:]
	m.Traits = map[string]any{"name": pick(p.r, lastNames) + " Outdoor Club", "plan": "team"}
	p.add(canon.Web, m, ids, effect{})
}

// install is one mobile app install (or the family tablet's).
type install struct {
	deviceID, anon      string
	manufacturer, model string
	os, osVersion, typ  string
	tablet              bool
}

func newInstall(r *rand.Rand, tablet bool) install {
	if tablet {
		return install{deviceID: hex16(r.Uint64()), anon: uuid4(r), manufacturer: "Samsung",
			model: "SM-X710", os: "Android", osVersion: "14", typ: "android", tablet: true}
	}
	if r.Float64() < 0.55 { // iOS: identifierForVendor, upper case
		return install{deviceID: strings.ToUpper(uuid4(r)), anon: uuid4(r), manufacturer: "Apple",
			model: pick(r, []string{"iPhone15,2", "iPhone16,1", "iPhone14,5"}), os: "iOS", osVersion: "18.1", typ: "ios"}
	}
	return install{deviceID: hex16(r.Uint64()), anon: uuid4(r), manufacturer: "Google",
		model: pick(r, []string{"Pixel 8", "Pixel 7a"}), os: "Android", osVersion: "14", typ: "android"}
}

// mobileSeg starts a mobile message. On the family tablet the device and
// install ids are shared with another person, so they are not this
// person's truth. A logged-in screen sometimes carries the all-zero device
// id, as an SDK without tracking permission does.
func (p *planner) mobileSeg(in *install, typ, user string) (*segment, []canon.Identifier) {
	lib := "analytics-ios"
	if in.os == "Android" {
		lib = "analytics-android"
	}
	m := &segment{
		Type: typ, MessageID: uuid4(p.r), AnonymousID: in.anon, UserID: user,
		Context: segContext{
			Device:  &segDevice{ID: in.deviceID, Manufacturer: in.manufacturer, Model: in.model, Type: in.typ},
			App:     &segApp{Name: "Northwind", Version: "5.12.0", Build: "5120"},
			OS:      &segOS{Name: in.os, Version: in.osVersion},
			Library: segLibrary{Name: lib, Version: "4.6.1"},
		},
	}
	var ids []canon.Identifier
	if user != "" {
		ids = append(ids, id(canon.UserID, user))
	}
	if in.tablet {
		return m, ids
	}
	ids = append(ids, id(canon.AnonymousID, in.anon))
	if user != "" && typ == "screen" && p.s.cfg.Hard && p.r.Float64() < 0.03 {
		m.Context.Device.ID = junkDevice
		return m, ids
	}
	return m, append(ids, id(canon.DeviceID, in.deviceID))
}

var appScreens = []string{"Home", "Product List", "Product Detail", "Cart", "Account", "Store Mode", "Wishlist"}

func (p *planner) screens(in *install, user string, sessions int) {
	for s := range sessions {
		if s > 0 {
			p.gap()
		}
		for range 2 + p.r.IntN(5) {
			p.tick(3, 90)
			m, ids := p.mobileSeg(in, "screen", user)
			m.Name = pick(p.r, appScreens)
			p.add(canon.Mobile, m, ids, effect{})
		}
	}
}

// mobile installs the app, browses, logs in (CIAM login + identify) and
// uses it over a few sessions, sometimes ordering.
func (p *planner) mobile(in *install) {
	if p.r.Float64() < 0.5 {
		p.screens(in, "", 1)
		p.tick(10, 300)
	}
	p.mobileLogin(in)
	m, ids := p.mobileSeg(in, "identify", p.userID)
	m.Traits = map[string]any{"email": p.emailAs(), "first_name": p.first, "last_name": p.last}
	p.add(canon.Mobile, m, append(ids, id(canon.Email, p.email)), effect{})
	for s := range 1 + p.r.IntN(4) {
		if s > 0 {
			p.gap()
		}
		p.screens(in, p.userID, 1)
		if p.r.Float64() < 0.3 {
			p.tick(20, 300)
			m, ids := p.mobileSeg(in, "track", p.userID)
			eff := p.orderCompleted(m)
			m.Context.Traits = map[string]any{"email": p.email}
			p.add(canon.Mobile, m, append(ids, id(canon.Email, p.email)), eff)
		}
	}
}

// mobileLogin is the CIAM login from an app, then Segment's "Signed In".
func (p *planner) mobileLogin(in *install) {
	c := &ciamMsg{EventID: uuid4(p.r), Event: "login", UserID: p.userID, DeviceID: in.deviceID}
	ids := []canon.Identifier{id(canon.UserID, p.userID)}
	if !in.tablet {
		ids = append(ids, id(canon.DeviceID, in.deviceID))
	}
	p.add(canon.CIAM, c, ids, effect{})
	p.tick(1, 5)
	m, ids := p.mobileSeg(in, "track", p.userID)
	m.Event = "Signed In"
	p.add(canon.Mobile, m, ids, effect{})
}

// tablet: the family tablet, used logged in by both persons of a household.
// Every message on it carries the userId, so it can be attributed.
func (p *planner) tablet(in *install) {
	for range 1 + p.r.IntN(3) {
		p.gap()
		p.mobileLogin(in)
		p.screens(in, p.userID, 1)
	}
}
