package engine_test

import (
	"cmp"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/spinecdp/spine/engine/graph"
	"github.com/spinecdp/spine/schemas/canon"
)

// refModel is the plain reference the graph property test holds the
// engine to: the known identifiers, the links between them as the engine
// adds them (the anchor identifier to each identifier it linked), and
// profiles as the connected components of those links, found by BFS. It
// implements DESIGN sections 2, 3 and 7 directly, without union-find,
// profile ids or storage.
type refModel struct {
	cfg   graph.Config
	prio  map[canon.IDType]int
	limit map[canon.IDType]int
	types map[canon.IDType]graph.TypeConfig

	known map[canon.Identifier]bool
	trust map[canon.Identifier]canon.Trust
	// edges maps each link to the message that made it (channel, NUL,
	// message id), or "" for an explicit link through the API.
	edges  map[idPair]string
	erased map[canon.Identifier]bool // remembered by keyed hash in the engine
	quar   map[canon.Identifier]bool // quarantined
	names  map[canon.Identifier]map[string]bool
	// filed counts the events filed under each identifier, by channel: an
	// event is filed under the highest-priority of its identifiers that
	// ended in the event's profile, and a profile counts what is filed
	// under its identifiers.
	filed    map[canon.Identifier]map[canon.Channel]int64
	evs      map[canon.Identifier][]*canon.Event // the events filed under each identifier
	orders   map[canon.Identifier]int64          // orders filed under each identifier
	groups   map[canon.Identifier]map[string]int // B2B accounts named by events filed there
	accounts map[string]bool                     // accounts ever joined
	// parked are the events whose identifiers were all quarantined, by
	// their highest-priority one: they count for its profile while it is
	// not quarantined.
	parked    map[canon.Identifier][]*canon.Event
	seen      map[string]bool // channel, NUL, message id
	cands     map[idPair]bool
	conflicts uint64
	// refusals counts the refused links of each value since it was last
	// released, refusedNow those of the current step.
	refusals   map[canon.Identifier]int
	refusedNow map[canon.Identifier]bool
	// unlinked is the last event's unlink and the link it removed, if
	// any, for adoptQuarantines.
	unlinked *unlinkedEdge
	// mentioned is every identifier any operation named, for the checks.
	mentioned map[canon.Identifier]bool
}

type unlinkedEdge struct {
	pair idPair
	msg  string
	had  bool
}

// idPair is an unordered pair of identifiers, smaller key first.
type idPair [2]canon.Identifier

func pairOf(a, b canon.Identifier) idPair {
	if a.Key() > b.Key() {
		a, b = b, a
	}
	return idPair{a, b}
}

// errClass is the kind of answer a command gets.
type errClass string

const (
	classOK       errClass = "ok"
	classNotFound errClass = "not found"
	classConflict errClass = "conflict"
)

func newRefModel(c graph.Config) *refModel {
	m := &refModel{
		cfg: c, prio: map[canon.IDType]int{}, limit: map[canon.IDType]int{}, types: map[canon.IDType]graph.TypeConfig{},
		known: map[canon.Identifier]bool{}, trust: map[canon.Identifier]canon.Trust{}, edges: map[idPair]string{},
		erased: map[canon.Identifier]bool{}, quar: map[canon.Identifier]bool{}, names: map[canon.Identifier]map[string]bool{},
		filed: map[canon.Identifier]map[canon.Channel]int64{}, evs: map[canon.Identifier][]*canon.Event{}, seen: map[string]bool{}, cands: map[idPair]bool{},
		orders: map[canon.Identifier]int64{}, groups: map[canon.Identifier]map[string]int{}, accounts: map[string]bool{},
		parked:    map[canon.Identifier][]*canon.Event{},
		mentioned: map[canon.Identifier]bool{}, refusals: map[canon.Identifier]int{}, refusedNow: map[canon.Identifier]bool{},
	}
	for i, t := range c.Types {
		m.prio[t.Type], m.limit[t.Type], m.types[t.Type] = i, t.Limit, t
	}
	return m
}

func (m *refModel) mention(ids ...canon.Identifier) {
	for _, id := range ids {
		m.mentioned[id] = true
	}
}

func (m *refModel) policy(o canon.Observation) graph.Policy {
	tc := m.types[o.Type]
	if p, ok := tc.ByTrust[o.Trust]; ok {
		return p
	}
	return tc.Policy
}

// sortObs orders an event's identifiers by priority, then value, and keeps
// one observation per identifier, the most trusted.
func (m *refModel) sortObs(obs []canon.Observation) []canon.Observation {
	out := slices.Clone(obs)
	slices.SortFunc(out, func(a, b canon.Observation) int {
		return cmp.Or(cmp.Compare(m.prio[a.Type], m.prio[b.Type]), cmp.Compare(a.Value, b.Value), cmp.Compare(b.Trust, a.Trust))
	})
	return slices.CompactFunc(out, func(a, b canon.Observation) bool { return a.Identifier == b.Identifier })
}

func (m *refModel) adjacency() map[canon.Identifier][]canon.Identifier {
	adj := map[canon.Identifier][]canon.Identifier{}
	for p := range m.edges {
		adj[p[0]] = append(adj[p[0]], p[1])
		adj[p[1]] = append(adj[p[1]], p[0])
	}
	return adj
}

// members is the component of a known identifier, by BFS over the links,
// sorted by key.
func (m *refModel) members(id canon.Identifier) []canon.Identifier {
	if !m.known[id] {
		return nil
	}
	adj := m.adjacency()
	seen := map[canon.Identifier]bool{id: true}
	queue := []canon.Identifier{id}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range adj[x] {
			if !seen[y] {
				seen[y] = true
				queue = append(queue, y)
			}
		}
	}
	out := make([]canon.Identifier, 0, len(seen))
	for x := range seen {
		out = append(out, x)
	}
	sortIDs(out)
	return out
}

func sortIDs(ids []canon.Identifier) {
	slices.SortFunc(ids, func(a, b canon.Identifier) int { return cmp.Compare(a.Key(), b.Key()) })
}

func (m *refModel) connected(a, b canon.Identifier) bool {
	return m.known[a] && m.known[b] && slices.Contains(m.members(a), b)
}

// comps lists every profile as its sorted identifiers.
func (m *refModel) comps() [][]canon.Identifier {
	done := map[canon.Identifier]bool{}
	var out [][]canon.Identifier
	for _, id := range m.sortedKnown() {
		if done[id] {
			continue
		}
		ms := m.members(id)
		for _, x := range ms {
			done[x] = true
		}
		out = append(out, ms)
	}
	return out
}

func (m *refModel) sortedKnown() []canon.Identifier {
	var out []canon.Identifier
	for id, ok := range m.known {
		if ok {
			out = append(out, id)
		}
	}
	sortIDs(out)
	return out
}

func (m *refModel) sortedEdges() []idPair {
	var out []idPair
	for p := range m.edges {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b idPair) int {
		return cmp.Or(cmp.Compare(a[0].Key(), b[0].Key()), cmp.Compare(a[1].Key(), b[1].Key()))
	})
	return out
}

func (m *refModel) sortedQuarantined() []canon.Identifier {
	var out []canon.Identifier
	for id, q := range m.quar {
		if q {
			out = append(out, id)
		}
	}
	sortIDs(out)
	return out
}

func count(ms []canon.Identifier, t canon.IDType) int {
	n := 0
	for _, x := range ms {
		if x.Type == t {
			n++
		}
	}
	return n
}

// over returns the types whose limit a union of a and b would exceed.
func (m *refModel) over(a, b []canon.Identifier) []canon.IDType {
	var out []canon.IDType
	for t, lim := range m.limit {
		if count(a, t)+count(b, t) > lim {
			out = append(out, t)
		}
	}
	return out
}

// add makes a new identifier known, alone until linked.
func (m *refModel) add(o canon.Observation) {
	m.known[o.Identifier] = true
	m.trust[o.Identifier] = o.Trust
}

func (m *refModel) noteName(id canon.Identifier, name string) bool {
	if m.quar[id] {
		return false
	}
	if m.names[id] == nil {
		m.names[id] = map[string]bool{}
	}
	m.names[id][name] = true
	if len(m.names[id]) > m.cfg.QuarantineNames {
		m.quar[id] = true
		delete(m.names, id)
		return true
	}
	return false
}

// repair undoes what a newly quarantined value glued together: its links
// go, and the other ends of each message's links are relinked to each
// other, highest priority first. Explicit links are single pairs.
func (m *refModel) repair(id canon.Identifier) {
	groups := map[string][]canon.Identifier{}
	for p, msg := range m.edges {
		if p[0] != id && p[1] != id {
			continue
		}
		delete(m.edges, p)
		if msg == "" {
			continue
		}
		other := p[0]
		if other == id {
			other = p[1]
		}
		groups[msg] = append(groups[msg], other)
	}
	for msg, others := range groups {
		m.sortByPriority(others)
		for _, o := range others[1:] {
			m.edges[pairOf(others[0], o)] = msg
		}
	}
}

func (m *refModel) sortByPriority(ids []canon.Identifier) {
	slices.SortFunc(ids, func(a, b canon.Identifier) int {
		if d := m.prio[a.Type] - m.prio[b.Type]; d != 0 {
			return d
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// applyEvent applies one event by the rule of DESIGN section 3.
func (m *refModel) applyEvent(ev *canon.Event) {
	key := string(ev.Channel) + "\x00" + ev.MessageID
	if m.seen[key] {
		return // a duplicate delivery
	}
	m.seen[key] = true
	ids := make([]canon.Identifier, 0, len(ev.Identifiers))
	for _, o := range ev.Identifiers {
		ids = append(ids, o.Identifier)
	}
	if ev.Kind == canon.KindErasure {
		// The CIAM names its own user: with a user_id or crm_id among the
		// identifiers, another registered customer is spared.
		spare := graph.SpareNone
		if slices.ContainsFunc(ids, func(id canon.Identifier) bool { return id.Type == canon.UserID || id.Type == canon.CRMID }) {
			spare = graph.SpareUnnamed
		}
		m.eraseIDs(ids, spare)
		return
	}
	var obs []canon.Observation
	for _, o := range m.sortObs(ev.Identifiers) {
		if m.quar[o.Identifier] {
			continue // quarantined: neither links nor attaches
		}
		if !m.known[o.Identifier] && m.erased[o.Identifier] {
			// An erased person's late event: dropped, and its other
			// identifiers are erased with it, except another registered
			// customer's.
			m.eraseIDs(ids, graph.SpareRegistered)
			return
		}
		obs = append(obs, o)
	}
	if len(obs) == 0 {
		if len(ev.Identifiers) > 0 {
			q := m.sortObs(ev.Identifiers)[0].Identifier
			m.parked[q] = append(m.parked[q], ev)
			if ev.GroupID != "" {
				m.accounts[ev.GroupID] = true // named: the account exists
			}
		}
		return
	}
	// Step 1: the anchor: the first known identifier that is not a
	// candidate, else the first new one that is not, else the first known
	// candidate.
	notCand := func(o canon.Observation) bool { return m.policy(o) != graph.Candidate }
	anchor := slices.IndexFunc(obs, func(o canon.Observation) bool { return m.known[o.Identifier] && notCand(o) })
	if anchor < 0 {
		anchor = slices.IndexFunc(obs, notCand)
	}
	if anchor < 0 {
		anchor = max(0, slices.IndexFunc(obs, func(o canon.Observation) bool { return m.known[o.Identifier] }))
	}
	if m.known[obs[anchor].Identifier] {
		ms := m.members(obs[anchor].Identifier)
		for i := range anchor {
			if !m.known[obs[i].Identifier] && m.policy(obs[i]) != graph.Attach && count(ms, obs[i].Type) >= m.limit[obs[i].Type] {
				anchor = i
				break
			}
		}
	}
	a := obs[anchor]
	if !m.known[a.Identifier] {
		m.add(a)
	}
	// Step 2: link the others into the anchor's profile.
	changed := false
	for i, o := range obs {
		if i == anchor || m.connected(o.Identifier, a.Identifier) {
			continue
		}
		ms := m.members(a.Identifier)
		if !m.known[o.Identifier] {
			m.add(o)
			if count(ms, o.Type) >= m.limit[o.Type] {
				m.refuse(nil) // o starts its own profile; no one is charged
				continue
			}
			m.edges[pairOf(a.Identifier, o.Identifier)] = key // until the star below replaces it
			changed = true
			continue
		}
		switch m.policy(o) {
		case graph.Attach:
			continue
		case graph.Candidate:
			m.cands[pairOf(a.Identifier, o.Identifier)] = true
			continue
		}
		if over := m.over(ms, m.members(o.Identifier)); len(over) > 0 {
			m.refuse(over, a.Identifier, o.Identifier)
			continue
		}
		m.edges[pairOf(a.Identifier, o.Identifier)] = key // until the star below replaces it
		changed = true
	}
	name, _ := ev.Traits["first_name"].(string)
	var filed *canon.Identifier
	var in []canon.Identifier // the event's identifiers in its profile, by priority
	var junk []canon.Identifier
	for _, o := range obs {
		if m.connected(o.Identifier, a.Identifier) {
			m.trust[o.Identifier] = max(m.trust[o.Identifier], o.Trust)
			if filed == nil {
				filed = &o.Identifier
			}
			in = append(in, o.Identifier)
		}
		if name != "" && (o.Type == canon.Email || o.Type == canon.Phone) {
			if m.noteName(o.Identifier, name) {
				junk = append(junk, o.Identifier)
			}
		}
	}
	// The engine keeps the event's links as a star from its
	// highest-priority identifier in the profile.
	if changed {
		for _, x := range in {
			for _, y := range in {
				if p := pairOf(x, y); x != y && m.edges[p] == key {
					delete(m.edges, p)
				}
			}
		}
		for _, o := range in[1:] {
			m.edges[pairOf(in[0], o)] = key
		}
	}
	for _, id := range junk {
		m.repair(id)
	}
	m.file(*filed, ev, 1)
	for _, id := range junk {
		m.refile(id)
	}
	if ev.Link != nil {
		delete(m.cands, pairOf(ev.Link.A, ev.Link.B))
	}
	if ev.Unlink != nil {
		p := pairOf(ev.Unlink.A, ev.Unlink.B)
		msg, had := m.edges[p]
		m.unlinked = &unlinkedEdge{pair: p, msg: msg, had: had}
		delete(m.edges, p)
	}
}

// file counts (delta 1) or uncounts (-1) an event filed under id.
func (m *refModel) file(id canon.Identifier, ev *canon.Event, delta int) {
	if m.filed[id] == nil {
		m.filed[id] = map[canon.Channel]int64{}
	}
	m.filed[id][ev.Channel] += int64(delta)
	if m.filed[id][ev.Channel] == 0 {
		delete(m.filed[id], ev.Channel)
	}
	if ev.Kind == canon.KindOrder {
		m.orders[id] += int64(delta)
	}
	if ev.GroupID != "" {
		if m.groups[id] == nil {
			m.groups[id] = map[string]int{}
		}
		if m.groups[id][ev.GroupID] += delta; m.groups[id][ev.GroupID] == 0 {
			delete(m.groups[id], ev.GroupID)
		}
		m.accounts[ev.GroupID] = true
	}
	if delta > 0 {
		m.evs[id] = append(m.evs[id], ev)
	} else {
		m.evs[id] = slices.DeleteFunc(m.evs[id], func(e *canon.Event) bool { return e == ev })
	}
}

// refile moves what is filed under a value just quarantined to each
// event's highest-priority other identifier that is held, not quarantined
// and not a candidate sighting, as the engine does.
func (m *refModel) refile(id canon.Identifier) {
	for _, ev := range slices.Clone(m.evs[id]) {
		for _, o := range m.sortObs(ev.Identifiers) {
			if o.Identifier != id && m.policy(o) != graph.Candidate && m.known[o.Identifier] && !m.quar[o.Identifier] {
				m.file(id, ev, -1)
				m.file(o.Identifier, ev, 1)
				break
			}
		}
	}
}

// refuse records a refused link (a conflict) between two values; it
// counts toward quarantining each whose type is not among those over their
// limits.
func (m *refModel) refuse(over []canon.IDType, ids ...canon.Identifier) {
	m.conflicts++
	for _, id := range ids {
		if !m.quar[id] && !slices.Contains(over, id.Type) {
			m.refusals[id]++
			m.refusedNow[id] = true
		}
	}
}

// eraseIDs erases whoever holds ids and remembers the unknown ones as
// erased. With graph.SpareRegistered, profiles with a user_id or crm_id
// are spared; with graph.SpareUnnamed, those of them none of whose
// user_id and crm_id is in ids. Quarantined values are nobody's and are
// skipped.
func (m *refModel) eraseIDs(ids []canon.Identifier, spare graph.Spare) {
	for _, id := range ids {
		if m.quar[id] {
			continue
		}
		if !m.known[id] {
			m.erased[id] = true
			continue
		}
		ms := m.members(id)
		var reg []canon.Identifier
		for _, x := range ms {
			if x.Type == canon.UserID || x.Type == canon.CRMID {
				reg = append(reg, x)
			}
		}
		named := slices.ContainsFunc(reg, func(x canon.Identifier) bool { return slices.Contains(ids, x) })
		if (spare == graph.SpareRegistered && len(reg) > 0) || (spare == graph.SpareUnnamed && len(reg) > 0 && !named) {
			continue
		}
		m.eraseComp(ms)
	}
}

// eraseComp erases a profile: its identifiers, links, pending links and
// events. Its identifiers are remembered as erased, except quarantined
// ones: junk shared by many must not make everyone's later events look
// like the erased person's. They stay quarantined, in no profile.
func (m *refModel) eraseComp(ms []canon.Identifier) {
	for _, id := range ms {
		for p := range m.edges {
			if p[0] == id || p[1] == id {
				delete(m.edges, p)
			}
		}
		for p := range m.cands {
			if p[0] == id || p[1] == id {
				delete(m.cands, p)
			}
		}
		delete(m.filed, id)
		delete(m.evs, id)
		delete(m.orders, id)
		delete(m.groups, id)
		if !m.quar[id] {
			delete(m.parked, id) // its since its release; junk's are nobody's
		}
		delete(m.known, id)
		delete(m.trust, id)
		delete(m.names, id)
		if !m.quar[id] {
			m.erased[id] = true
			delete(m.refusals, id)
		}
	}
}

// link is an explicit link (CmdLink).
func (m *refModel) link(a, b canon.Identifier) errClass {
	if m.quar[a] || m.quar[b] {
		return classConflict
	}
	if (!m.known[a] && m.erased[a]) || (!m.known[b] && m.erased[b]) {
		return classConflict // an erased identifier never comes back
	}
	if !m.known[a] && !m.known[b] {
		return classNotFound
	}
	if !m.known[a] {
		a, b = b, a
	}
	ms := m.members(a)
	switch {
	case !m.known[b]:
		if count(ms, b.Type) >= m.limit[b.Type] {
			return classConflict
		}
		m.add(canon.Observation{Identifier: b, Trust: canon.Verified})
	case slices.Contains(ms, b):
	default:
		if len(m.over(ms, m.members(b))) > 0 {
			return classConflict
		}
	}
	m.edges[pairOf(a, b)] = ""
	delete(m.cands, pairOf(a, b))
	return classOK
}

// unlink removes a link (CmdUnlink); the component splits by itself.
func (m *refModel) unlink(a, b canon.Identifier) errClass {
	p := pairOf(a, b)
	if _, ok := m.edges[p]; !ok {
		return classNotFound
	}
	delete(m.edges, p)
	return classOK
}

func (m *refModel) release(id canon.Identifier) errClass {
	if !m.quar[id] {
		return classNotFound
	}
	if !m.known[id] && len(m.parked[id]) > 0 {
		m.add(canon.Observation{Identifier: id, Trust: canon.Observed}) // a profile for its parked events
	}
	delete(m.quar, id)
	delete(m.names, id)
	delete(m.refusals, id)
	return classOK
}

// events is what a profile made of ms counts, by channel.
func (m *refModel) events(ms []canon.Identifier) map[canon.Channel]int64 {
	out := map[canon.Channel]int64{}
	for _, id := range ms {
		for ch, n := range m.filed[id] {
			out[ch] += n
		}
		for _, ev := range m.counted(id) {
			out[ev.Channel]++
		}
	}
	return out
}

// counted returns the events parked under id that count for its profile:
// all of them, unless it is quarantined.
func (m *refModel) counted(id canon.Identifier) []*canon.Event {
	if m.quar[id] {
		return nil
	}
	return m.parked[id]
}

// quietLog drops the engine's and Badger's logs in the property test.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// account is what an account rolls up: the profiles whose events name it,
// and their orders.
func (m *refModel) account(g string) (members int, orders int64) {
	for _, ms := range m.comps() {
		in := false
		var n int64
		for _, id := range ms {
			in = in || m.groups[id][g] > 0
			n += m.orders[id]
			for _, ev := range m.counted(id) {
				in = in || ev.GroupID == g
				if ev.Kind == canon.KindOrder {
					n++
				}
			}
		}
		if in {
			members++
			orders += n
		}
	}
	return members, orders
}
