package graph

import (
	"slices"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// Unlink removes the link between a and b, and rebuilds the profile from
// its remaining links: when it no longer holds together it splits, and
// each part is refolded from its own events. It returns the components
// whose profiles changed, and false when there was no such link.
func (g *Graph) Unlink(tx *store.Txn, a, b canon.Identifier, ev *canon.Evidence) ([]uint64, bool, error) {
	ka, kb := a.Key(), b.Key()
	if _, ok, err := tx.Reader().Link(ka, kb); err != nil || !ok {
		return nil, false, err
	}
	if err := tx.DeleteEdge(ka, kb); err != nil {
		return nil, false, err
	}
	comp, _, err := entry(tx, ka) // a quarantined identifier may still lose a link
	if err != nil {
		return nil, false, err
	}
	st, err := g.load(tx, comp)
	if err != nil {
		return nil, false, err
	}
	tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
		Type: canon.LogUnlink, ProfileID: st.ID, Identifier: &b, Reason: "link removed", Evidence: ev,
	}})
	touched, err := g.Rebuild(tx, comp, &a, ev)
	return touched, true, err
}

// Rebuild splits a profile into the connected parts of its stored links.
// The part with the highest identity level (then the highest-priority
// identifier) keeps the profile id. An id the profile absorbed goes back
// to the part holding the identifier it was created for (Founders): a
// part without the profile id takes such an id back as its own, so a
// merge undone gives the absorbed person their id again, and that id
// never names, reads or erases the other person. The other parts become
// new profiles. Each part is refolded from the events filed under its
// identifiers.
func (g *Graph) Rebuild(tx *store.Txn, comp uint64, via *canon.Identifier, ev *canon.Evidence) ([]uint64, error) {
	return g.rebuild(tx, comp, via, ev, false)
}

// rebuild is Rebuild; with refold, a profile that does not split is
// refolded from its events all the same (some of them were filed away).
func (g *Graph) rebuild(tx *store.Txn, comp uint64, via *canon.Identifier, ev *canon.Evidence, refold bool) ([]uint64, error) {
	st, err := g.load(tx, comp)
	if err != nil {
		return nil, err
	}
	parts, err := g.parts(tx, st)
	if err != nil {
		return nil, err
	}
	if len(parts) == 1 && !refold {
		return []uint64{comp}, nil
	}
	// The part that keeps the profile id: the best, among those holding
	// anything but quarantined values. A junk value split off alone is
	// nobody: the id its people were known by must not stay with it.
	keep, err := g.keeper(tx, parts)
	if err != nil {
		return nil, err
	}
	var out []uint64
	var others []string
	conflicts := splitConflicts(st.Conflicts, parts)
	absorbed, err := absorbedByPart(tx, st, parts, keep)
	if err != nil {
		return nil, err
	}
	r := tx.Scan() // the parts' events, one iterator for them all
	defer r.Close()
	for i, p := range parts {
		var ns *profile.State
		if i == keep {
			ns = profile.New(st.ID, comp, st.Created)
			ns.MergedFrom = absorbed[i]
			ns.Founder, ns.Founders = founders(st, p, st.Founder, absorbed[i])
		} else {
			id, merged := newProfileID(), absorbed[i]
			founder := canon.Identifier{Type: p[0].Type, Value: p[0].Value}.Key()
			if len(merged) > 0 {
				id, founder, merged = merged[0], st.Founders[merged[0]], slices.Sorted(slices.Values(merged[1:]))
			}
			ns = profile.New(id, tx.NewComp(), tx.NewCreated())
			ns.MergedFrom = merged
			ns.Founder, ns.Founders = founders(st, p, founder, merged)
			for _, a := range append([]string{id}, merged...) {
				tx.SetAlias(a, ns.Comp)
			}
			others = append(others, ns.ID)
		}
		for _, pi := range p {
			ns.AddIdentifier(pi)
			id := pi.Identifier()
			if i != keep {
				if err := relabel(tx, id.Key(), ns.Comp); err != nil {
					return nil, err
				}
				tx.Emit(canon.Change{Kind: canon.ChangeMapping, Mapping: &canon.Mapping{Identifier: id, ProfileID: ns.ID}})
			}
			if err := foldEvents(tx, r, id.Key(), ns); err != nil {
				return nil, err
			}
		}
		ns.Conflicts = conflicts[i]
		tx.PutProfile(ns)
		out = append(out, ns.Comp)
		// A part is a member of the B2B accounts its own events name, and
		// the part that keeps the profile id leaves those it no longer does.
		var was []string
		if i == keep {
			was = st.Groups
		}
		if err := syncAccounts(tx, ns, was); err != nil {
			return nil, err
		}
	}
	if len(parts) > 1 {
		tx.Emit(canon.Change{Kind: canon.ChangeLog, Log: &canon.LogRecord{
			Type: canon.LogSplit, ProfileID: st.ID, Others: others, Identifier: via, Reason: "links no longer connect the profile", Evidence: ev,
		}})
	}
	return out, nil
}

// foldEvents folds into st the events filed under the identifier key idkey
// and, unless it is quarantined, those parked under it (ParkedKey). The
// events filed under a quarantined value count for its profile only once
// none is left to move to their people's other identifiers (RefileRest):
// until then they count for no one, as each counts where it moves.
func foldEvents(tx *store.Txn, r *store.Reader, idkey string, st *profile.State) error {
	_, q, err := entry(tx, idkey)
	if err != nil {
		return err
	}
	if q {
		if pending, err := tx.RefilePending(idkey); err != nil || pending {
			return err
		}
	}
	add := func(e *canon.Event) error {
		st.AddEvent(e)
		return nil
	}
	if err := r.Events(idkey, add); err != nil {
		return err
	}
	if q {
		return nil
	}
	return r.Events(ParkedKey(idkey), add)
}

// absorbedByPart hands out the ids st absorbed: each to the part holding
// the identifier it was created for, and those whose identifier is in no
// part, is quarantined (junk names no one's profile), or is not known, to
// the part keep. A part's list comes in its identifiers' order (the first
// is the id of the earliest-listed founder), then in the profile's order.
func absorbedByPart(tx *store.Txn, st *profile.State, parts [][]canon.ProfileIdentifier, keep int) ([][]string, error) {
	at := map[string][2]int{} // identifier key -> part, position in it
	for i, p := range parts {
		for j, pi := range p {
			at[pi.Identifier().Key()] = [2]int{i, j}
		}
	}
	type owned struct {
		id  string
		pos int
	}
	byPart := make([][]owned, len(parts))
	for k, id := range st.MergedFrom {
		where, ok := at[st.Founders[id]]
		if ok {
			if _, q, err := entry(tx, st.Founders[id]); err != nil {
				return nil, err
			} else if q {
				ok = false
			}
		}
		if !ok {
			where = [2]int{keep, len(at) + k}
		}
		byPart[where[0]] = append(byPart[where[0]], owned{id, where[1]})
	}
	out := make([][]string, len(parts))
	for i, ps := range byPart {
		slices.SortStableFunc(ps, func(a, b owned) int { return a.pos - b.pos })
		for _, o := range ps {
			out[i] = append(out[i], o.id)
		}
	}
	if keep < len(out) {
		slices.Sort(out[keep]) // the kept profile's merged_from stays sorted
	}
	return out, nil
}

// founders returns own, when the part p holds it, and the entries of
// st.Founders for merged whose identifier p holds: a profile names only
// identifiers it holds, so erasing a person leaves no value of theirs in
// another's state.
func founders(st *profile.State, p []canon.ProfileIdentifier, own string, merged []string) (string, map[string]string) {
	held := func(f string) bool {
		return f != "" && slices.ContainsFunc(p, func(pi canon.ProfileIdentifier) bool {
			return pi.Identifier().Key() == f
		})
	}
	if !held(own) {
		own = ""
	}
	var out map[string]string
	for _, a := range merged {
		if f := st.Founders[a]; held(f) {
			if out == nil {
				out = map[string]string{}
			}
			out[a] = f
		}
	}
	return own, out
}

// parts returns the connected parts of a profile's identifiers over their
// stored links, each in the profile's identifier order.
func (g *Graph) parts(tx *store.Txn, st *profile.State) ([][]canon.ProfileIdentifier, error) {
	index := make(map[string]int, len(st.Identifiers))
	for i, pi := range st.Identifiers {
		index[pi.Identifier().Key()] = i
	}
	part := make([]int, len(st.Identifiers))
	for i := range part {
		part[i] = -1
	}
	r := tx.Scan() // one iterator for every identifier's links
	links, err := r.Links(keysOf(st))
	r.Close()
	if err != nil {
		return nil, err
	}
	adj := make([][]int, len(st.Identifiers))
	for _, l := range links {
		i, iok := index[l.A]
		j, jok := index[l.B]
		if iok && jok {
			adj[i] = append(adj[i], j)
			adj[j] = append(adj[j], i)
		}
	}
	var parts [][]canon.ProfileIdentifier
	for start := range st.Identifiers {
		if part[start] >= 0 {
			continue
		}
		n := len(parts)
		parts = append(parts, nil)
		queue := []int{start}
		part[start] = n
		for len(queue) > 0 {
			i := queue[0]
			queue = queue[1:]
			parts[n] = append(parts[n], st.Identifiers[i])
			for _, j := range adj[i] {
				if part[j] < 0 {
					part[j] = n
					queue = append(queue, j)
				}
			}
		}
	}
	return parts, nil
}

// keysOf returns the idkeys of a profile's identifiers.
func keysOf(st *profile.State) []string {
	keys := make([]string, len(st.Identifiers))
	for i, pi := range st.Identifiers {
		keys[i] = pi.Identifier().Key()
	}
	return keys
}

// better orders split parts: higher identity level, then the part holding
// the highest-priority identifier.
// keeper returns the index of the part that keeps a split profile's id:
// the best (better) of the parts that hold a value not quarantined, or of
// all when none does.
func (g *Graph) keeper(tx *store.Txn, parts [][]canon.ProfileIdentifier) (int, error) {
	keep, keepJunk := 0, true
	for i, p := range parts {
		junk := true
		for _, pi := range p {
			_, q, err := entry(tx, pi.Identifier().Key())
			if err != nil {
				return 0, err
			}
			if !q {
				junk = false
				break
			}
		}
		if i == 0 || (keepJunk && !junk) || (junk == keepJunk && better(p, parts[keep], g)) {
			keep, keepJunk = i, junk
		}
	}
	return keep, nil
}

func better(a, b []canon.ProfileIdentifier, g *Graph) bool {
	if la, lb := profile.Level(a).Rank(), profile.Level(b).Rank(); la != lb {
		return la > lb
	}
	return g.head(a) < g.head(b)
}

// head is a sortable key of a part's highest-priority identifier.
func (g *Graph) head(p []canon.ProfileIdentifier) string {
	best := ""
	for _, pi := range p {
		k := string(rune('A'+g.prio[pi.Type])) + pi.Value
		if best == "" || k < best {
			best = k
		}
	}
	return best
}

// splitConflicts hands a profile's recent refused links to its parts: a
// refused link whose identifier a part holds goes to that part; one whose
// identifier is another profile's (the side that refused it) cannot be
// placed, and every part inherits it, as merged profiles combine theirs.
func splitConflicts(cs []canon.LogRecord, parts [][]canon.ProfileIdentifier) [][]canon.LogRecord {
	owner := map[canon.Identifier]int{}
	for i, p := range parts {
		for _, pi := range p {
			owner[pi.Identifier()] = i
		}
	}
	out := make([][]canon.LogRecord, len(parts))
	for _, c := range cs {
		if c.Identifier != nil {
			if i, ok := owner[*c.Identifier]; ok {
				out[i] = append(out[i], c)
				continue
			}
		}
		for i := range out {
			out[i] = append(out[i], c)
		}
	}
	return out
}

// syncAccounts makes a rebuilt profile a member of the accounts its
// events name, and takes it out of those in was (the groups it had before)
// that they no longer name. A member may be stored under any id the
// profile absorbed (members resolve through aliases), so each of its ids
// counts. Each account that changes goes to the sinks.
func syncAccounts(tx *store.Txn, st *profile.State, was []string) error {
	mine := func(id string) bool { return id == st.ID || slices.Contains(st.MergedFrom, id) }
	for _, g := range slices.Concat(st.Groups, was) {
		a, err := tx.Account(g)
		if err != nil {
			return err
		}
		if a == nil {
			continue
		}
		member, named := slices.ContainsFunc(a.Members, mine), slices.Contains(st.Groups, g)
		switch {
		case named && !member && len(a.Members) < store.MaxAccountMembers:
			a.Members = append(a.Members, st.ID)
		case !named && member:
			a.Members = slices.DeleteFunc(a.Members, mine)
		default:
			continue
		}
		if err := tx.SaveAccount(a); err != nil {
			return err
		}
	}
	return nil
}
