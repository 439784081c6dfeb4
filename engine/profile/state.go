package profile

import (
	"maps"
	"slices"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// State is a profile as the engine stores it: the public view plus what the
// fold needs that the view does not show.
type State struct {
	canon.Profile
	Internal
}

// Internal is the part of a profile's state that never leaves the engine.
// It is a struct of its own so the store can encode it apart from the
// profile, whose JSON it reuses for the profile's change record.
type Internal struct {
	// Comp is the internal component id the identity graph files the
	// profile under; it never leaves the engine.
	Comp uint64 `json:"comp"`
	// Created orders profiles by age, for the survivor rule of merges.
	Created uint64 `json:"created"`
	// FirstOrders keeps the three earliest order times, from which the
	// customer and loyal lifecycle steps are dated.
	FirstOrders []time.Time `json:"first_orders,omitempty"`
	// Conflicts are the most recent refused links, for the graph view.
	Conflicts []canon.LogRecord `json:"conflicts,omitempty"`
	// Founder is the key of the identifier the profile's id was created
	// for, and Founders the same for each id it absorbed (none for most
	// profiles, which absorbed none). A split hands each absorbed id back
	// to the part holding that identifier, so an old id goes on naming the
	// person it was made for. Profiles stored before they were kept have
	// none; their absorbed ids stay with the part that keeps the profile
	// id.
	Founder  string            `json:"founder,omitempty"`
	Founders map[string]string `json:"founders,omitempty"`
}

// New returns an empty profile.
func New(id string, comp, created uint64) *State {
	s := &State{Internal: Internal{Comp: comp, Created: created}}
	s.ID = id
	s.Level = canon.Anonymous
	return s
}

// Clone returns a deep copy, so that a cached state is never mutated.
func (s *State) Clone() *State {
	c := *s
	c.Identifiers = slices.Clone(s.Identifiers)
	c.Traits = maps.Clone(s.Traits)
	c.TraitSources = maps.Clone(s.TraitSources)
	c.Consent = maps.Clone(s.Consent)
	c.Groups = slices.Clone(s.Groups)
	c.MergedFrom = slices.Clone(s.MergedFrom)
	c.FirstOrders = slices.Clone(s.FirstOrders)
	c.Founders = maps.Clone(s.Founders)
	c.Conflicts = slices.Clone(s.Conflicts)
	c.Computed.Channels = slices.Clone(s.Computed.Channels)
	c.Computed.EventsByChannel = maps.Clone(s.Computed.EventsByChannel)
	c.Computed.TotalSpend = maps.Clone(s.Computed.TotalSpend)
	c.Computed.ReturnTotal = maps.Clone(s.Computed.ReturnTotal)
	c.Computed.RefundTotal = maps.Clone(s.Computed.RefundTotal)
	c.Computed.Lifecycle = maps.Clone(s.Computed.Lifecycle)
	return &c
}

// Count returns how many identifiers of type t the profile holds.
func (s *State) Count(t canon.IDType) int {
	n := 0
	for _, i := range s.Identifiers {
		if i.Type == t {
			n++
		}
	}
	return n
}

// Has reports whether the profile holds id.
func (s *State) Has(id canon.Identifier) bool {
	return s.index(id) >= 0
}

func (s *State) index(id canon.Identifier) int {
	for k, i := range s.Identifiers {
		if i.Type == id.Type && i.Value == id.Value {
			return k
		}
	}
	return -1
}

// AddIdentifier adds id, or strengthens the one held: the highest trust and
// the earliest first-seen time survive.
func (s *State) AddIdentifier(pi canon.ProfileIdentifier) (changed bool) {
	if k := s.index(pi.Identifier()); k >= 0 {
		cur := &s.Identifiers[k]
		if pi.Trust > cur.Trust {
			cur.Trust, changed = pi.Trust, true
		}
		if pi.FirstSeen.Before(cur.FirstSeen) {
			cur.FirstSeen, changed = pi.FirstSeen, true
		}
		return changed
	}
	s.Identifiers = append(s.Identifiers, pi)
	return true
}

// RemoveIdentifier drops id from the profile.
func (s *State) RemoveIdentifier(id canon.Identifier) {
	if k := s.index(id); k >= 0 {
		s.Identifiers = slices.Delete(s.Identifiers, k, k+1)
	}
}

// AddEvent folds one event into the profile. An event without a channel
// is a command recorded as an event (consent set through the API): it
// changes consent and traits, and counts nowhere.
func (s *State) AddEvent(e *canon.Event) {
	if e.Channel == "" {
		for purpose, v := range e.Consent {
			s.SetConsent(purpose, canon.ConsentState{Value: v, Time: e.Time, Source: SourceAPI})
		}
		return
	}
	c := &s.Computed
	if c.EventsByChannel == nil {
		c.EventsByChannel = map[canon.Channel]int64{}
	}
	c.EventsByChannel[e.Channel]++
	s.seen(e.Time, e.Channel)
	switch e.Kind {
	case canon.KindOrder:
		c.OrderCount++
		addMoney(&c.TotalSpend, e.Amount)
		s.FirstOrders = earliest3(append(s.FirstOrders, e.Time))
	case canon.KindReturn:
		addMoney(&c.ReturnTotal, e.Amount)
	case canon.KindRefund:
		c.RefundCount++
		addMoney(&c.RefundTotal, e.Amount)
	case canon.KindTicketOpened:
		c.TicketsOpened++
	case canon.KindCSAT:
		c.CSATSum += int64(e.CSAT)
		c.CSATCount++
	}
	if e.GroupID != "" {
		s.addGroup(e.GroupID)
	}
	src := Source(e)
	for k, v := range e.Traits {
		s.setTrait(k, v, src)
	}
	for purpose, v := range e.Consent {
		s.SetConsent(purpose, canon.ConsentState{Value: v, Time: e.Time, Source: string(e.Channel)})
	}
}

// seen widens first/last seen; last_channel is the channel of the latest
// event, with ties broken by name so the result is order-independent.
func (s *State) seen(t time.Time, ch canon.Channel) {
	c := &s.Computed
	if c.FirstSeen.IsZero() || t.Before(c.FirstSeen) {
		c.FirstSeen = t
	}
	if c.LastSeen.IsZero() || t.After(c.LastSeen) || (t.Equal(c.LastSeen) && ch > c.LastChannel) {
		c.LastSeen = t
		c.LastChannel = ch
	}
}

func (s *State) addGroup(g string) {
	if i, found := slices.BinarySearch(s.Groups, g); !found {
		s.Groups = slices.Insert(s.Groups, i, g)
	}
}

func addMoney(dst *canon.Amounts, m *canon.Money) {
	if m == nil {
		return
	}
	if *dst == nil {
		*dst = canon.Amounts{}
	}
	(*dst)[m.Currency] += m.Micros
}

func addAmounts(dst *canon.Amounts, src canon.Amounts) {
	for cur, v := range src {
		addMoney(dst, &canon.Money{Currency: cur, Micros: v})
	}
}

func earliest3(ts []time.Time) []time.Time {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	if len(ts) > 3 {
		ts = ts[:3]
	}
	return ts
}

// Absorb merges o into s. s keeps its id, component and age; o's id joins
// merged_from. The result is the same whichever side absorbs the other,
// except for those three fields.
func (s *State) Absorb(o *State) {
	for _, i := range o.Identifiers {
		s.AddIdentifier(i)
	}
	for k, v := range o.Traits {
		s.setTrait(k, v, o.TraitSources[k])
	}
	for p, c := range o.Consent {
		s.SetConsent(p, c)
	}
	for _, g := range o.Groups {
		s.addGroup(g)
	}
	c, oc := &s.Computed, &o.Computed
	if c.EventsByChannel == nil && len(oc.EventsByChannel) > 0 {
		c.EventsByChannel = map[canon.Channel]int64{}
	}
	for ch, n := range oc.EventsByChannel {
		c.EventsByChannel[ch] += n
	}
	if !oc.FirstSeen.IsZero() {
		s.seen(oc.FirstSeen, oc.LastChannel)
		s.seen(oc.LastSeen, oc.LastChannel)
	}
	c.OrderCount += oc.OrderCount
	addAmounts(&c.TotalSpend, oc.TotalSpend)
	addAmounts(&c.ReturnTotal, oc.ReturnTotal)
	c.RefundCount += oc.RefundCount
	addAmounts(&c.RefundTotal, oc.RefundTotal)
	c.TicketsOpened += oc.TicketsOpened
	c.CSATSum += oc.CSATSum
	c.CSATCount += oc.CSATCount
	s.FirstOrders = earliest3(append(s.FirstOrders, o.FirstOrders...))
	for _, c := range o.Conflicts {
		s.AddConflict(c)
	}
	for _, id := range append([]string{o.ID}, o.MergedFrom...) {
		if id != s.ID && !slices.Contains(s.MergedFrom, id) {
			s.MergedFrom = append(s.MergedFrom, id)
		}
	}
	s.addFounder(o.ID, o.Founder)
	for id, f := range o.Founders {
		s.addFounder(id, f)
	}
	slices.Sort(s.MergedFrom)
	s.Version = max(s.Version, o.Version)
}

// addFounder records f as the founder of the absorbed id, unless one is
// known or f is empty.
func (s *State) addFounder(id, f string) {
	if f == "" || id == s.ID {
		return
	}
	if _, ok := s.Founders[id]; ok {
		return
	}
	if s.Founders == nil {
		s.Founders = map[string]string{}
	}
	s.Founders[id] = f
}

// TakeID makes id, one the profile absorbed or its own, the profile's id
// (a merge's survivor rule picks the other side's): the founders follow.
func (s *State) TakeID(id string) {
	if id == s.ID {
		return
	}
	old, oldFounder := s.ID, s.Founder
	s.ID, s.Founder = id, s.Founders[id]
	delete(s.Founders, id)
	s.addFounder(old, oldFounder)
}

// SourceAPI is the consent source of changes made through the API.
const SourceAPI = "api"

// maxConflicts bounds the recent conflicts a profile keeps for its graph
// view; the identity log keeps them all.
const maxConflicts = 20

// AddConflict remembers a refused link, keeping the most recent ones.
func (s *State) AddConflict(r canon.LogRecord) {
	s.Conflicts = append(s.Conflicts, r)
	if len(s.Conflicts) > maxConflicts {
		s.Conflicts = s.Conflicts[len(s.Conflicts)-maxConflicts:]
	}
}
