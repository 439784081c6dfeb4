package profile_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/schemas/canon"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func prio(t canon.IDType) int {
	for i, d := range canon.DefaultIDTypes {
		if d == t {
			return i
		}
	}
	return len(canon.DefaultIDTypes)
}

// randomEvents makes events that exercise every fold rule, including ties
// in event time between sources, which order must not decide.
func randomEvents(r *rand.Rand, n int) []canon.Event {
	chans := canon.Channels
	kinds := []canon.Kind{canon.KindPage, canon.KindOrder, canon.KindReturn, canon.KindRefund, canon.KindTicketOpened, canon.KindCSAT, canon.KindIdentify, canon.KindGroup}
	var out []canon.Event
	for i := range n {
		e := canon.Event{
			Channel: chans[r.IntN(len(chans))], MessageID: fmt.Sprint("m", i),
			Kind: kinds[r.IntN(len(kinds))], Time: t0.Add(time.Duration(r.IntN(20)) * time.Minute),
		}
		switch e.Kind {
		case canon.KindOrder, canon.KindReturn, canon.KindRefund:
			e.Amount = &canon.Money{Currency: []string{"EUR", "USD"}[r.IntN(2)], Micros: int64(r.IntN(100000)) * 10}
		case canon.KindCSAT:
			e.CSAT = 1 + r.IntN(5)
		case canon.KindGroup:
			e.GroupID = fmt.Sprint("acct", r.IntN(3))
		case canon.KindIdentify:
			e.Traits = map[string]any{"first_name": fmt.Sprint("N", r.IntN(4)), "city": fmt.Sprint("C", r.IntN(3))}
		}
		if r.IntN(4) == 0 {
			e.Consent = map[string]bool{"email_marketing": r.IntN(2) == 0}
		}
		if e.Channel == canon.CIAM && r.IntN(2) == 0 {
			e.Identifiers = []canon.Observation{{Identifier: canon.Identifier{Type: canon.Email, Value: "a@b.io"}, Trust: canon.Verified}}
		}
		out = append(out, e)
	}
	return out
}

func fold(events []canon.Event) *profile.State {
	st := profile.New("p", 1, 1)
	for i := range events {
		st.AddEvent(&events[i])
	}
	return st
}

func canonical(t *testing.T, st *profile.State) string {
	t.Helper()
	st.Finalize(prio)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFoldIsOrderIndependent(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 7))
		events := randomEvents(r, 60)
		want := canonical(t, fold(events))
		for range 5 {
			perm := append([]canon.Event(nil), events...)
			r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			if got := canonical(t, fold(perm)); got != want {
				t.Fatalf("seed %d: permuted fold differs:\n got %s\nwant %s", seed, got, want)
			}
			// Folding two halves into separate profiles and merging them
			// gives the same state as folding everything into one.
			cut := r.IntN(len(perm))
			a, b := fold(perm[:cut]), fold(perm[cut:])
			b.ID = "q"
			a.Absorb(b)
			a.MergedFrom = nil
			if got := canonical(t, a); got != want {
				t.Fatalf("seed %d: merged halves differ:\n got %s\nwant %s", seed, got, want)
			}
		}
	}
}

func TestSurvivorship(t *testing.T) {
	web := canon.Event{Channel: canon.Web, Kind: canon.KindIdentify, Time: t0.Add(time.Hour), Traits: map[string]any{"first_name": "Bobby"}}
	ciam := canon.Event{Channel: canon.CIAM, Kind: canon.KindProfileUpdated, Time: t0, Traits: map[string]any{"first_name": "Robert"}}
	st := fold([]canon.Event{web, ciam})
	if got := st.Traits["first_name"]; got != "Robert" {
		t.Errorf("first_name = %v, want the CIAM value though the web one is later", got)
	}
	later := canon.Event{Channel: canon.CIAM, Kind: canon.KindProfileUpdated, Time: t0.Add(2 * time.Hour), Traits: map[string]any{"first_name": "Rob"}}
	st.AddEvent(&later)
	if got := st.Traits["first_name"]; got != "Rob" {
		t.Errorf("first_name = %v, want the later CIAM value", got)
	}
}

func TestConsentLastEventTimeWins(t *testing.T) {
	grant := canon.Event{Channel: canon.CIAM, Time: t0.Add(time.Hour), Consent: map[string]bool{"sms": true}}
	withdraw := canon.Event{Channel: canon.Web, Time: t0, Consent: map[string]bool{"sms": false}}
	for _, order := range [][]canon.Event{{grant, withdraw}, {withdraw, grant}} {
		st := fold(order)
		if c := st.Consent["sms"]; !c.Value || c.Source != "ciam" {
			t.Errorf("consent = %+v, want the later grant", c)
		}
	}
	tie := withdraw
	tie.Time = grant.Time
	if c := fold([]canon.Event{grant, tie}).Consent["sms"]; c.Value {
		t.Errorf("at equal times a withdrawal must win, got %+v", c)
	}
}

func TestLifecycle(t *testing.T) {
	st := profile.New("p", 1, 1)
	st.AddIdentifier(canon.ProfileIdentifier{Type: canon.AnonymousID, Value: "a", FirstSeen: t0})
	st.AddIdentifier(canon.ProfileIdentifier{Type: canon.Email, Value: "e@x.io", FirstSeen: t0.Add(time.Hour)})
	for i := range 3 {
		st.AddEvent(&canon.Event{Channel: canon.Web, Kind: canon.KindOrder, Time: t0.Add(time.Duration(2+i) * time.Hour), Amount: &canon.Money{Currency: "EUR", Micros: 1}})
	}
	st.Finalize(prio)
	c := st.Computed
	if c.LifecycleStage != canon.StageLoyal {
		t.Fatalf("stage = %s, want loyal after three orders", c.LifecycleStage)
	}
	// The first event is at +2h, but the email was seen at +1h: a visitor
	// step is never later than the lead step. Registration was skipped (a
	// guest checkout), so it is dated at the next step reached.
	want := map[string]time.Time{
		canon.StageVisitor:    t0.Add(time.Hour),
		canon.StageLead:       t0.Add(time.Hour),
		canon.StageRegistered: t0.Add(2 * time.Hour),
		canon.StageCustomer:   t0.Add(2 * time.Hour),
		canon.StageLoyal:      t0.Add(4 * time.Hour),
	}
	if !reflect.DeepEqual(c.Lifecycle, want) {
		t.Errorf("lifecycle = %v\nwant %v", c.Lifecycle, want)
	}
	if st.Level != canon.Pseudonymous {
		t.Errorf("level = %s, want pseudonymous", st.Level)
	}
}
