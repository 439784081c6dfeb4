package profile

import (
	"encoding/json"
	"strings"

	"github.com/spinecdp/spine/schemas/canon"
)

// channelRank is the default trust order of trait sources:
// ciam verified > ciam > support > pos > mobile > web > iot.
var channelRank = map[canon.Channel]int{
	canon.IoT: 1, canon.Web: 2, canon.Mobile: 3, canon.POS: 4, canon.Support: 5, canon.CIAM: 6,
}

// Rank orders trait sources: higher wins.
func Rank(src canon.TraitSource) int {
	r := channelRank[src.Channel] * 2
	if src.Verified {
		r++
	}
	return r
}

// Source is the trait source an event stands for. A CIAM event that carries
// a verified email or phone is the verified source.
func Source(e *canon.Event) canon.TraitSource {
	src := canon.TraitSource{Time: e.Time, Channel: e.Channel}
	if e.Channel == canon.CIAM {
		for _, o := range e.Identifiers {
			if o.Trust == canon.Verified && (o.Type == canon.Email || o.Type == canon.Phone) {
				src.Verified = true
			}
		}
	}
	return src
}

// wins reports whether (v, src) beats (cur, curSrc): higher source rank,
// then later event time, then a stable order of the values themselves so
// that equal claims resolve the same way in any arrival order.
func wins(v any, src canon.TraitSource, cur any, curSrc canon.TraitSource) bool {
	if r, cr := Rank(src), Rank(curSrc); r != cr {
		return r > cr
	}
	if !src.Time.Equal(curSrc.Time) {
		return src.Time.After(curSrc.Time)
	}
	return strings.Compare(stable(v), stable(cur)) > 0
}

func stable(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func (s *State) setTrait(k string, v any, src canon.TraitSource) {
	if cur, ok := s.Traits[k]; ok && !wins(v, src, cur, s.TraitSources[k]) {
		return
	}
	if s.Traits == nil {
		s.Traits = map[string]any{}
		s.TraitSources = map[string]canon.TraitSource{}
	}
	s.Traits[k] = v
	s.TraitSources[k] = src
}

// SetConsent applies one purpose's consent: the later time wins; at equal
// times a withdrawal beats a grant, the safe side for the person.
func (s *State) SetConsent(purpose string, c canon.ConsentState) {
	if cur, ok := s.Consent[purpose]; ok {
		switch {
		case c.Time.Before(cur.Time):
			return
		case c.Time.Equal(cur.Time):
			if c.Value != cur.Value {
				if c.Value {
					return
				}
			} else if c.Source <= cur.Source {
				return
			}
		}
	}
	if s.Consent == nil {
		s.Consent = map[string]canon.ConsentState{}
	}
	s.Consent[purpose] = c
}
