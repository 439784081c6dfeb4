package gen

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// spec is the generator's immutable configuration, shared by every planner.
type spec struct {
	cfg     Config
	enabled map[canon.Channel]bool
	topics  map[canon.Channel]string
	spacing time.Duration // between two persons' starts
}

func newSpec(cfg Config) *spec {
	s := &spec{
		cfg:     cfg,
		enabled: map[canon.Channel]bool{},
		topics:  map[canon.Channel]string{},
		// Whole milliseconds, like every timestamp the channels carry.
		spacing: max(time.Millisecond, (cfg.Journey / time.Duration(cfg.Window)).Truncate(time.Millisecond)),
	}
	for _, ch := range cfg.Channels {
		s.enabled[ch] = true
	}
	for _, ch := range canon.Channels {
		s.topics[ch] = cfg.TopicPrefix + string(ch)
	}
	return s
}

// personStart is when person i's journey may begin. Starts are evenly spaced
// Journey/Window apart and journeys last at most Journey, so at most Window
// persons overlap any instant: this is what bounds the generator's memory.
func (s *spec) personStart(i int) time.Time {
	return s.cfg.Start.Add(time.Duration(i) * s.spacing)
}

// Shares of the person kinds: the rest register.
const (
	anonymousShare    = 0.20 // never identify themselves
	pseudonymousShare = 0.20 // give an email (store, support, newsletter), never register
	householdShare    = 0.04 // of person pairs, in hard mode: share a family tablet
)

// planner plans one person's journey. Its time cursor (at) moves forward as
// the main journey goes; side journeys (store visits, support, devices) are
// placed at random points after sign-up and sorted in later.
type planner struct {
	s   *spec
	i   int
	r   *rand.Rand
	at  time.Duration
	evs []planned

	first, last string
	email       string // canonical
	phone       string // 10 national digits, or ""
	userID      string
	crmID       string
	loyaltyID   string
	cards       []string
	currency    string
	household   *install // the family tablet, shared with the pair's other person
	signup      time.Duration
}

func (s *spec) planPerson(i int) *planner {
	r := newRand(s.cfg.Seed, saltRand, i)
	p := &planner{s: s, i: i, r: r}
	p.first, p.last = pick(r, firstNames), pick(r, lastNames)
	p.email = email(r, p.first, p.last, i)
	switch x := r.Float64(); {
	case x < 0.80:
		p.currency = "USD"
	case x < 0.92:
		p.currency = "EUR"
	default:
		p.currency = "GBP"
	}
	p.household = s.household(i)
	switch x := r.Float64(); {
	case p.household != nil:
		p.registered()
	case x < anonymousShare:
		p.anonymous()
	case x < anonymousShare+pseudonymousShare:
		p.pseudonymous()
	default:
		p.registered()
	}
	if s.cfg.Hard {
		p.junkOnly()
	}
	return p
}

// household returns the tablet person i shares with the other person of its
// pair (2h, 2h+1), or nil. Both persons derive it from the pair's own random
// source, so each can be planned alone.
func (s *spec) household(i int) *install {
	h := i / 2
	if !s.cfg.Hard || 2*h+1 >= s.cfg.Persons {
		return nil
	}
	r := newRand(s.cfg.Seed, saltHousehold, h)
	if r.Float64() >= householdShare {
		return nil
	}
	in := newInstall(r, true)
	return &in
}

// sharedTruth reports the family tablet's identifiers, once per pair.
func (p *planner) sharedTruth() []SharedIdentifier {
	if p.household == nil || p.i%2 != 0 || !p.s.enabled[canon.Mobile] {
		return nil
	}
	persons := []int{p.i, p.i + 1}
	return []SharedIdentifier{
		{Identifier: canon.Identifier{Type: canon.DeviceID, Value: p.household.deviceID}, Persons: persons},
		{Identifier: canon.Identifier{Type: canon.AnonymousID, Value: p.household.anon}, Persons: persons},
	}
}

// Time steps.
func (p *planner) tick(minSec, maxSec int) {
	p.at += time.Duration(minSec+p.r.IntN(maxSec-minSec+1)) * time.Second
}

// gap moves to the next session: hours to days later.
func (p *planner) gap() {
	p.at += 30*time.Minute + time.Duration(p.r.ExpFloat64()*float64(16*time.Hour))
}

// sometime returns a random point between sign-up and the end of the
// journey, for side journeys.
func (p *planner) sometime() time.Duration {
	span := p.s.cfg.Journey * 9 / 10
	if end := p.at - p.signup; end > span {
		span = end
	}
	return p.signup + time.Duration(p.r.Int64N(int64(span)))
}

// anonymous: a visitor who never says who they are, on one device.
func (p *planner) anonymous() {
	if p.r.Float64() < 0.7 {
		b := p.newBrowser()
		p.browse(b, "", 1+p.r.IntN(3))
		return
	}
	in := newInstall(p.r, false)
	p.screens(&in, "", 1+p.r.IntN(2))
}

// pseudonymous: gives an email (newsletter, store, support) but never
// registers.
func (p *planner) pseudonymous() {
	if p.r.Float64() < 0.3 {
		p.phone = phoneDigits(p.s.cfg.Seed, p.i)
	}
	web := p.r.Float64() < 0.7
	if web {
		b := p.newBrowser()
		p.browse(b, "", 1+p.r.IntN(2))
		p.gap()
		p.newsletter(b)
	}
	p.signup = p.at
	store := !web || p.r.Float64() < 0.6
	if store {
		p.store()
	}
	if p.r.Float64() < 0.35 {
		p.support()
	}
}

// registered: the full journey from cookie to loyal customer.
func (p *planner) registered() {
	r := p.r
	p.userID = "usr_" + hex16(derive(p.s.cfg.Seed, saltUser, p.i))
	if r.Float64() < 0.5 {
		p.phone = phoneDigits(p.s.cfg.Seed, p.i)
	}
	home := p.newBrowser()
	p.browse(home, "", 1+r.IntN(3))
	var work *browser
	if r.Float64() < 0.35 { // a second computer, anonymous until login
		work = p.newBrowser()
		p.gap()
		p.browse(work, "", 1+r.IntN(2))
	}
	p.gap()
	p.signUp(home)
	p.signup = p.at
	if work != nil {
		p.gap()
		p.webLogin(work)
		p.browse(work, p.userID, 1)
	}
	if r.Float64() < 0.6 {
		in := newInstall(r, false)
		p.gap()
		p.mobile(&in)
	}
	if p.household != nil {
		p.tablet(p.household)
	}
	for range r.IntN(4) {
		p.gap()
		p.browse(home, p.userID, 1)
		p.webOrder(home)
	}
	end := p.at
	if r.Float64() < 0.55 {
		p.store()
	}
	if p.phone != "" { // after store: it may link the loyalty card
		p.at = p.sometime()
		p.phoneVerified()
	}
	if r.Float64() < 0.3 {
		p.support()
	}
	if r.Float64() < 0.25 {
		p.devices()
	}
	if r.Float64() < 0.05 {
		p.orphanDevice()
	}
	for range r.IntN(3) {
		p.at = p.sometime()
		p.consentUpdated()
	}
	if r.Float64() < 0.3 {
		p.at = p.sometime()
		p.profileUpdated()
	}
	if r.Float64() < 0.05 {
		p.at = p.sometime()
		p.group(home)
	}
	p.at = max(p.at, end)
}

// junkOnly sends, now and then, a message whose every identifier is junk:
// Spine must drop the identifiers and so reject the whole message.
func (p *planner) junkOnly() {
	if p.r.Float64() < 0.02 {
		b := p.newBrowser()
		m, _ := p.webSeg(b, "page", "")
		m.AnonymousID = pick(p.r, junkAnonymous)
		m.Name = "Home"
		p.addAs(DLQ, canon.Web, m, nil, effect{})
	}
	if p.r.Float64() < 0.01 {
		m := &iotMsg{MessageID: uuid4(p.r), DeviceSerial: junkDevice, Event: "telemetry",
			Metrics: map[string]float64{"battery": 0.5}}
		p.addAs(DLQ, canon.IoT, m, nil, effect{})
	}
}

// emailAs is the person's email as some source typed it.
func (p *planner) emailAs() string {
	if p.s.cfg.Hard && p.r.Float64() < 0.5 {
		return emailVariant(p.r, p.email, p.first, p.last)
	}
	return p.email
}

// phoneAs is the person's phone as some source typed it.
func (p *planner) phoneAs() string {
	if p.s.cfg.Hard {
		return phoneVariant(p.r, p.phone)
	}
	return e164(p.phone)
}

// idAs is an id as a cashier or agent typed it: sometimes with spaces.
func (p *planner) idAs(v string) string {
	if p.s.cfg.Hard && p.r.Float64() < 0.05 {
		return " " + v + " "
	}
	return v
}

func id(t canon.IDType, v string) canon.Identifier {
	return canon.Identifier{Type: t, Value: strings.TrimSpace(v)}
}

// add records a message of the person's own.
func (p *planner) add(ch canon.Channel, b body, ids []canon.Identifier, eff effect) {
	p.addAs(p.i, ch, b, ids, eff)
}

// addAs records a message owned by owner. Messages on disabled channels are
// dropped here, after every random draw, so that enabling a channel does
// not reshuffle the rest of the journey.
func (p *planner) addAs(owner int, ch canon.Channel, b body, ids []canon.Identifier, eff effect) {
	if !p.s.enabled[ch] {
		return
	}
	p.evs = append(p.evs, planned{at: p.at, ch: ch, body: b, owner: owner, ids: ids, eff: eff})
}
