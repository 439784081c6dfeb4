package graph

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// Graph applies the resolution rule. It holds only configuration; all state
// is in the store transaction it is given. It is not safe for concurrent
// use with the same transaction.
type Graph struct {
	types           []canon.IDType // by priority
	prio            map[canon.IDType]int
	limit           map[canon.IDType]int
	policy          map[canon.IDType]TypeConfig
	quarantineAfter int
	quarantineNames int
	secret          []byte
	hmacs           sync.Pool // of hash.Hash keyed with secret, for Hash
}

// New returns a graph for a validated configuration. secret keys the hash
// kept of erased identifiers.
func New(c Config, secret []byte) (*Graph, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("graph: erasure secret must be at least 16 bytes")
	}
	g := &Graph{
		prio: map[canon.IDType]int{}, limit: map[canon.IDType]int{}, policy: map[canon.IDType]TypeConfig{},
		quarantineAfter: c.QuarantineAfter, quarantineNames: c.QuarantineNames, secret: secret,
	}
	for i, t := range c.Types {
		g.types = append(g.types, t.Type)
		g.prio[t.Type] = i
		g.limit[t.Type] = t.Limit
		g.policy[t.Type] = t
	}
	return g, nil
}

// Priority orders identifier types: lower is higher priority.
func (g *Graph) Priority(t canon.IDType) int { return g.prio[t] }

// Limit is the most values of a type one profile may hold.
func (g *Graph) Limit(t canon.IDType) int { return g.limit[t] }

func (g *Graph) policyOf(o canon.Observation) Policy {
	tc := g.policy[o.Type]
	if p, ok := tc.ByTrust[o.Trust]; ok {
		return p
	}
	return tc.Policy
}

// Resolution is where an event landed.
type Resolution struct {
	Comp   uint64 // the event's profile's component
	Anchor string // idkey the event is filed under
	// Touched lists every component whose profile changed.
	Touched []uint64
	// Suppressed is set when the event carried an erased identifier: it is
	// not applied, and Erased lists profiles erased along with it.
	Suppressed bool
	Erased     []string
	// Quarantined counts identifiers ignored because they are quarantined.
	// When it equals the event's identifiers, Comp is 0 and the event has
	// no profile.
	Quarantined int
}

func (r *Resolution) touch(c uint64) {
	if !slices.Contains(r.Touched, c) {
		r.Touched = append(r.Touched, c)
	}
}

// Sort orders observations by priority, then value, and folds duplicates
// (keeping the highest trust).
func (g *Graph) Sort(obs []canon.Observation) []canon.Observation {
	out := slices.Clone(obs)
	slices.SortFunc(out, func(a, b canon.Observation) int {
		if pa, pb := g.prio[a.Type], g.prio[b.Type]; pa != pb {
			return pa - pb
		}
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return int(b.Trust) - int(a.Trust)
	})
	return slices.CompactFunc(out, func(a, b canon.Observation) bool { return a.Identifier == b.Identifier })
}

// Resolve applies the rule of DESIGN section 3 to one event's identifiers:
// it picks the event's profile, links the other identifiers into it, merges
// profiles where the limits and policies allow, and records refused links
// as conflicts. Identity-log and mapping changes are emitted into tx.
func (g *Graph) Resolve(tx *store.Txn, ev *canon.Event) (*Resolution, error) {
	res := &Resolution{}
	var obs []canon.Observation
	var comps []uint64
	for _, o := range g.Sort(ev.Identifiers) {
		c, q, err := entry(tx, o.Key())
		if err != nil {
			return nil, err
		}
		if q {
			res.Quarantined++
			continue
		}
		if c == 0 && tx.AnyErased() {
			erased, err := tx.Erased(g.Hash(o.Identifier))
			if err != nil {
				return nil, err
			}
			if erased {
				return g.suppress(tx, ev)
			}
		}
		obs, comps = append(obs, o), append(comps, c)
	}
	if len(obs) == 0 {
		return res, nil
	}
	evidence := func(o canon.Observation) *canon.Evidence {
		return &canon.Evidence{Channel: ev.Channel, MessageID: ev.MessageID, Time: ev.Time, Trust: o.Trust}
	}
	// Step 1: the anchor is the profile of the highest-priority known
	// identifier, unless a new identifier of higher priority cannot join it.
	anchor := g.anchor(obs, comps)
	if comps[anchor] != 0 {
		st, err := g.load(tx, comps[anchor])
		if err != nil {
			return nil, err
		}
		for i := range anchor {
			if comps[i] == 0 && g.policyOf(obs[i]) != Attach && st.Count(obs[i].Type) >= g.limit[obs[i].Type] {
				anchor = i
				break
			}
		}
	}
	if comps[anchor] == 0 {
		st := g.create(tx, obs[anchor], ev.Time)
		comps[anchor] = st.Comp
	}
	comp := comps[anchor]
	res.touch(comp)
	anchorObs := obs[anchor]
	changed := false            // joined or merged: the event adds links
	var junk []canon.Identifier // values this event got quarantined
	// Step 2: link every other identifier into the anchor's profile.
	for i, o := range obs {
		if i == anchor {
			continue
		}
		c, _, err := entry(tx, o.Key())
		if err != nil {
			return nil, err
		}
		if c == comp {
			continue
		}
		a, err := g.load(tx, comp)
		if err != nil {
			return nil, err
		}
		if c == 0 {
			if a.Count(o.Type) >= g.limit[o.Type] {
				// The identifier has no home: it gets its own profile, and
				// the refusal is on record. It counts toward no quarantine:
				// a full profile is as often one customer's eleventh card
				// as a shared value's.
				alone := g.create(tx, o, ev.Time)
				res.touch(alone.Comp)
				g.conflict(tx, a, o, alone, o.Type, evidence(o))
				continue
			}
			g.join(tx, a, o, ev.Time)
			changed = true
			continue
		}
		b, err := g.load(tx, c)
		if err != nil {
			return nil, err
		}
		switch g.policyOf(o) {
		case Attach:
			continue
		case Candidate:
			if err := g.propose(tx, anchorObs.Identifier, o, a, b, evidence(o)); err != nil {
				return nil, err
			}
			continue
		}
		if over := g.over(a, b); len(over) > 0 {
			res.touch(c)
			g.conflict(tx, a, o, b, over[0], evidence(o))
			q, err := g.charge(tx, anchorObs, a, o, b, over)
			if err != nil {
				return nil, err
			}
			junk = append(junk, q...)
			continue
		}
		survivor, err := g.merge(tx, a, b, o, evidence(o))
		if err != nil {
			return nil, err
		}
		changed = true
		comp = survivor.Comp
		res.touch(comp)
	}
	res.Comp = comp
	res.Anchor = anchorObs.Key()
	// Identifiers seen again may come with more trust (a verified email) or
	// an earlier time (a late event). The event is filed under its
	// highest-priority identifier in the event's profile: a split keys on it.
	st, err := g.load(tx, comp)
	if err != nil {
		return nil, err
	}
	var in []canon.Observation // the event's identifiers in its profile, by priority
	grew := false              // an identifier gained trust or an earlier first sighting
	name, _ := ev.Traits["first_name"].(string)
	for _, o := range obs {
		c, _, err := entry(tx, o.Key())
		if err != nil {
			return nil, err
		}
		if c == comp {
			if st.AddIdentifier(canon.ProfileIdentifier{Type: o.Type, Value: o.Value, Trust: o.Trust, FirstSeen: ev.Time}) {
				grew = true
			}
			if len(in) == 0 {
				res.Anchor = o.Key()
			}
			in = append(in, o)
		}
		if name != "" && (o.Type == canon.Email || o.Type == canon.Phone) {
			q, err := g.noteName(tx, o.Identifier, name)
			if err != nil {
				return nil, err
			}
			if q {
				junk = append(junk, o.Identifier)
			}
		}
	}
	if grew {
		tx.PutProfile(st) // a known identifier seen again changes nothing to write
	}
	// The links: when the event joined or merged anything, each of its
	// identifiers in the profile is tied to the highest-priority one. In
	// this star, removing any other identifier (an unlink, a quarantine)
	// leaves the rest connected.
	if changed {
		for _, o := range in[1:] {
			if err := tx.PutEdge(in[0].Key(), o.Key(), *evidence(o)); err != nil {
				return nil, err
			}
		}
	}
	// Values quarantined by this event undo what they glued together; the
	// event then belongs to whichever part its anchor ended in.
	for _, id := range junk {
		parts, err := g.repair(tx, id)
		if err != nil {
			return nil, err
		}
		res.Touched = append(res.Touched, parts...)
	}
	if len(junk) > 0 {
		// A quarantined value is nobody's: an event filed under one goes
		// to its highest-priority identifier that is not (and is not a
		// candidate sighting), as the events filed under it before did.
		if slices.ContainsFunc(junk, func(j canon.Identifier) bool { return j.Key() == res.Anchor }) {
			for _, o := range obs {
				if !slices.Contains(junk, o.Identifier) && g.policyOf(o) != Candidate {
					res.Anchor = o.Key()
					break
				}
			}
		}
		if res.Comp, _, err = entry(tx, res.Anchor); err != nil {
			return nil, err
		}
		res.touch(res.Comp)
	}
	res.Touched = slices.DeleteFunc(slices.Compact(res.Touched), func(c uint64) bool {
		st, _ := tx.Profile(c)
		return st == nil
	})
	return res, nil
}

// anchor picks the identifier whose profile an event joins: the
// highest-priority known one. A value whose policy is candidate only
// proposes a link to its profile and waits for confirmation, so it does
// not pick the profile either (the rest of the event would join it
// unconfirmed): the event's other identifiers do, known or new, and the
// candidate is proposed to their profile in step 2. Only an event of
// candidates alone goes to the first known one.
func (g *Graph) anchor(obs []canon.Observation, comps []uint64) int {
	candidate := func(i int) bool { return g.policyOf(obs[i]) == Candidate }
	first := -1 // the first that is not a candidate
	for i, c := range comps {
		if candidate(i) {
			continue
		}
		if c != 0 {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		return first
	}
	return max(0, slices.IndexFunc(comps, func(c uint64) bool { return c != 0 }))
}

func (g *Graph) load(tx *store.Txn, comp uint64) (*profile.State, error) {
	st, err := tx.Profile(comp)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("graph: component %d has no profile", comp)
	}
	return st, nil
}

// create starts a profile holding one identifier.
func (g *Graph) create(tx *store.Txn, o canon.Observation, at time.Time) *profile.State {
	st := profile.New(newProfileID(), tx.NewComp(), tx.NewCreated())
	st.Founder = o.Key()
	tx.SetAlias(st.ID, st.Comp)
	g.join(tx, st, o, at)
	return st
}

// join files a new identifier under a profile.
func (g *Graph) join(tx *store.Txn, st *profile.State, o canon.Observation, at time.Time) {
	st.AddIdentifier(canon.ProfileIdentifier{Type: o.Type, Value: o.Value, Trust: o.Trust, FirstSeen: at})
	tx.SetID(o.Key(), st.Comp)
	tx.PutProfile(st)
	tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: o.Identifier, ProfileID: st.ID}})
}

// over returns the types, by priority, whose limit a merge of two profiles
// would exceed; none when they may merge.
func (g *Graph) over(a, b *profile.State) []canon.IDType {
	var out []canon.IDType
	for _, t := range g.types {
		if a.Count(t)+b.Count(t) > g.limit[t] {
			out = append(out, t)
		}
	}
	return out
}

// merge unites two profiles. The survivor's id is the higher identity
// level's, then the older one's; the record stays in the larger component
// and the smaller side's identifiers are relabelled.
func (g *Graph) merge(tx *store.Txn, a, b *profile.State, via canon.Observation, ev *canon.Evidence) (*profile.State, error) {
	survivor, absorbed := a, b
	if la, lb := profile.Level(a.Identifiers).Rank(), profile.Level(b.Identifiers).Rank(); lb > la || (lb == la && b.Created < a.Created) {
		survivor, absorbed = b, a
	}
	big, small := a, b
	if len(b.Identifiers) > len(a.Identifiers) {
		big, small = b, a
	}
	keepID, keepCreated, goneID := survivor.ID, survivor.Created, absorbed.ID
	for _, pi := range small.Identifiers {
		if err := relabel(tx, pi.Identifier().Key(), big.Comp); err != nil {
			return nil, err
		}
	}
	for _, id := range append([]string{small.ID}, small.MergedFrom...) {
		tx.SetAlias(id, big.Comp)
	}
	big.Absorb(small)
	big.TakeID(keepID)
	big.Created = keepCreated
	big.MergedFrom = slices.DeleteFunc(big.MergedFrom, func(s string) bool { return s == keepID })
	if !slices.Contains(big.MergedFrom, goneID) {
		big.MergedFrom = append(big.MergedFrom, goneID)
		slices.Sort(big.MergedFrom)
	}
	tx.DeleteProfile(small.Comp)
	tx.PutProfile(big)
	// Identifiers whose profile id changed get new identity-map rows.
	for _, pi := range absorbed.Identifiers {
		id := pi.Identifier()
		tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: id, ProfileID: keepID}})
	}
	viaID := via.Identifier
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogMerge, ProfileID: keepID, Others: []string{goneID}, Identifier: &viaID, Reason: "shared identifier", Evidence: ev,
	}})
	tx.Emit(canon.Change{Kind: canon.ChangeDelete, Delete: &canon.Deletion{ProfileID: goneID, Reason: "absorbed", Survivor: keepID}})
	return big, nil
}

// conflict records a refused link of o (in profile b) into the anchor's
// profile a, because the limit of type t would be exceeded.
func (g *Graph) conflict(tx *store.Txn, a *profile.State, o canon.Observation, b *profile.State, t canon.IDType, ev *canon.Evidence) {
	viaID := o.Identifier
	reason := "limit:" + string(t)
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogConflict, ProfileID: a.ID, Others: []string{b.ID}, Identifier: &viaID, Reason: reason, Evidence: ev,
	}})
	a.AddConflict(canon.LogRecord{Type: canon.LogConflict, ProfileID: a.ID, Others: []string{b.ID}, Identifier: &viaID, Reason: reason, Evidence: ev})
	b.AddConflict(canon.LogRecord{Type: canon.LogConflict, ProfileID: b.ID, Others: []string{a.ID}, Identifier: &viaID, Reason: reason, Evidence: ev})
	tx.PutProfile(a)
	tx.PutProfile(b)
}

// charge counts a refused merge of two profiles, a (the anchor's) and b
// (o's), toward quarantining each of the two values whose type is not
// among the types in over: the value that bridges two people (a store's
// number typed for many customers, a device shared by two accounts) is the
// junk one, whichever of the two it is; a value of an overflowing type is
// only the second person's own. It returns the values that became
// quarantined.
func (g *Graph) charge(tx *store.Txn, anchor canon.Observation, a *profile.State, o canon.Observation, b *profile.State, over []canon.IDType) ([]canon.Identifier, error) {
	var junk []canon.Identifier
	for _, side := range [...]struct {
		id    canon.Identifier
		other string
	}{{anchor.Identifier, b.ID}, {o.Identifier, a.ID}} {
		if slices.Contains(over, side.id.Type) {
			continue
		}
		q, err := g.noteConflict(tx, side.id, side.other)
		if err != nil {
			return nil, err
		}
		if q {
			junk = append(junk, side.id)
		}
	}
	return junk, nil
}

func newProfileID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "prf_" + hex.EncodeToString(b[:])
}
