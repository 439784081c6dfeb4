package gen

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Ground-truth owners that are not a person.
const (
	// NoPerson marks a message Spine should accept but that belongs to no
	// simulated person it could know about: telemetry of a smart device that
	// was never paired. Each such device is expected to be an anonymous
	// profile of its own (Truth.Orphans).
	NoPerson = -1
	// DLQ marks a message Spine should reject into spine.dlq: malformed
	// (invalid JSON, missing id) or left with no usable identifier once the
	// junk values are dropped.
	DLQ = -2
)

type effKind uint8

const (
	effNone effKind = iota
	effOrder
	effReturn
	effRefund
	effTicket
	effCSAT
)

// effect is what one message does to the person's computed values.
type effect struct {
	kind     effKind
	amount   string // decimal as emitted
	currency string
	csat     int
	consent  map[string]bool
	verified bool // the CIAM verified an email or phone
}

// planned is one message of a journey before timing and rendering.
type planned struct {
	at    time.Duration // offset from the person's start, before scaling
	ch    canon.Channel
	body  body
	owner int                // the person, NoPerson or DLQ
	ids   []canon.Identifier // normalized identifiers that are the owner's
	eff   effect
}

// outMsg is a rendered message with the time it is sent, which orders the
// stream; the event time inside it may be earlier (late events).
type outMsg struct {
	send      time.Time
	malformed bool
	Message
}

// plan is one person's finished journey.
type plan struct {
	msgs    []outMsg
	truth   PersonTruth
	orphans []PersonTruth
	shared  []SharedIdentifier
	totals  Totals
}

// Rates of the hard cases, per message.
const (
	lateRate      = 0.03  // event time a little before the previous sends
	dupRate       = 0.02  // delivered twice
	malformedRate = 0.004 // a corrupt extra copy
	maxLate       = 5 * time.Minute
	maxDupDelay   = 3 * time.Minute
)

// finish turns a planned journey into timed messages and its truth. The
// random draws do not depend on render, so that the truth computed without
// rendering (Truth, WriteTruth) matches the stream.
func (s *spec) finish(p *planner, render bool) plan {
	evs := p.evs
	slices.SortStableFunc(evs, func(a, b planned) int { return cmpDur(a.at, b.at) })
	// Compress journeys that ran long into the configured span, keeping
	// their shape; the margin leaves room for duplicate redeliveries.
	limit := s.cfg.Journey - 2*maxDupDelay
	var scale float64 = 1
	if n := len(evs); n > 0 && evs[n-1].at > limit {
		scale = float64(limit) / float64(evs[n-1].at)
	}
	start := s.personStart(p.i)
	key := []byte(hex16(derive(s.cfg.Seed, saltKey, p.i)))
	out := plan{truth: newPersonTruth(p.i)}
	acc := accumulator{consent: map[string]consentAt{}}
	orphans := map[string]*PersonTruth{}
	var orphanOrder []string
	r := p.r
	for _, ev := range evs {
		off := time.Duration(float64(ev.at) * scale).Truncate(time.Millisecond)
		send := start.Add(off)
		at := send
		if s.cfg.Hard && r.Float64() < lateRate {
			at = send.Add(-time.Duration(30_000+r.IntN(int(maxLate/time.Millisecond)-30_000)) * time.Millisecond)
		}
		ev.body.setTime(stamp(at))
		dup := s.cfg.Hard && r.Float64() < dupRate
		var dupDelay time.Duration
		if dup {
			dupDelay = time.Second + time.Duration(r.IntN(int(maxDupDelay/time.Millisecond)))*time.Millisecond
		}
		bad := s.cfg.Hard && r.Float64() < malformedRate
		truncate := r.IntN(2) == 0
		m := Message{Channel: ev.ch, Topic: s.topics[ev.ch], Key: key, Person: ev.owner, Time: at}
		if ev.owner == NoPerson {
			m.Key = []byte(ev.ids[0].Value)
		}
		if render {
			m.Value = mustJSON(ev.body)
		}
		out.msgs = append(out.msgs, outMsg{send: send, Message: m})
		out.totals.Messages++
		switch ev.owner {
		case DLQ:
			out.totals.JunkOnly++
		case NoPerson:
			id := ev.ids[0]
			o := orphans[id.Value]
			if o == nil {
				t := newPersonTruth(NoPerson)
				t.Identifiers = []canon.Identifier{id}
				t.Level = canon.Anonymous
				o = &t
				orphans[id.Value] = o
				orphanOrder = append(orphanOrder, id.Value)
			}
			o.count(ev.ch, at)
		default:
			acc.add(&out.truth, ev, at)
		}
		if dup {
			d := m
			d.Value = slices.Clone(m.Value)
			d.Duplicate = true
			out.msgs = append(out.msgs, outMsg{send: send.Add(dupDelay), Message: d})
			out.totals.Messages++
			out.totals.Duplicates++
		}
		if bad {
			b := m
			b.Person = DLQ
			if render {
				if truncate {
					b.Value = slices.Clone(m.Value[:len(m.Value)*2/3])
				} else {
					ev.body.dropID()
					b.Value = mustJSON(ev.body)
				}
			}
			out.msgs = append(out.msgs, outMsg{send: send.Add(time.Millisecond), malformed: true, Message: b})
			out.totals.Messages++
			out.totals.Malformed++
		}
	}
	slices.SortStableFunc(out.msgs, func(a, b outMsg) int { return a.send.Compare(b.send) })
	acc.finish(&out.truth)
	for _, v := range orphanOrder {
		out.orphans = append(out.orphans, *orphans[v])
	}
	out.shared = p.sharedTruth()
	return out
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mustJSON renders a body. The bodies are plain structs of strings,
// numbers and maps of them, so encoding cannot fail.
func mustJSON(b body) []byte {
	v, err := json.Marshal(b)
	if err != nil {
		panic("gen: render: " + err.Error())
	}
	return v
}

// normEmail is Spine's email normalization: trimmed, lower-cased.
func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// pick returns one element of xs.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }
