package profile

import (
	"slices"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Finalize derives the values that depend on the whole state: identity
// level, channels, devices, average CSAT and the lifecycle. prio orders
// identifier types (lower is higher priority); identifiers are sorted by it.
func (s *State) Finalize(prio func(canon.IDType) int) {
	slices.SortFunc(s.Identifiers, func(a, b canon.ProfileIdentifier) int {
		if pa, pb := prio(a.Type), prio(b.Type); pa != pb {
			return pa - pb
		}
		if a.Value < b.Value {
			return -1
		}
		if a.Value > b.Value {
			return 1
		}
		return 0
	})
	c := &s.Computed
	c.Channels = c.Channels[:0]
	for _, ch := range canon.Channels {
		if c.EventsByChannel[ch] > 0 {
			c.Channels = append(c.Channels, ch)
		}
	}
	if c.CSATCount > 0 {
		c.AvgCSAT = float64(c.CSATSum) / float64(c.CSATCount)
	} else {
		c.AvgCSAT = 0
	}
	c.Devices = s.Count(canon.DeviceID)
	s.Level = Level(s.Identifiers)
	s.lifecycle()
}

// Level is the identity level a set of identifiers gives.
func Level(ids []canon.ProfileIdentifier) canon.Level {
	var user, verified, pseudo bool
	for _, i := range ids {
		switch i.Type {
		case canon.UserID:
			user = true
		case canon.Email, canon.Phone:
			pseudo = true
			verified = verified || i.Trust == canon.Verified
		case canon.CRMID, canon.LoyaltyID, canon.CardFP:
			pseudo = true
		}
	}
	switch {
	case user && verified:
		return canon.VerifiedUser
	case user:
		return canon.Registered
	case pseudo:
		return canon.Pseudonymous
	}
	return canon.Anonymous
}

// lifecycle dates each stage. Reaching a stage implies having passed the
// ones before it, at the latest at that moment, so funnels never show a
// customer who was never a lead.
func (s *State) lifecycle() {
	c := &s.Computed
	at := make([]time.Time, len(canon.Stages))
	at[0] = c.FirstSeen
	for _, i := range s.Identifiers {
		switch i.Type {
		case canon.UserID:
			at[2] = minTime(at[2], i.FirstSeen)
		case canon.Email, canon.Phone, canon.CRMID, canon.CardFP:
			at[1] = minTime(at[1], i.FirstSeen)
		case canon.LoyaltyID:
			at[1] = minTime(at[1], i.FirstSeen)
			at[4] = minTime(at[4], i.FirstSeen)
		}
	}
	if len(s.FirstOrders) > 0 {
		at[3] = s.FirstOrders[0]
	}
	if len(s.FirstOrders) >= 3 {
		at[4] = minTime(at[4], s.FirstOrders[2])
	}
	for k := len(at) - 2; k >= 0; k-- {
		if !at[k+1].IsZero() {
			at[k] = minTime(at[k], at[k+1])
		}
	}
	c.Lifecycle = make(map[string]time.Time, len(at))
	c.LifecycleStage = canon.StageVisitor
	for k, t := range at {
		if !t.IsZero() {
			c.Lifecycle[canon.Stages[k]] = t
			c.LifecycleStage = canon.Stages[k]
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
