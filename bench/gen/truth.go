package gen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Truth is what Spine should conclude from the whole stream.
type Truth struct {
	// Persons holds one entry per simulated person, in index order.
	Persons []PersonTruth `json:"persons"`
	// Orphans are smart devices never paired to anyone: each should be an
	// anonymous profile of its own. Their messages carry Person == NoPerson.
	Orphans []PersonTruth `json:"orphans"`
	// Shared lists identifiers that more than one person really uses (a
	// family tablet). They are in no person's Identifiers: a correct engine
	// keeps the people apart and records a link conflict.
	Shared []SharedIdentifier `json:"shared"`
	// Junk lists every junk value the generator may emit, raw. None of them
	// may become an identifier of anyone.
	Junk   []canon.Identifier `json:"junk"`
	Totals Totals             `json:"totals"`
}

// PersonTruth is the profile Spine should build for one person. The
// computed values use the JSON names of canon.Computed.
type PersonTruth struct {
	Person int         `json:"person"`
	Level  canon.Level `json:"identity_level"`
	// Identifiers are normalized as Spine normalizes them (email trimmed and
	// lower-cased, phone E.164, ids trimmed), junk and shared values
	// excluded, sorted by type priority then value. Empty when the person
	// sent nothing on the configured channels.
	Identifiers     []canon.Identifier      `json:"identifiers"`
	FirstSeen       time.Time               `json:"first_seen"`
	LastSeen        time.Time               `json:"last_seen"`
	EventsByChannel map[canon.Channel]int64 `json:"events_by_channel"`
	OrderCount      int64                   `json:"order_count"`
	TotalSpend      canon.Amounts           `json:"total_spend"`
	ReturnTotal     canon.Amounts           `json:"return_total"`
	RefundCount     int64                   `json:"refund_count"`
	RefundTotal     canon.Amounts           `json:"refund_total"`
	TicketsOpened   int64                   `json:"tickets_opened"`
	CSATSum         int64                   `json:"csat_sum"`
	CSATCount       int64                   `json:"csat_count"`
	// Consent is the latest value per purpose by event time.
	Consent map[string]bool `json:"consent,omitempty"`
}

// SharedIdentifier is an identifier legitimately used by several persons.
type SharedIdentifier struct {
	canon.Identifier
	Persons []int `json:"persons"`
}

// Totals counts the whole stream.
type Totals struct {
	Persons    int   `json:"persons"`
	Messages   int64 `json:"messages"`   // everything emitted
	Accepted   int64 `json:"accepted"`   // unique events Spine should apply
	Duplicates int64 `json:"duplicates"` // redeliveries of an earlier message
	Malformed  int64 `json:"malformed"`  // invalid JSON or no id: DLQ
	JunkOnly   int64 `json:"junk_only"`  // no usable identifier: DLQ
}

func (t *Totals) add(o Totals) {
	t.Messages += o.Messages
	t.Duplicates += o.Duplicates
	t.Malformed += o.Malformed
	t.JunkOnly += o.JunkOnly
	t.Accepted = t.Messages - t.Duplicates - t.Malformed - t.JunkOnly
}

func newPersonTruth(i int) PersonTruth {
	return PersonTruth{
		Person:          i,
		Identifiers:     []canon.Identifier{},
		EventsByChannel: map[canon.Channel]int64{},
		TotalSpend:      canon.Amounts{},
		ReturnTotal:     canon.Amounts{},
		RefundTotal:     canon.Amounts{},
	}
}

// count records one unique event at event time at.
func (t *PersonTruth) count(ch canon.Channel, at time.Time) {
	t.EventsByChannel[ch]++
	if t.FirstSeen.IsZero() || at.Before(t.FirstSeen) {
		t.FirstSeen = at
	}
	if at.After(t.LastSeen) {
		t.LastSeen = at
	}
}

type consentAt struct {
	at    time.Time
	value bool
}

// accumulator gathers what a person's events add up to.
type accumulator struct {
	ids      map[canon.Identifier]struct{}
	verified bool
	consent  map[string]consentAt
}

func (a *accumulator) add(t *PersonTruth, ev planned, at time.Time) {
	t.count(ev.ch, at)
	if a.ids == nil {
		a.ids = map[canon.Identifier]struct{}{}
	}
	for _, id := range ev.ids {
		a.ids[id] = struct{}{}
	}
	e := ev.eff
	micros := func() int64 {
		v, ok := canon.ParseDecimal(e.amount)
		if !ok {
			panic("gen: bad amount " + e.amount)
		}
		return v
	}
	switch e.kind {
	case effOrder:
		t.OrderCount++
		t.TotalSpend[e.currency] += micros()
	case effReturn:
		t.ReturnTotal[e.currency] += micros()
	case effRefund:
		t.RefundCount++
		t.RefundTotal[e.currency] += micros()
	case effTicket:
		t.TicketsOpened++
	case effCSAT:
		t.CSATSum += int64(e.csat)
		t.CSATCount++
	}
	// Last event time wins; on a tie the later-sent event does.
	for k, v := range e.consent {
		if c, ok := a.consent[k]; !ok || !at.Before(c.at) {
			a.consent[k] = consentAt{at, v}
		}
	}
	a.verified = a.verified || e.verified
}

func (a *accumulator) finish(t *PersonTruth) {
	for id := range a.ids {
		t.Identifiers = append(t.Identifiers, id)
	}
	sortIDs(t.Identifiers)
	t.Level = level(t.Identifiers, a.verified)
	if len(a.consent) > 0 {
		t.Consent = map[string]bool{}
		for k, v := range a.consent {
			t.Consent[k] = v.value
		}
	}
}

func sortIDs(ids []canon.Identifier) {
	slices.SortFunc(ids, func(a, b canon.Identifier) int {
		pa, pb := slices.Index(canon.DefaultIDTypes, a.Type), slices.Index(canon.DefaultIDTypes, b.Type)
		if pa != pb {
			return pa - pb
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// level applies DESIGN section 2's identity levels to a person's identifiers.
func level(ids []canon.Identifier, verified bool) canon.Level {
	l := canon.Anonymous
	for _, id := range ids {
		switch id.Type {
		case canon.UserID:
			if verified {
				return canon.VerifiedUser
			}
			return canon.Registered
		case canon.AnonymousID, canon.DeviceID:
		default:
			l = canon.Pseudonymous
		}
	}
	return l
}

// eachPlan replans every person in order without rendering. It is how the
// truth is computed: a person's plan depends only on the Config and the
// person's index, never on how far the stream has been read.
func (g *Generator) eachPlan(fn func(*plan) error) error {
	for i := range g.spec.cfg.Persons {
		pl := g.spec.finish(g.spec.planPerson(i), false)
		if err := fn(&pl); err != nil {
			return err
		}
	}
	return nil
}

// Truth returns the ground truth of the whole stream. It holds every person
// in memory; use WriteTruth for large runs. It may be called at any time and
// does not disturb Next.
func (g *Generator) Truth() Truth {
	t := Truth{Persons: []PersonTruth{}, Orphans: []PersonTruth{}, Shared: []SharedIdentifier{}, Junk: junkValues()}
	_ = g.eachPlan(func(p *plan) error {
		t.Persons = append(t.Persons, p.truth)
		t.Orphans = append(t.Orphans, p.orphans...)
		t.Shared = append(t.Shared, p.shared...)
		t.Totals.add(p.totals)
		return nil
	})
	t.Totals.Persons = g.spec.cfg.Persons
	return t
}

// Line kinds of the WriteTruth format.
const (
	lineJunk   = "junk"
	linePerson = "person"
	lineOrphan = "orphan"
	lineShared = "shared"
	lineTotals = "totals"
)

// WriteTruth writes the ground truth as JSON lines, one object per line with
// a "kind": "junk" lines first, then "person", "orphan" and "shared" lines
// in person order, and one "totals" line last. It holds one person at a
// time, so it suits any number of persons. ReadTruth reads it back.
func (g *Generator) WriteTruth(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	for _, id := range junkValues() {
		if err := enc.Encode(struct {
			Kind string `json:"kind"`
			canon.Identifier
		}{lineJunk, id}); err != nil {
			return fmt.Errorf("gen: write truth: %w", err)
		}
	}
	var totals Totals
	err := g.eachPlan(func(p *plan) error {
		totals.add(p.totals)
		if err := enc.Encode(personLine{linePerson, &p.truth}); err != nil {
			return err
		}
		for i := range p.orphans {
			if err := enc.Encode(personLine{lineOrphan, &p.orphans[i]}); err != nil {
				return err
			}
		}
		for i := range p.shared {
			if err := enc.Encode(sharedLine{lineShared, &p.shared[i]}); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		totals.Persons = g.spec.cfg.Persons
		err = enc.Encode(totalsLine{lineTotals, &totals})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("gen: write truth: %w", err)
	}
	return nil
}

type personLine struct {
	Kind string `json:"kind"`
	*PersonTruth
}

type sharedLine struct {
	Kind string `json:"kind"`
	*SharedIdentifier
}

type totalsLine struct {
	Kind string `json:"kind"`
	*Totals
}

// ReadTruth reads what WriteTruth wrote.
func ReadTruth(r io.Reader) (Truth, error) {
	t := Truth{Persons: []PersonTruth{}, Orphans: []PersonTruth{}, Shared: []SharedIdentifier{}, Junk: []canon.Identifier{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var head struct {
			Kind string `json:"kind"`
		}
		line := sc.Bytes()
		if err := json.Unmarshal(line, &head); err != nil {
			return Truth{}, fmt.Errorf("gen: read truth: line %d: %w", n, err)
		}
		var err error
		switch head.Kind {
		case lineJunk:
			var id canon.Identifier
			err = json.Unmarshal(line, &id)
			t.Junk = append(t.Junk, id)
		case linePerson, lineOrphan:
			var p PersonTruth
			err = json.Unmarshal(line, &p)
			if head.Kind == linePerson {
				t.Persons = append(t.Persons, p)
			} else {
				t.Orphans = append(t.Orphans, p)
			}
		case lineShared:
			var s SharedIdentifier
			err = json.Unmarshal(line, &s)
			t.Shared = append(t.Shared, s)
		case lineTotals:
			err = json.Unmarshal(line, &t.Totals)
		default:
			err = fmt.Errorf("unknown kind %q", head.Kind)
		}
		if err != nil {
			return Truth{}, fmt.Errorf("gen: read truth: line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Truth{}, fmt.Errorf("gen: read truth: %w", err)
	}
	return t, nil
}
