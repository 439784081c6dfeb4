package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spinecdp/spine/engine"
	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// Targeted tests of the identity graph through the engine's API, one per
// rule of DESIGN sections 2, 3 and 7. The property test covers the same
// rules at random; these pin down the cases by name.

func id(t canon.IDType, v string) canon.Identifier { return canon.Identifier{Type: t, Value: v} }

func verified(t canon.IDType, v string) canon.Observation {
	return canon.Observation{Identifier: id(t, v), Trust: canon.Verified}
}

// openWith starts an engine with a changed configuration, tailed by a sink
// named "t" so that tests can read the change log.
func openWith(t *testing.T, change func(*engine.Config)) *engine.Engine {
	t.Helper()
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.Store.SyncWrites = false
	cfg.Sinks = []string{"t"}
	if change != nil {
		change(&cfg)
	}
	e, stop := startCfg(t, cfg, quietLog)
	t.Cleanup(stop)
	return e
}

func apply(t *testing.T, e *engine.Engine, events ...canon.Event) {
	t.Helper()
	if err := e.Apply(t.Context(), canon.Batch{Events: events}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func do(t *testing.T, e *engine.Engine, c canon.Command) canon.Result {
	t.Helper()
	c.Actor = "test"
	res, err := e.Do(t.Context(), c)
	if err != nil {
		t.Fatalf("Do(%s): %v", c.Kind, err)
	}
	return res
}

func notFound(t *testing.T, e *engine.Engine, ids ...canon.Identifier) {
	t.Helper()
	for _, i := range ids {
		if p, err := e.Lookup(t.Context(), i); !errors.Is(err, canon.ErrNotFound) {
			t.Errorf("Lookup(%s) = %s, %v; want ErrNotFound", i, p.ID, err)
		}
	}
}

// changes reads the whole change log through sink "t".
func changes(t *testing.T, e *engine.Engine) []canon.Change {
	t.Helper()
	out, err := e.Read(t.Context(), "t", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func logs(cs []canon.Change, typ canon.LogType) []canon.LogRecord {
	var out []canon.LogRecord
	for _, c := range cs {
		if c.Kind == canon.ChangeLog && c.Log.Type == typ {
			out = append(out, *c.Log)
		}
	}
	return out
}

func total(p canon.Profile) int64 {
	var n int64
	for _, v := range p.Computed.EventsByChannel {
		n += v
	}
	return n
}

func graphOf(t *testing.T, e *engine.Engine, pid string) *engine.GraphView {
	t.Helper()
	g, err := e.Graph(t.Context(), pid)
	if err != nil {
		t.Fatalf("Graph(%s): %v", pid, err)
	}
	return g
}

func checkInvariants(t *testing.T, e *engine.Engine) {
	t.Helper()
	if err := e.CheckInvariants(); err != nil {
		t.Errorf("invariants: %v", err)
	}
}

func TestFamilyTabletRecordsConflict(t *testing.T) {
	alice := ev(canon.Mobile, "f1", canon.KindLogin, 1, obs(canon.DeviceID, "tablet"), obs(canon.UserID, "alice"))
	bob := ev(canon.Mobile, "f2", canon.KindLogin, 2, obs(canon.DeviceID, "tablet"), obs(canon.UserID, "bob"))
	tabletFirst := ev(canon.Mobile, "f0", canon.KindScreen, 0, obs(canon.DeviceID, "tablet"))
	for name, order := range map[string][]canon.Event{
		"alice first":  {alice, bob},
		"bob first":    {bob, alice},
		"tablet first": {tabletFirst, bob, alice},
		"one batch":    {alice, tabletFirst, bob},
	} {
		t.Run(name, func(t *testing.T) {
			e := openWith(t, nil)
			if name == "one batch" {
				apply(t, e, order...)
			} else {
				for _, x := range order {
					apply(t, e, x)
				}
			}
			a, b := lookup(t, e, canon.UserID, "alice"), lookup(t, e, canon.UserID, "bob")
			if a.ID == b.ID {
				t.Fatal("two registered customers merged through a shared tablet")
			}
			if n := total(a) + total(b); n != int64(len(order)) {
				t.Errorf("events counted %d, want %d", n, len(order))
			}
			// The refusal is on record in both profiles' graphs, naming
			// the other profile.
			for _, pair := range [][2]canon.Profile{{a, b}, {b, a}} {
				g := graphOf(t, e, pair[0].ID)
				if !slices.ContainsFunc(g.Conflicts, func(r canon.LogRecord) bool {
					return r.Type == canon.LogConflict && slices.Contains(r.Others, pair[1].ID) && r.Reason == "limit:user_id"
				}) {
					t.Errorf("Graph(%s).Conflicts = %+v, want a user_id conflict with %s", pair[0].ID, g.Conflicts, pair[1].ID)
				}
			}
			if got := logs(changes(t, e), canon.LogConflict); len(got) != 1 {
				t.Errorf("identity log has %d conflicts, want 1", len(got))
			}
			if s := e.Stats(); s.Conflicts != 1 || s.Merges != 0 {
				t.Errorf("Stats: conflicts %d, merges %d; want 1, 0", s.Conflicts, s.Merges)
			}
			checkInvariants(t, e)
		})
	}
}

func TestSurvivorRule(t *testing.T) {
	t.Run("higher level wins over older", func(t *testing.T) {
		e := openWith(t, nil)
		apply(t, e, ev(canon.Web, "s1", canon.KindIdentify, 1, obs(canon.Email, "p@x.io")))
		apply(t, e, ev(canon.Mobile, "s2", canon.KindLogin, 2, obs(canon.UserID, "u1"), obs(canon.DeviceID, "d1")))
		older, reg := lookup(t, e, canon.Email, "p@x.io"), lookup(t, e, canon.UserID, "u1")
		// The email is the anchor (it has the higher priority of the two
		// known identifiers), yet the registered profile survives.
		apply(t, e, ev(canon.Web, "s3", canon.KindPage, 3, obs(canon.Email, "p@x.io"), obs(canon.DeviceID, "d1")))
		got := lookup(t, e, canon.Email, "p@x.io")
		if got.ID != reg.ID || !slices.Equal(got.MergedFrom, []string{older.ID}) {
			t.Fatalf("merged profile %s merged_from %v, want %s merged_from [%s]", got.ID, got.MergedFrom, reg.ID, older.ID)
		}
		if got.Level != canon.Registered || total(got) != 3 {
			t.Errorf("level %s, %d events", got.Level, total(got))
		}
		p, err := e.Profile(t.Context(), older.ID)
		if err != nil || p.ID != reg.ID || !slices.Contains(p.MergedFrom, older.ID) {
			t.Errorf("Profile(absorbed) = %s merged_from %v, %v; want %s", p.ID, p.MergedFrom, err, reg.ID)
		}
		merges := logs(changes(t, e), canon.LogMerge)
		if len(merges) != 1 || merges[0].ProfileID != reg.ID || !slices.Equal(merges[0].Others, []string{older.ID}) {
			t.Errorf("merge log = %+v", merges)
		}
		checkInvariants(t, e)
	})
	t.Run("equal level: older wins", func(t *testing.T) {
		e := openWith(t, nil)
		apply(t, e, ev(canon.Web, "s1", canon.KindPage, 1, obs(canon.AnonymousID, "a1")))
		apply(t, e, ev(canon.Mobile, "s2", canon.KindScreen, 2, obs(canon.DeviceID, "d1")))
		older, younger := lookup(t, e, canon.AnonymousID, "a1"), lookup(t, e, canon.DeviceID, "d1")
		// The device has the higher priority, so the younger profile is
		// the anchor; the older one survives all the same.
		apply(t, e, ev(canon.Mobile, "s3", canon.KindScreen, 3, obs(canon.DeviceID, "d1"), obs(canon.AnonymousID, "a1")))
		got := lookup(t, e, canon.DeviceID, "d1")
		if got.ID != older.ID || !slices.Equal(got.MergedFrom, []string{younger.ID}) {
			t.Fatalf("merged profile %s merged_from %v, want %s merged_from [%s]", got.ID, got.MergedFrom, older.ID, younger.ID)
		}
		if p, err := e.Profile(t.Context(), younger.ID); err != nil || p.ID != older.ID {
			t.Errorf("Profile(absorbed) = %s, %v; want %s", p.ID, err, older.ID)
		}
		checkInvariants(t, e)
	})
}

func TestUnlinkSplitsAndRefolds(t *testing.T) {
	e := openWith(t, nil)
	login := ev(canon.Mobile, "l1", canon.KindOrder, 1, obs(canon.UserID, "u1"), obs(canon.DeviceID, "d1"))
	login.Amount = &canon.Money{Currency: "EUR", Micros: 10_000_000}
	web := ev(canon.Web, "l2", canon.KindOrder, 2, obs(canon.UserID, "u1"))
	web.Amount = &canon.Money{Currency: "EUR", Micros: 5_000_000}
	app := ev(canon.Mobile, "l3", canon.KindOrder, 3, obs(canon.DeviceID, "d1"))
	app.Amount = &canon.Money{Currency: "USD", Micros: 7_000_000}
	apply(t, e, login, web, app, ev(canon.Mobile, "l4", canon.KindScreen, 4, obs(canon.DeviceID, "d1")))
	before := lookup(t, e, canon.UserID, "u1")
	if c := before.Computed; total(before) != 4 || c.OrderCount != 3 {
		t.Fatalf("before the split: %+v", c)
	}
	g := graphOf(t, e, before.ID)
	if len(g.Links) != 1 || g.Links[0].Evidence.MessageID != "l1" || g.Links[0].Evidence.Channel != canon.Mobile {
		t.Fatalf("links = %+v, want the login's", g.Links)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.DeviceID, "d1"), B: id(canon.UserID, "u1")}})
	u, d := lookup(t, e, canon.UserID, "u1"), lookup(t, e, canon.DeviceID, "d1")
	if u.ID == d.ID {
		t.Fatal("unlink did not split the profile")
	}
	if u.ID != before.ID {
		t.Errorf("the registered part has id %s, want it to keep %s", u.ID, before.ID)
	}
	// Each side is refolded from its own events; together they make the
	// original.
	if total(u)+total(d) != total(before) || u.Computed.OrderCount+d.Computed.OrderCount != before.Computed.OrderCount {
		t.Errorf("split counters %v + %v, want %v", u.Computed.EventsByChannel, d.Computed.EventsByChannel, before.Computed.EventsByChannel)
	}
	for cur, want := range before.Computed.TotalSpend {
		if got := u.Computed.TotalSpend[cur] + d.Computed.TotalSpend[cur]; got != want {
			t.Errorf("spend %s: %d after the split, want %d", cur, got, want)
		}
	}
	if total(u) != 2 || total(d) != 2 || d.Level != canon.Anonymous {
		t.Errorf("u1 has %d events, d1 %d (level %s); want 2 and 2, anonymous", total(u), total(d), d.Level)
	}
	splits := logs(changes(t, e), canon.LogSplit)
	if len(splits) != 1 || splits[0].ProfileID != u.ID || !slices.Equal(splits[0].Others, []string{d.ID}) {
		t.Errorf("split log = %+v", splits)
	}
	_, err := e.Do(t.Context(), canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.UserID, "u1"), B: id(canon.DeviceID, "d1")}})
	if !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("second unlink = %v, want ErrNotFound", err)
	}
	checkInvariants(t, e)
}

func TestDeviceUnpairedEventSplits(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e,
		ev(canon.IoT, "p1", canon.KindDevicePaired, 1, obs(canon.DeviceID, "thermo"), obs(canon.UserID, "u9")),
		ev(canon.IoT, "p2", canon.KindTelemetry, 2, obs(canon.DeviceID, "thermo")),
		ev(canon.IoT, "p3", canon.KindTelemetry, 3, obs(canon.DeviceID, "thermo")),
	)
	if a, b := lookup(t, e, canon.DeviceID, "thermo"), lookup(t, e, canon.UserID, "u9"); a.ID != b.ID {
		t.Fatal("pairing did not link the device to its owner")
	}
	unpaired := ev(canon.IoT, "p4", canon.KindDeviceUnpaired, 4, obs(canon.UserID, "u9"))
	unpaired.Unlink = &canon.Pair{A: id(canon.DeviceID, "thermo"), B: id(canon.UserID, "u9")}
	apply(t, e, unpaired)
	dev, owner := lookup(t, e, canon.DeviceID, "thermo"), lookup(t, e, canon.UserID, "u9")
	if dev.ID == owner.ID {
		t.Fatal("device_unpaired did not split the device off")
	}
	// The pairing and the unpairing are the owner's; the telemetry is the
	// device's.
	if total(owner) != 2 || total(dev) != 2 {
		t.Errorf("owner has %d events, device %d; want 2 and 2", total(owner), total(dev))
	}
	// The same message again changes nothing.
	apply(t, e, unpaired)
	if o := lookup(t, e, canon.UserID, "u9"); total(o) != 2 {
		t.Errorf("replayed unpairing counted: %d events", total(o))
	}
	checkInvariants(t, e)
}

func TestQuarantineAfterConflicts(t *testing.T) {
	e := openWith(t, nil)
	shared := id(canon.Email, "info@shop.io")
	apply(t, e, ev(canon.POS, "q1", canon.KindOrder, 1, obs(canon.UserID, "u1"), obs(canon.Email, shared.Value)))
	owner := lookup(t, e, canon.UserID, "u1")
	// Three other customers give the shop's address at the till: each
	// link is refused (one user_id per profile), in three profiles.
	for i := 2; i <= 4; i++ {
		apply(t, e, ev(canon.POS, fmt.Sprint("q", i), canon.KindOrder, i, obs(canon.UserID, fmt.Sprint("u", i)), obs(canon.Email, shared.Value)))
	}
	qs, err := e.Quarantined(t.Context(), 10)
	if err != nil || len(qs) != 1 || *qs[0].Identifier != shared || len(qs[0].Others) != 3 {
		t.Fatalf("Quarantined = %+v, %v; want the shared email, refused in 3 profiles", qs, err)
	}
	if q := logs(changes(t, e), canon.LogQuarantine); len(q) != 1 || q[0].ProfileID != owner.ID {
		t.Errorf("quarantine log = %+v", q)
	}
	// Quarantine undoes what the value glued: the email leaves the owner's
	// profile and stands alone, flagged.
	if o := lookup(t, e, canon.UserID, "u1"); slices.ContainsFunc(o.Identifiers, func(pi canon.ProfileIdentifier) bool { return pi.Value == shared.Value }) {
		t.Errorf("owner still holds the quarantined email: %+v", o.Identifiers)
	}
	alone := lookup(t, e, canon.Email, shared.Value)
	g := graphOf(t, e, alone.ID)
	if i := slices.IndexFunc(g.Identifiers, func(gi engine.GraphIdentifier) bool { return gi.Value == shared.Value }); i < 0 || !g.Identifiers[i].Quarantined || len(g.Identifiers) != 1 {
		t.Errorf("graph identifiers %+v: want the email alone and flagged", g.Identifiers)
	}
	if sp := logs(changes(t, e), canon.LogSplit); len(sp) != 1 || sp[0].ProfileID != owner.ID {
		t.Errorf("split log = %+v, want the owner's profile split once", sp)
	}
	// Quarantined, the email neither links nor attaches.
	apply(t, e, ev(canon.Web, "q5", canon.KindIdentify, 5, obs(canon.Email, shared.Value), obs(canon.AnonymousID, "z1")))
	if z := lookup(t, e, canon.AnonymousID, "z1"); z.ID == owner.ID {
		t.Error("a quarantined email linked a cookie to its profile")
	}
	if _, err := e.Do(t.Context(), canon.Command{Kind: canon.CmdLink, Pair: &canon.Pair{A: shared, B: id(canon.AnonymousID, "z1")}}); !errors.Is(err, canon.ErrConflict) {
		t.Errorf("CmdLink of a quarantined value = %v, want ErrConflict", err)
	}
	// An admin releases it: it links again.
	do(t, e, canon.Command{Kind: canon.CmdRelease, Identifier: &shared})
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 0 {
		t.Errorf("Quarantined after release = %+v", qs)
	}
	apply(t, e, ev(canon.Web, "q6", canon.KindIdentify, 6, obs(canon.Email, shared.Value), obs(canon.AnonymousID, "z2")))
	if z := lookup(t, e, canon.AnonymousID, "z2"); z.ID != lookup(t, e, canon.Email, shared.Value).ID {
		t.Error("a released email does not link")
	}
	if _, err := e.Do(t.Context(), canon.Command{Kind: canon.CmdRelease, Identifier: &shared}); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("second release = %v, want ErrNotFound", err)
	}
	checkInvariants(t, e)
}

// A store's own number, typed at the till for customers who give none, is
// the highest-priority identifier of those purchases: it anchors them, and
// it is the loyalty cards of returning customers that cannot merge in. The
// refusals count against the number, not against the customers' cards.
func TestQuarantineJunkAnchor(t *testing.T) {
	e := openWith(t, nil)
	store := id(canon.Phone, "+14155550100")
	till := func(n int) canon.Event {
		return ev(canon.POS, fmt.Sprint("t", n), canon.KindOrder, 100+n, obs(canon.Phone, store.Value), obs(canon.LoyaltyID, fmt.Sprint("L", n)))
	}
	for n := 1; n <= 6; n++ { // each customer's first visit, with their card alone
		apply(t, e, ev(canon.POS, fmt.Sprint("v", n), canon.KindOrder, n, obs(canon.LoyaltyID, fmt.Sprint("L", n))))
	}
	for n := 1; n <= 5; n++ { // three cards merge up to the limit; two are refused
		apply(t, e, till(n))
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 0 {
		t.Fatalf("quarantined after two refusals: %+v", qs)
	}
	apply(t, e, till(6))
	qs, err := e.Quarantined(t.Context(), 10)
	if err != nil || len(qs) != 1 || *qs[0].Identifier != store || len(qs[0].Others) != 3 {
		t.Fatalf("Quarantined = %+v, %v; want the store's number, refused with 3 profiles", qs, err)
	}
	// What the number glued comes apart: every card is a customer of its
	// own, and each keeps its purchases, those at the till included.
	seen := map[string]bool{}
	for n := 1; n <= 6; n++ {
		p := lookup(t, e, canon.LoyaltyID, fmt.Sprint("L", n))
		if seen[p.ID] {
			t.Errorf("card L%d shares profile %s with another card", n, p.ID)
		}
		seen[p.ID] = true
		if want := int64(2); total(p) != want { // the first visit and the one at the till
			t.Errorf("card L%d has %d purchases, want %d", n, total(p), want)
		}
	}
	if p := lookup(t, e, canon.Phone, store.Value); total(p) != 0 {
		t.Errorf("the store's number keeps %d purchases", total(p))
	}
	checkInvariants(t, e)
}

// A junk value with a long history (more events filed under it than one
// transaction moves) gives all of it back: the quarantine moves the first
// events, the writer the rest in transactions of its own, and each lands
// on its person's profile and is recorded again for the sinks.
func TestQuarantineRefilesALongHistory(t *testing.T) {
	for _, eraseJunk := range []bool{false, true} {
		t.Run(fmt.Sprint("erase the number's profile: ", eraseJunk), func(t *testing.T) { refileLongHistory(t, eraseJunk) })
	}
}

func refileLongHistory(t *testing.T, eraseJunk bool) {
	e := openWith(t, nil)
	store := id(canon.Phone, "+14155550100")
	const visits = 2500 // more than two transactions' worth of moves
	for i := 0; i < visits; i += 500 {
		batch := make([]canon.Event, 500)
		for j := range batch {
			n := i + j
			batch[j] = ev(canon.POS, fmt.Sprint("t1-", n), canon.KindOrder, n, obs(canon.Phone, store.Value), obs(canon.LoyaltyID, "L1"))
		}
		if i == 1500 {
			// One the number alone names: no one takes it.
			batch[0] = ev(canon.POS, "t-alone", canon.KindOrder, 0, obs(canon.Phone, store.Value))
		}
		apply(t, e, batch...)
		if i == 1500 {
			// An opt-out through the API, filed with the history under the
			// number, past what the quarantine itself moves.
			p := lookup(t, e, canon.LoyaltyID, "L1")
			do(t, e, canon.Command{Kind: canon.CmdConsent, ProfileID: p.ID, Consent: map[string]bool{"analytics": false}, Time: t0.Add(time.Hour)})
		}
	}
	known := lookup(t, e, canon.LoyaltyID, "L1")
	if total(known) != visits {
		t.Fatalf("card L1's profile has %d purchases before the quarantine, want %d", total(known), visits)
	}
	const own = visits - 1    // the card's: all but the one the number alone names
	for n := 2; n <= 6; n++ { // other customers' first visits, with their card alone
		apply(t, e, ev(canon.POS, fmt.Sprint("v", n), canon.KindOrder, n, obs(canon.LoyaltyID, fmt.Sprint("L", n))))
	}
	for n := 2; n <= 6; n++ { // then at the till: merged up to the limit, refused, junk
		apply(t, e, ev(canon.POS, fmt.Sprint("t", n), canon.KindOrder, n, obs(canon.Phone, store.Value), obs(canon.LoyaltyID, fmt.Sprint("L", n))))
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("Quarantined = %+v, want the store's number", qs)
	}
	if eraseJunk {
		// Erasing the number's profile erases no one's events: those
		// still under it are other people's, on their way to them.
		do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: lookup(t, e, canon.Phone, store.Value).ID})
	}
	deadline := time.Now().Add(10 * time.Second)
	for total(lookup(t, e, canon.LoyaltyID, "L1")) != own && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	l1 := lookup(t, e, canon.LoyaltyID, "L1")
	if n := total(l1); n != own {
		t.Fatalf("card L1 has %d purchases after the quarantine, want all %d of its own", n, own)
	}
	// The number outranks the card, but split off alone it is nobody:
	// the profile id the customer was known by stays with the customer.
	if l1.ID != known.ID {
		t.Errorf("card L1 is profile %s after the split, was %s", l1.ID, known.ID)
	}
	for n := 2; n <= 6; n++ {
		if p := lookup(t, e, canon.LoyaltyID, fmt.Sprint("L", n)); total(p) != 2 {
			t.Errorf("card L%d has %d purchases, want 2", n, total(p))
		}
	}
	// The number keeps the purchase it alone names, unless its profile
	// was erased, which takes that purchase too.
	if p, err := e.Lookup(t.Context(), store); eraseJunk != (err != nil) || err == nil && total(p) != 1 {
		t.Errorf("the store's number: %d purchases, %v; want 1, or not found once erased", total(p), err)
	}
	if c, ok := lookup(t, e, canon.LoyaltyID, "L1").Consent["analytics"]; !ok || c.Value {
		t.Errorf("card L1's analytics consent = %+v (held %v), want the opt-out back", c, ok)
	}
	if err := e.Sync(t.Context()); err != nil { // every commit's records readable
		t.Fatal(err)
	}
	refiled := map[string]bool{}
	for _, c := range changes(t, e) {
		if c.Event != nil && c.Event.Refiled && c.Event.Anchor.Type == canon.LoyaltyID {
			refiled[c.Event.MessageID] = true
		}
	}
	// The visits and the opt-out, all but the visit that made the number
	// junk, filed under its card at once.
	if len(refiled) != own+4+1 {
		t.Errorf("%d events recorded again under a card, want %d", len(refiled), own+4+1)
	}
	checkInvariants(t, e)
}

// A customer who outgrows a limit (an eleventh payment card, and more) is
// refused the new values but is not junk: nothing is quarantined.
func TestQuarantineSparesAFullProfile(t *testing.T) {
	e := openWith(t, nil)
	for n := range 13 {
		apply(t, e, ev(canon.Web, fmt.Sprint("o", n), canon.KindOrder, n, obs(canon.UserID, "u1"), obs(canon.Email, "ann@x.io"), obs(canon.CardFP, fmt.Sprint("fp", n))))
	}
	if qs, err := e.Quarantined(t.Context(), 10); err != nil || len(qs) != 0 {
		t.Fatalf("Quarantined = %+v, %v; want none", qs, err)
	}
	if p := lookup(t, e, canon.UserID, "u1"); total(p) != 13 || p.ID != lookup(t, e, canon.Email, "ann@x.io").ID {
		t.Errorf("the customer's profile has %d events and the email elsewhere; want 13, together", total(p))
	}
}

// A registered customer refused on devices other accounts own is not the
// junk: the shared devices are.
func TestQuarantineSparesTheOverflowingType(t *testing.T) {
	e := openWith(t, nil)
	for i, owner := range []string{"u1", "u3", "u4"} {
		apply(t, e, ev(canon.Mobile, fmt.Sprint("own", i), canon.KindIdentify, i, obs(canon.UserID, owner), obs(canon.DeviceID, fmt.Sprint("d", i))))
	}
	for i := range 3 {
		apply(t, e, ev(canon.Mobile, fmt.Sprint("guest", i), canon.KindIdentify, 10+i, obs(canon.UserID, "u2"), obs(canon.DeviceID, fmt.Sprint("d", i))))
	}
	qs, err := e.Quarantined(t.Context(), 10)
	if err != nil || len(qs) != 0 {
		t.Fatalf("Quarantined = %+v, %v; want none (each device was refused once)", qs, err)
	}
	if s := e.Stats(); s.Conflicts != 3 {
		t.Errorf("conflicts = %d, want 3", s.Conflicts)
	}
}

// Events leave a quarantined value for the event's next identifier, never
// through a candidate sighting into a profile it was only proposed to.
func TestQuarantineRefileSkipsCandidates(t *testing.T) {
	e := openWith(t, func(c *engine.Config) {
		c.Graph.QuarantineNames = 2
		for i, tc := range c.Graph.Types {
			if tc.Type == canon.Email {
				c.Graph.Types[i].ByTrust = map[canon.Trust]graph.Policy{canon.Asserted: graph.Candidate}
			}
		}
	})
	apply(t, e, ev(canon.CIAM, "r1", canon.KindRegistered, 1, verified(canon.UserID, "bob"), verified(canon.Email, "bob@x.io")))
	order := ev(canon.POS, "o1", canon.KindOrder, 2, obs(canon.Email, "bob@x.io"), obs(canon.Phone, "+14155550100"), obs(canon.AnonymousID, "a1"))
	order.Traits = map[string]any{"first_name": "Ann"}
	apply(t, e, order)
	for i, name := range []string{"Bea", "Cid"} { // the number turns up with two more names: junk
		x := ev(canon.Web, fmt.Sprint("w", i), canon.KindIdentify, 3+i, obs(canon.Phone, "+14155550100"), obs(canon.AnonymousID, fmt.Sprint("z", i)))
		x.Traits = map[string]any{"first_name": name}
		apply(t, e, x)
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("Quarantined = %+v, want the number", qs)
	}
	if p := lookup(t, e, canon.UserID, "bob"); total(p) != 1 {
		t.Errorf("Bob's profile has %d events, want only his registration", total(p))
	}
	if p := lookup(t, e, canon.AnonymousID, "a1"); total(p) != 1 {
		t.Errorf("the cookie's profile has %d events, want the order", total(p))
	}
	checkInvariants(t, e)
}

// A consent change made through the API names no identifier; when the value
// it was filed under turns out to be junk, it stays with the person.
func TestQuarantineKeepsAPIConsent(t *testing.T) {
	e := openWith(t, func(c *engine.Config) { c.Graph.QuarantineNames = 2 })
	junk := "family@x.io"
	visit := func(n int, cookie, name string) {
		x := ev(canon.Web, fmt.Sprint("v", n), canon.KindIdentify, n, obs(canon.Email, junk), obs(canon.AnonymousID, cookie))
		x.Traits = map[string]any{"first_name": name}
		apply(t, e, x)
	}
	visit(1, "c0", "Ann")
	p := lookup(t, e, canon.AnonymousID, "c0")
	do(t, e, canon.Command{Kind: canon.CmdConsent, ProfileID: p.ID, Consent: map[string]bool{"analytics": false}, Time: t0.Add(2 * time.Minute)})
	visit(3, "z1", "Bea")
	visit(4, "z2", "Cid") // a third name: the address is junk
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("Quarantined = %+v, want the address", qs)
	}
	c, ok := lookup(t, e, canon.AnonymousID, "c0").Consent["analytics"]
	if !ok || c.Value {
		t.Errorf("the visitor's analytics consent = %+v (held %v), want the opt-out kept", c, ok)
	}
}

func TestQuarantineByNames(t *testing.T) {
	e := openWith(t, nil)
	shared := id(canon.Email, "family@x.io")
	for i := range 11 {
		x := ev(canon.Web, fmt.Sprint("n", i), canon.KindIdentify, i, obs(canon.Email, shared.Value), obs(canon.AnonymousID, fmt.Sprint("c", i)))
		x.Traits = map[string]any{"first_name": fmt.Sprint("Name", i%11)}
		apply(t, e, x)
		qs, err := e.Quarantined(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 10; (len(qs) == 1) != want {
			t.Fatalf("after %d distinct first names, Quarantined = %+v", i+1, qs)
		}
	}
	// The address is nobody's: the visits filed under it went to each
	// visitor's cookie.
	owner := lookup(t, e, canon.Email, shared.Value)
	if total(owner) != 0 {
		t.Errorf("the quarantined address's profile has %d events, want 0", total(owner))
	}
	apply(t, e, ev(canon.Web, "n11", canon.KindIdentify, 11, obs(canon.Email, shared.Value), obs(canon.AnonymousID, "late")))
	if p := lookup(t, e, canon.AnonymousID, "late"); p.ID == owner.ID {
		t.Error("the email links after its quarantine")
	}
	// The quarantine undid what the address glued: each cookie is its own
	// visitor again, with its own visit.
	for i := range 11 {
		if p := lookup(t, e, canon.AnonymousID, fmt.Sprint("c", i)); p.ID == owner.ID || total(p) != 1 {
			t.Errorf("cookie c%d: profile %s with %d events; want its own, with its visit", i, p.ID, total(p))
		}
	}
	// Later merges around it keep the value quarantined.
	apply(t, e, ev(canon.Web, "n12", canon.KindIdentify, 12, obs(canon.AnonymousID, "c0"), obs(canon.UserID, "u1")))
	apply(t, e, ev(canon.Web, "n13", canon.KindIdentify, 13, obs(canon.Email, shared.Value), obs(canon.AnonymousID, "later")))
	if p := lookup(t, e, canon.AnonymousID, "later"); p.ID == lookup(t, e, canon.Email, shared.Value).ID {
		t.Error("the email links again after its profile merged and split")
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Errorf("Quarantined = %+v", qs)
	}
	checkInvariants(t, e)
}

func TestCandidatePolicy(t *testing.T) {
	e := openWith(t, func(c *engine.Config) {
		for i, tc := range c.Graph.Types {
			if tc.Type == canon.Email {
				c.Graph.Types[i].ByTrust = map[canon.Trust]graph.Policy{canon.Asserted: graph.Candidate}
			}
		}
	})
	apply(t, e, ev(canon.CIAM, "c1", canon.KindRegistered, 1, verified(canon.UserID, "u1"), verified(canon.Email, "ann@x.io")))
	apply(t, e, ev(canon.Support, "c2", canon.KindTicketOpened, 2, obs(canon.CRMID, "crm7")))
	reg, legacy := lookup(t, e, canon.UserID, "u1"), lookup(t, e, canon.CRMID, "crm7")
	// The support desk asserts the registered customer's email on the
	// legacy contact: a candidate, not a merge.
	apply(t, e, ev(canon.Support, "c3", canon.KindTicketOpened, 3, obs(canon.CRMID, "crm7"), obs(canon.Email, "ann@x.io")))
	if a, b := lookup(t, e, canon.UserID, "u1"), lookup(t, e, canon.CRMID, "crm7"); a.ID == b.ID {
		t.Fatal("a candidate link merged")
	}
	want := canon.Pair{A: id(canon.CRMID, "crm7"), B: id(canon.Email, "ann@x.io")}
	for _, pid := range []string{reg.ID, legacy.ID} {
		g := graphOf(t, e, pid)
		if len(g.Candidates) != 1 || g.Candidates[0].A != want.A || g.Candidates[0].B != want.B || g.Candidates[0].Evidence.MessageID != "c3" {
			t.Errorf("Graph(%s).Candidates = %+v, want %v", pid, g.Candidates, want)
		}
	}
	if c := logs(changes(t, e), canon.LogCandidate); len(c) != 1 {
		t.Errorf("candidate log = %+v", c)
	}
	// At the till the cashier types the same email for a new loyalty card.
	// The email is the event's highest-priority identifier, but a candidate
	// only proposes: the card does not join the registered profile through
	// it, it starts its own and the pair waits for confirmation.
	apply(t, e, ev(canon.POS, "c4", canon.KindOrder, 4, obs(canon.Email, "ann@x.io"), obs(canon.LoyaltyID, "L9")))
	card := lookup(t, e, canon.LoyaltyID, "L9")
	if card.ID == reg.ID {
		t.Fatal("a candidate email brought a new card into the registered profile unconfirmed")
	}
	if total(card) != 1 || total(lookup(t, e, canon.UserID, "u1")) != 1 {
		t.Errorf("the till's order is on %d (card) and %d (registered) events, want 1 and 1", total(card), total(lookup(t, e, canon.UserID, "u1")))
	}
	if g := graphOf(t, e, card.ID); len(g.Candidates) != 1 || g.Candidates[0].Evidence.MessageID != "c4" {
		t.Errorf("Graph(card).Candidates = %+v, want the card and the email, from c4", g.Candidates)
	}
	// The customer confirms ("yes, that legacy account is mine").
	res := do(t, e, canon.Command{Kind: canon.CmdLink, Pair: &want})
	a, b := lookup(t, e, canon.UserID, "u1"), lookup(t, e, canon.CRMID, "crm7")
	if a.ID != b.ID || a.ID != reg.ID || res.Profile == nil || res.Profile.ID != reg.ID {
		t.Fatalf("after the link: %s and %s, result %+v; want both %s", a.ID, b.ID, res.Profile, reg.ID)
	}
	if g := graphOf(t, e, a.ID); len(g.Candidates) != 1 || g.Candidates[0].A != id(canon.LoyaltyID, "L9") {
		t.Errorf("candidates after the link = %+v, want only the card's", g.Candidates)
	}
	checkInvariants(t, e)
}

func TestErasure(t *testing.T) {
	e := openWith(t, nil)
	person := []canon.Event{
		ev(canon.Web, "e1", canon.KindPage, 1, obs(canon.AnonymousID, "a1")),
		ev(canon.Web, "e2", canon.KindIdentify, 2, obs(canon.AnonymousID, "a1"), obs(canon.UserID, "u1"), obs(canon.Email, "p@x.io")),
		ev(canon.Web, "e3", canon.KindOrder, 3, obs(canon.UserID, "u1")),
		// The person uses the family tablet, which is the other customer's.
		ev(canon.Mobile, "e5", canon.KindLogin, 5, obs(canon.UserID, "u1"), obs(canon.DeviceID, "tablet")),
	}
	other := ev(canon.Mobile, "e4", canon.KindLogin, 4, obs(canon.UserID, "u2"), obs(canon.DeviceID, "tablet"))
	apply(t, e, person[0], person[1], person[2], other, person[3])
	p := lookup(t, e, canon.UserID, "u1")
	r := lookup(t, e, canon.UserID, "u2")
	if p.ID == r.ID || lookup(t, e, canon.DeviceID, "tablet").ID != r.ID {
		t.Fatal("setup: the tablet should be the other customer's")
	}
	res := do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: p.ID})
	rc := res.Receipt
	if rc == nil || !slices.Contains(rc.ProfileIDs, p.ID) || rc.Identifiers != 3 || rc.Events != 4 || rc.Links != 2 || rc.At.IsZero() {
		t.Fatalf("receipt = %+v, want %s with 3 identifiers, 4 events, 2 links", rc, p.ID)
	}
	mine := []canon.Identifier{id(canon.UserID, "u1"), id(canon.Email, "p@x.io"), id(canon.AnonymousID, "a1")}
	notFound(t, e, mine...)
	for _, pid := range p.MergedFrom {
		if _, err := e.Profile(t.Context(), pid); !errors.Is(err, canon.ErrNotFound) {
			t.Errorf("Profile(%s) of the erased person = %v", pid, err)
		}
	}
	if _, err := e.Profile(t.Context(), p.ID); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("Profile(erased) = %v, want ErrNotFound", err)
	}
	var erase, del bool
	for _, c := range changes(t, e) {
		switch {
		case c.Kind == canon.ChangeErase && slices.Contains(c.Erase.ProfileIDs, p.ID) && len(c.Erase.Hashes) == 3:
			erase = true
		case c.Kind == canon.ChangeDelete && c.Delete.ProfileID == p.ID && c.Delete.Reason == "erased":
			del = true
		}
	}
	if !erase || !del {
		t.Errorf("change log: erase record %v, delete record %v; want both", erase, del)
	}
	// The person's old events arrive again, late, with new message ids:
	// nothing comes back, and the other customer is untouched.
	before := lookup(t, e, canon.UserID, "u2")
	for i, x := range person {
		x.MessageID = fmt.Sprint("late", i)
		apply(t, e, x)
	}
	late := ev(canon.Web, "late9", canon.KindPage, 9, obs(canon.AnonymousID, "a1"), obs(canon.DeviceID, "fresh"))
	apply(t, e, late)
	notFound(t, e, append(mine, id(canon.DeviceID, "fresh"))...)
	after := lookup(t, e, canon.UserID, "u2")
	if after.ID != r.ID || total(after) != total(before) || lookup(t, e, canon.DeviceID, "tablet").ID != r.ID {
		t.Errorf("the other customer changed: %s with %d events, was %d", after.ID, total(after), total(before))
	}
	if s := e.Stats(); s.Profiles != 1 {
		t.Errorf("%d profiles left, want 1", s.Profiles)
	}
	if _, err := e.Do(t.Context(), canon.Command{Kind: canon.CmdLink, Pair: &canon.Pair{A: id(canon.UserID, "u2"), B: id(canon.Email, "p@x.io")}}); !errors.Is(err, canon.ErrConflict) {
		t.Errorf("CmdLink of an erased identifier = %v, want ErrConflict", err)
	}
	notFound(t, e, mine...)
	checkInvariants(t, e)
}

func TestErasureSparesQuarantinedValue(t *testing.T) {
	e := openWith(t, nil)
	shared := id(canon.Email, "info@shop.io")
	apply(t, e, ev(canon.POS, "j1", canon.KindOrder, 1, obs(canon.UserID, "u1"), obs(canon.Email, shared.Value)))
	for i := 2; i <= 4; i++ {
		apply(t, e, ev(canon.POS, fmt.Sprint("j", i), canon.KindOrder, i, obs(canon.UserID, fmt.Sprint("u", i)), obs(canon.Email, shared.Value)))
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("setup: Quarantined = %+v", qs)
	}
	// The quarantine took the shop's address out of the first customer's
	// profile; that customer is erased, and the address is not theirs.
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: lookup(t, e, canon.UserID, "u1").ID})
	notFound(t, e, id(canon.UserID, "u1"))
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 || *qs[0].Identifier != shared {
		t.Errorf("after the erasure, Quarantined = %+v; want the shop's address still", qs)
	}
	// Other shoppers give the shop's address with their cards: their
	// events are theirs, not late events of the erased customer, and the
	// address still links nobody.
	apply(t, e, ev(canon.POS, "j5", canon.KindOrder, 5, obs(canon.Email, shared.Value), obs(canon.CardFP, "card5")))
	apply(t, e, ev(canon.POS, "j6", canon.KindOrder, 6, obs(canon.CardFP, "card6")))
	apply(t, e, ev(canon.POS, "j7", canon.KindOrder, 7, obs(canon.Email, shared.Value), obs(canon.CardFP, "card6")))
	p5, err5 := e.Lookup(t.Context(), id(canon.CardFP, "card5"))
	p6, err6 := e.Lookup(t.Context(), id(canon.CardFP, "card6"))
	if err5 != nil || err6 != nil || p5.ID == p6.ID || p5.Computed.OrderCount != 1 || p6.Computed.OrderCount != 2 {
		t.Errorf("shoppers after the erasure: %v %+v, %v %+v", err5, p5.Computed.OrderCount, err6, p6.Computed.OrderCount)
	}
	for _, x := range []canon.Identifier{shared, id(canon.CardFP, "card5")} {
		if erased, _ := e.IsErased(x); erased {
			t.Errorf("%s is remembered as erased", x)
		}
	}
	// Released, the address is a new identifier again.
	do(t, e, canon.Command{Kind: canon.CmdRelease, Identifier: &shared})
	apply(t, e, ev(canon.POS, "j8", canon.KindOrder, 8, obs(canon.Email, shared.Value), obs(canon.CardFP, "card5")))
	if p, c := lookup(t, e, canon.Email, shared.Value), lookup(t, e, canon.CardFP, "card5"); p.ID != c.ID {
		t.Errorf("released address in %s, the card in %s: want them linked", p.ID, c.ID)
	}
	checkInvariants(t, e)
}

func TestConsentSurvivesSplit(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e, ev(canon.Mobile, "k1", canon.KindLogin, 1, obs(canon.UserID, "u1"), obs(canon.DeviceID, "d1")))
	p := lookup(t, e, canon.DeviceID, "d1")
	res := do(t, e, canon.Command{Kind: canon.CmdConsent, ProfileID: p.ID, Consent: map[string]bool{"email_marketing": true, "analytics": false}, Time: t0.Add(10 * time.Minute)})
	if res.Profile == nil || !res.Profile.Consent["email_marketing"].Value {
		t.Fatalf("consent result = %+v", res.Profile)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.UserID, "u1"), B: id(canon.DeviceID, "d1")}})
	u := lookup(t, e, canon.UserID, "u1")
	if u.ID != p.ID {
		t.Fatalf("the registered side has id %s, want %s", u.ID, p.ID)
	}
	if c := u.Consent["email_marketing"]; !c.Value || c.Source != "api" || u.Consent["analytics"].Value {
		t.Errorf("consent after the split = %+v", u.Consent)
	}
	if total(u) != 1 {
		t.Errorf("the consent command was counted as an event: %v", u.Computed.EventsByChannel)
	}
	// A later event does not undo it.
	apply(t, e, ev(canon.Web, "k2", canon.KindPage, 20, obs(canon.UserID, "u1")))
	if c := lookup(t, e, canon.UserID, "u1").Consent["email_marketing"]; !c.Value {
		t.Errorf("consent after a later event = %+v", c)
	}
	checkInvariants(t, e)
}

func TestAccountRollup(t *testing.T) {
	e := openWith(t, nil)
	order := func(msg string, at int, micros int64, ids ...canon.Observation) canon.Event {
		x := ev(canon.Web, msg, canon.KindOrder, at, ids...)
		x.Amount = &canon.Money{Currency: "EUR", Micros: micros}
		x.GroupID = "acme"
		return x
	}
	apply(t, e,
		order("g1", 1, 10_000_000, obs(canon.UserID, "u1")),
		order("g2", 2, 20_000_000, obs(canon.UserID, "u2")),
		order("g3", 3, 30_000_000, obs(canon.UserID, "u2")),
	)
	group := ev(canon.Web, "g4", canon.KindGroup, 4, obs(canon.AnonymousID, "z"))
	group.GroupID, group.GroupTraits = "acme", map[string]any{"name": "Acme"}
	apply(t, e, group)
	a, err := e.Account(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Members) != 3 || a.Rollup.OrderCount != 3 || a.Rollup.TotalSpend["EUR"] != 60_000_000 || a.Traits["name"] != "Acme" {
		t.Fatalf("account = %+v", a)
	}
	// The anonymous member turns out to be u1: one member, counted once.
	apply(t, e, ev(canon.Web, "g5", canon.KindLogin, 5, obs(canon.UserID, "u1"), obs(canon.AnonymousID, "z")))
	a, err = e.Account(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if a.Rollup.Members != 2 || len(a.Members) != 2 || a.Rollup.OrderCount != 3 || a.Rollup.EventsByChannel[canon.Web] != 5 {
		t.Errorf("after the merge: %d members, %d orders, %v events", a.Rollup.Members, a.Rollup.OrderCount, a.Rollup.EventsByChannel)
	}
	if _, err := e.Account(t.Context(), "nobody"); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("Account(unknown) = %v, want ErrNotFound", err)
	}
	checkInvariants(t, e)
}

func TestAccountRollupAfterSplit(t *testing.T) {
	e := openWith(t, nil)
	order := func(msg string, at int, ids ...canon.Observation) canon.Event {
		x := ev(canon.Web, msg, canon.KindOrder, at, ids...)
		x.Amount = &canon.Money{Currency: "EUR", Micros: 1_000_000}
		x.GroupID = "acme"
		return x
	}
	// A shared office laptop links two colleagues' sessions; both order
	// for the account.
	apply(t, e,
		order("h1", 1, obs(canon.Email, "ann@acme.io"), obs(canon.DeviceID, "laptop")),
		order("h2", 2, obs(canon.DeviceID, "laptop")),
		order("h3", 3, obs(canon.Email, "ann@acme.io")),
	)
	if a, err := e.Account(t.Context(), "acme"); err != nil || a.Rollup.OrderCount != 3 || a.Rollup.Members != 1 {
		t.Fatalf("before the split: %+v, %v", a, err)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "ann@acme.io"), B: id(canon.DeviceID, "laptop")}})
	a, err := e.Account(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Both parts ordered for the account: both are members, and no order
	// is lost or counted twice.
	if a.Rollup.OrderCount != 3 || a.Rollup.Members != 2 {
		t.Errorf("after the split: %d members, %d orders; want 2, 3", a.Rollup.Members, a.Rollup.OrderCount)
	}
	checkInvariants(t, e)
}

// lastAccount is the newest account change for id in cs, or nil.
func lastAccount(cs []canon.Change, id string) *canon.Account {
	var out *canon.Account
	for _, c := range cs {
		if c.Kind == canon.ChangeAccount && c.Account.ID == id {
			out = c.Account
		}
	}
	return out
}

// TestAccountMembersAfterSplit: when the part that names an account
// splits off, it becomes the member and the part keeping the profile id
// leaves, in the stored account and in what the sinks get.
func TestAccountMembersAfterSplit(t *testing.T) {
	e := openWith(t, nil)
	order := ev(canon.Web, "h2", canon.KindOrder, 2, obs(canon.DeviceID, "laptop"))
	order.Amount = &canon.Money{Currency: "EUR", Micros: 1_000_000}
	order.GroupID = "acme"
	apply(t, e,
		ev(canon.Web, "h1", canon.KindPage, 1, obs(canon.Email, "ann@acme.io"), obs(canon.DeviceID, "laptop")),
		order,
	)
	ann := lookup(t, e, canon.Email, "ann@acme.io")
	if a := lastAccount(changes(t, e), "acme"); a == nil || !slices.Equal(a.Members, []string{ann.ID}) {
		t.Fatalf("account before the split: %+v, want member %s", a, ann.ID)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "ann@acme.io"), B: id(canon.DeviceID, "laptop")}})
	laptop := lookup(t, e, canon.DeviceID, "laptop")
	if laptop.ID == ann.ID || lookup(t, e, canon.Email, "ann@acme.io").ID != ann.ID {
		t.Fatalf("the split kept %s for the laptop, want a new profile and %s for ann", laptop.ID, ann.ID)
	}
	if a := lastAccount(changes(t, e), "acme"); a == nil || !slices.Equal(a.Members, []string{laptop.ID}) {
		t.Errorf("account after the split: %+v, want only member %s", a, laptop.ID)
	}
	a, err := e.Account(t.Context(), "acme")
	if err != nil || a.Rollup.Members != 1 || a.Rollup.OrderCount != 1 || a.Members[0].ProfileID != laptop.ID {
		t.Errorf("Account after the split = %+v, %v", a, err)
	}
	checkInvariants(t, e)
}

// TestAccountMemberUnderAbsorbedID: a member stored under the id of a
// profile that was absorbed later leaves the account when the survivor,
// split again, no longer names it.
func TestAccountMemberUnderAbsorbedID(t *testing.T) {
	e := openWith(t, nil)
	order := ev(canon.Web, "o1", canon.KindOrder, 1, obs(canon.DeviceID, "laptop"))
	order.Amount = &canon.Money{Currency: "EUR", Micros: 1_000_000}
	order.GroupID = "acme"
	apply(t, e, order, ev(canon.Web, "o2", canon.KindIdentify, 2, obs(canon.Email, "ann@acme.io")))
	old := lookup(t, e, canon.DeviceID, "laptop")
	apply(t, e, ev(canon.Web, "o3", canon.KindPage, 3, obs(canon.Email, "ann@acme.io"), obs(canon.DeviceID, "laptop")))
	ann := lookup(t, e, canon.Email, "ann@acme.io")
	if !slices.Contains(ann.MergedFrom, old.ID) {
		t.Fatalf("setup: ann %s merged_from %v, want the laptop's %s", ann.ID, ann.MergedFrom, old.ID)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "ann@acme.io"), B: id(canon.DeviceID, "laptop")}})
	laptop := lookup(t, e, canon.DeviceID, "laptop")
	if a := lastAccount(changes(t, e), "acme"); a == nil || !slices.Equal(a.Members, []string{laptop.ID}) {
		t.Errorf("account after the split: %+v, want only member %s", a, laptop.ID)
	}
	checkInvariants(t, e)
}

// TestConflictsSurviveSplit: the refused links a profile recorded stay in
// the graph view of its parts after it splits.
func TestConflictsSurviveSplit(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e,
		ev(canon.Mobile, "c1", canon.KindLogin, 1, obs(canon.UserID, "alice"), obs(canon.DeviceID, "tablet")),
		ev(canon.Mobile, "c2", canon.KindLogin, 2, obs(canon.UserID, "bob")),
		ev(canon.Mobile, "c3", canon.KindLogin, 3, obs(canon.DeviceID, "tablet"), obs(canon.UserID, "bob")),
	)
	alice, bob := lookup(t, e, canon.UserID, "alice"), lookup(t, e, canon.UserID, "bob")
	refused := func(pid string) int {
		n := 0
		for _, r := range graphOf(t, e, pid).Conflicts {
			if r.Type == canon.LogConflict && slices.Contains(r.Others, bob.ID) {
				n++
			}
		}
		return n
	}
	if alice.ID == bob.ID || refused(alice.ID) != 1 {
		t.Fatalf("before the split: alice %s, bob %s, %d conflicts with bob", alice.ID, bob.ID, refused(alice.ID))
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.UserID, "alice"), B: id(canon.DeviceID, "tablet")}})
	tablet := lookup(t, e, canon.DeviceID, "tablet")
	if tablet.ID == alice.ID {
		t.Fatal("the unlink did not split the tablet off")
	}
	// The conflict named the tablet, which went to the new part, or bob's
	// identifier, which neither part holds: the tablet's part has it once.
	if n := refused(tablet.ID); n != 1 {
		t.Errorf("the tablet's part has %d conflicts with bob after the split, want 1", n)
	}
	checkInvariants(t, e)
}

// TestEraseLongHistory: erasing a smart device that reported for a week
// (more events than one Badger transaction can delete with this small
// memtable) succeeds at once; the events left over are deleted in the
// writer's next transactions, and none is left in Badger afterwards.
func TestEraseLongHistory(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.Store.SyncWrites = false
	cfg.Store.MemTableBytes = 1 << 20 // a transaction takes a few thousand deletes
	e, stop := startCfg(t, cfg, quietLog)
	defer stop()

	const week = 7 * 24 * 60
	apply(t, e, ev(canon.IoT, "pair", canon.KindDevicePaired, 0, obs(canon.DeviceID, "meter"), obs(canon.UserID, "u1")))
	for from := 1; from <= week; from += 1000 {
		batch := make([]canon.Event, 0, 1000)
		for i := from; i < from+1000 && i <= week; i++ {
			batch = append(batch, ev(canon.IoT, fmt.Sprint("m", i), canon.KindTelemetry, i, obs(canon.DeviceID, "meter")))
		}
		apply(t, e, batch...)
	}
	p := lookup(t, e, canon.DeviceID, "meter")
	res, err := e.Do(t.Context(), canon.Command{Kind: canon.CmdErase, ProfileID: p.ID, Actor: "test"})
	if err != nil {
		t.Fatalf("erase: %v", err)
	}
	if rc := res.Receipt; rc == nil || rc.Events != week+1 || rc.Identifiers != 2 {
		t.Fatalf("receipt = %+v, want 2 identifiers and %d events", res.Receipt, week+1)
	}
	notFound(t, e, id(canon.DeviceID, "meter"), id(canon.UserID, "u1"))
	checkInvariants(t, e)
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().Purging > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("events of %d erased identifiers still being deleted after 10s", e.Stats().Purging)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()

	st, err := store.Open(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(func(r *store.Reader) error {
		for _, i := range []canon.Identifier{id(canon.DeviceID, "meter"), id(canon.UserID, "u1")} {
			n := 0
			if err := r.Events(i.Key(), func(*canon.Event) error { n++; return nil }); err != nil {
				return err
			}
			if n > 0 {
				t.Errorf("%d events of the erased %s are left in Badger", n, i.Type)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A merge undone gives the absorbed person their profile id back: it
// names, reads and erases them, never the customer they were merged into
// (X's profile is absorbed into registered Y's through a shared tablet,
// then the link is removed).
func TestSplitGivesAbsorbedIDBack(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e, ev(canon.Web, "x1", canon.KindIdentify, 1, obs(canon.AnonymousID, "a1"), obs(canon.Email, "xavier@mail.io")))
	px := lookup(t, e, canon.Email, "xavier@mail.io").ID
	apply(t, e, ev(canon.Mobile, "y1", canon.KindLogin, 2, obs(canon.UserID, "u2"), obs(canon.DeviceID, "tablet")))
	py := lookup(t, e, canon.UserID, "u2").ID
	apply(t, e, ev(canon.Mobile, "x2", canon.KindScreen, 3, obs(canon.Email, "xavier@mail.io"), obs(canon.DeviceID, "tablet")))
	if got := lookup(t, e, canon.Email, "xavier@mail.io"); got.ID != py || !slices.Contains(got.MergedFrom, px) {
		t.Fatalf("setup: X is in %s merged from %v, want Y's %s merged from %s", got.ID, got.MergedFrom, py, px)
	}
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "xavier@mail.io"), B: id(canon.DeviceID, "tablet")}})

	x, y := lookup(t, e, canon.Email, "xavier@mail.io"), lookup(t, e, canon.UserID, "u2")
	if x.ID != px || y.ID != py || slices.Contains(y.MergedFrom, px) {
		t.Fatalf("after the split X is %s and Y %s merged from %v; want X %s, Y %s without it", x.ID, y.ID, y.MergedFrom, px, py)
	}
	p, err := e.Profile(t.Context(), px)
	if err != nil || p.ID != px || slices.ContainsFunc(p.Identifiers, func(pi canon.ProfileIdentifier) bool { return pi.Type == canon.UserID }) {
		t.Fatalf("GET %s answers %+v, %v", px, p, err)
	}
	// Erasing X by the id a downstream system stored for X erases X only.
	res := do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: px})
	if res.Receipt == nil || !slices.Equal(res.Receipt.ProfileIDs, []string{px}) {
		t.Fatalf("receipt %+v", res.Receipt)
	}
	if _, err := e.Lookup(t.Context(), id(canon.UserID, "u2")); err != nil {
		t.Fatalf("erasing X's id erased Y: %v", err)
	}
	if _, err := e.Lookup(t.Context(), id(canon.Email, "xavier@mail.io")); !errors.Is(err, canon.ErrNotFound) {
		t.Fatalf("X's email after the erasure: %v", err)
	}
}

// An erasure tells the sinks that each erased identifier maps to no
// profile, so that rows filed under another profile id (X's events while
// X was merged into Y) go too; the shared junk value it keeps quarantined
// is not the person's and is left alone.
func TestErasureRemovesEveryMapping(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e, ev(canon.Web, "x1", canon.KindIdentify, 1, obs(canon.AnonymousID, "a1"), obs(canon.Email, "xavier@mail.io")))
	apply(t, e, ev(canon.Mobile, "y1", canon.KindLogin, 2, obs(canon.UserID, "u2"), obs(canon.DeviceID, "tablet")))
	apply(t, e, ev(canon.Mobile, "x2", canon.KindScreen, 3, obs(canon.Email, "xavier@mail.io"), obs(canon.DeviceID, "tablet")))
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "xavier@mail.io"), B: id(canon.DeviceID, "tablet")}})
	x := lookup(t, e, canon.Email, "xavier@mail.io")
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: x.ID})

	removed := map[canon.Identifier]bool{}
	for _, c := range changes(t, e) {
		if c.Kind == canon.ChangeMapping && c.Mapping.ProfileID == "" {
			removed[c.Mapping.Identifier] = true
		}
	}
	for _, want := range []canon.Identifier{id(canon.Email, "xavier@mail.io"), id(canon.AnonymousID, "a1")} {
		if !removed[want] {
			t.Errorf("no removal of %s; removals %v", want.Type, removed)
		}
	}
	if len(removed) != 2 {
		t.Errorf("removals of %d identifiers, want X's 2", len(removed))
	}
}

// A CIAM erasure erases the user it names, and leaves alone another
// registered customer who holds an identifier the user shared (the family
// email stayed with u1, the first to register it). A request naming no
// user_id or crm_id erases whoever holds its identifiers.
func TestCIAMErasureSparesAnotherRegisteredCustomer(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e, ev(canon.CIAM, "r1", canon.KindRegistered, 1, verified(canon.UserID, "u1"), obs(canon.Email, "home@family.io")))
	apply(t, e, ev(canon.CIAM, "r2", canon.KindRegistered, 2, verified(canon.UserID, "u2"), obs(canon.Email, "home@family.io")))
	p1, p2 := lookup(t, e, canon.UserID, "u1"), lookup(t, e, canon.UserID, "u2")
	if p1.ID == p2.ID || lookup(t, e, canon.Email, "home@family.io").ID != p1.ID {
		t.Fatal("setup: the family email should stay with u1, u2 apart")
	}
	apply(t, e, ev(canon.CIAM, "x1", canon.KindErasure, 3, verified(canon.UserID, "u2"), obs(canon.Email, "home@family.io")))
	if _, err := e.Lookup(t.Context(), id(canon.UserID, "u2")); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("u2 after its own erasure: %v", err)
	}
	if got, err := e.Lookup(t.Context(), id(canon.UserID, "u1")); err != nil || got.ID != p1.ID {
		t.Fatalf("u1 after u2's erasure: %v, %v", got, err)
	}
	if got, err := e.Lookup(t.Context(), id(canon.Email, "home@family.io")); err != nil || got.ID != p1.ID {
		t.Errorf("the family email after u2's erasure: %v, %v", got, err)
	}

	// No registered id named: the holder goes, registered or not.
	apply(t, e, ev(canon.CIAM, "x2", canon.KindErasure, 4, obs(canon.Email, "home@family.io")))
	if _, err := e.Lookup(t.Context(), id(canon.UserID, "u1")); !errors.Is(err, canon.ErrNotFound) {
		t.Errorf("u1 after an erasure naming its email only: %v", err)
	}
}

// An order carrying nothing but a quarantined value (the store's number
// typed at the till) names nobody: it is parked, with no profile, and
// written for analytics without one, so it is not lost; a redelivery
// changes nothing. Once an admin releases the value, the value's profile
// counts it, and exports it.
func TestQuarantinedOnlyEventIsParked(t *testing.T) {
	e := openWith(t, nil)
	store := id(canon.Phone, "+14155550100")
	for n := 1; n <= 6; n++ {
		apply(t, e, ev(canon.POS, fmt.Sprint("v", n), canon.KindOrder, n, obs(canon.LoyaltyID, fmt.Sprint("L", n))))
		apply(t, e, ev(canon.POS, fmt.Sprint("t", n), canon.KindOrder, 100+n, obs(canon.Phone, store.Value), obs(canon.LoyaltyID, fmt.Sprint("L", n))))
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("setup: quarantined %+v", qs)
	}
	before := lookup(t, e, canon.Phone, store.Value)
	parked := ev(canon.POS, "p1", canon.KindOrder, 200, obs(canon.Phone, store.Value))
	parked.GroupID = "acct-shop"
	apply(t, e, parked)
	apply(t, e, parked) // redelivered
	var rows int
	for _, c := range changes(t, e) {
		if c.Kind == canon.ChangeEvent && c.Event.MessageID == "p1" {
			rows++
			if c.Event.ProfileID != "" || c.Event.Anchor != store {
				t.Errorf("parked event record %+v", c.Event)
			}
		}
	}
	if rows != 1 {
		t.Fatalf("%d change records of the parked order, want 1", rows)
	}
	if p := lookup(t, e, canon.Phone, store.Value); total(p) != total(before) {
		t.Fatalf("the quarantined number's profile counts %d purchases, had %d", total(p), total(before))
	}
	if _, err := e.Account(t.Context(), "acct-shop"); err != nil {
		t.Errorf("the account the parked order names: %v", err)
	}

	do(t, e, canon.Command{Kind: canon.CmdRelease, Identifier: &store})
	p := lookup(t, e, canon.Phone, store.Value)
	if total(p) != total(before)+1 {
		t.Fatalf("after the release the number's profile counts %d purchases, want %d", total(p), total(before)+1)
	}
	x, err := e.ExportProfile(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(x.Events, func(ev canon.Event) bool { return ev.MessageID == "p1" }) {
		t.Errorf("the export of %s lacks the released order", p.ID)
	}
	checkInvariants(t, e)
}

// A value quarantined before any profile held it, released with parked
// events, gets a profile of its own that counts them.
func TestReleaseGivesParkedEventsAProfile(t *testing.T) {
	e := openWith(t, nil)
	junk := id(canon.Email, "shared@family.io")
	for i, name := range []string{"ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal", "ida", "jon", "kim", "lou"} {
		x := ev(canon.Web, fmt.Sprint("n", i), canon.KindIdentify, i, obs(canon.AnonymousID, fmt.Sprint("a", i)), obs(canon.Email, junk.Value))
		x.Traits = map[string]any{"first_name": name}
		apply(t, e, x)
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 || *qs[0].Identifier != junk {
		t.Fatalf("setup: quarantined %+v", qs)
	}
	apply(t, e, ev(canon.POS, "p1", canon.KindOrder, 50, obs(canon.Email, junk.Value)))
	do(t, e, canon.Command{Kind: canon.CmdRelease, Identifier: &junk})
	p, err := e.Lookup(t.Context(), junk)
	if err != nil {
		t.Fatalf("the released value: %v", err)
	}
	if total(p) < 1 {
		t.Errorf("its profile counts %d purchases, want the parked order", total(p))
	}
	checkInvariants(t, e)
}

// After a split and the erasure of the part that left, the profile that
// kept the id names no identifier of the erased person as a founder (the
// invariants check it, built with -tags invariants).
func TestSplitThenEraseLeavesNoFounderValue(t *testing.T) {
	e := openWith(t, nil)
	apply(t, e, ev(canon.Web, "1", canon.KindIdentify, 1, obs(canon.Email, "xavier@mail.io"), obs(canon.AnonymousID, "a1")))
	apply(t, e, ev(canon.Web, "2", canon.KindIdentify, 2, obs(canon.UserID, "u1"), obs(canon.AnonymousID, "a1")))
	p := lookup(t, e, canon.UserID, "u1")
	do(t, e, canon.Command{Kind: canon.CmdUnlink, Pair: &canon.Pair{A: id(canon.Email, "xavier@mail.io"), B: id(canon.AnonymousID, "a1")}})
	q := lookup(t, e, canon.Email, "xavier@mail.io")
	if q.ID == p.ID {
		t.Fatal("setup: no split")
	}
	checkInvariants(t, e)
	do(t, e, canon.Command{Kind: canon.CmdErase, ProfileID: q.ID})
	checkInvariants(t, e)
}

// An id absorbed from a profile created for a value later quarantined
// (junk names no one) is not handed to the junk value's lone profile.
func TestAbsorbedIDOfJunkFounder(t *testing.T) {
	e := openWith(t, nil)
	shared := "info@shop.io"
	apply(t, e, ev(canon.Web, "1", canon.KindIdentify, 1, obs(canon.UserID, "u1"), obs(canon.AnonymousID, "a0")))
	apply(t, e, ev(canon.Web, "2", canon.KindIdentify, 2, obs(canon.Email, shared), obs(canon.AnonymousID, "a9")))
	b := lookup(t, e, canon.AnonymousID, "a9").ID
	apply(t, e, ev(canon.Web, "3", canon.KindIdentify, 3, obs(canon.Email, shared), obs(canon.AnonymousID, "a0")))
	for i := 2; i <= 4; i++ {
		apply(t, e, ev(canon.POS, fmt.Sprint("q", i), canon.KindOrder, 10+i, obs(canon.UserID, fmt.Sprint("u", i)), obs(canon.Email, shared)))
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("setup: quarantined %+v", qs)
	}
	junk := lookup(t, e, canon.Email, shared)
	if got, err := e.Profile(t.Context(), b); err != nil || got.ID == junk.ID {
		t.Errorf("GET %s answers the junk value's profile %s (%v)", b, got.ID, err)
	}
	checkInvariants(t, e)
}

// A person kept out of analytics who absorbs, in the same transaction, a
// profile created earlier in it: every identity-map record of the
// transaction naming either profile is withheld.
func TestRestrictedAbsorbsProfileOfSameTransaction(t *testing.T) {
	e := openWith(t, nil)
	c := ev(canon.CIAM, "c1", canon.KindConsentUpdated, 1, obs(canon.UserID, "u1"))
	c.Consent = map[string]bool{"analytics": false}
	apply(t, e, c)
	if err := e.Apply(t.Context(), canon.Batch{Events: []canon.Event{
		ev(canon.Web, "w1", canon.KindPage, 2, obs(canon.AnonymousID, "a5"), obs(canon.Email, "secret@mail.io")),
		ev(canon.Web, "w2", canon.KindIdentify, 3, obs(canon.UserID, "u1"), obs(canon.AnonymousID, "a5")),
	}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ch := range changes(t, e) {
		if ch.Kind == canon.ChangeMapping && ch.Mapping.Identifier.Value == "secret@mail.io" {
			n++
			if !ch.Restricted {
				t.Errorf("mapping of the withheld person's email to %s is not withheld", ch.Mapping.ProfileID)
			}
		}
	}
	if n == 0 {
		t.Fatal("no mapping of the email")
	}
}

// A value released with a parked event counts it; quarantined again, it
// counts it no more.
func TestRequarantineUncountsParkedEvents(t *testing.T) {
	e := openWith(t, nil)
	junk := id(canon.Email, "shared@family.io")
	names := []string{"ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal", "ida", "jon", "kim", "lou"}
	for i, name := range names {
		x := ev(canon.Web, "n"+name, canon.KindIdentify, i, obs(canon.AnonymousID, "a"+name), obs(canon.Email, junk.Value))
		x.Traits = map[string]any{"first_name": name}
		apply(t, e, x)
	}
	apply(t, e, ev(canon.POS, "p1", canon.KindOrder, 50, obs(canon.Email, junk.Value)))
	do(t, e, canon.Command{Kind: canon.CmdRelease, Identifier: &junk})
	if p := lookup(t, e, canon.Email, junk.Value); p.Computed.OrderCount != 1 {
		t.Fatalf("after the release: %d orders", p.Computed.OrderCount)
	}
	for i, name := range names {
		x := ev(canon.Support, "m"+name, canon.KindTicketOpened, 100+i, obs(canon.Email, junk.Value))
		x.Traits = map[string]any{"first_name": name + "x"}
		apply(t, e, x)
	}
	if qs, _ := e.Quarantined(t.Context(), 10); len(qs) != 1 {
		t.Fatalf("setup: not quarantined again: %+v", qs)
	}
	if p := lookup(t, e, canon.Email, junk.Value); p.Computed.OrderCount != 0 {
		t.Errorf("quarantined again, the value's profile counts %d orders", p.Computed.OrderCount)
	}
	checkInvariants(t, e)
}
