//go:build invariants

package graph

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spinecdp/spine/engine/profile"
	"github.com/spinecdp/spine/engine/store"
	"github.com/spinecdp/spine/schemas/canon"
)

// InvariantsEnabled reports whether CheckInvariants checks anything.
const InvariantsEnabled = true

// CheckInvariants checks the identity graph as stored, whole:
//
//   - every identifier index entry names a live profile that holds the
//     identifier, or is a quarantine mark with no profile;
//   - every profile holds distinct identifiers within the type limits, and
//     each of them maps back to the profile's component;
//   - every alias names a live profile whose id or merged_from is that
//     alias, and a profile's id and merged_from all have aliases to it;
//   - the live-profile counter equals the number of profiles;
//   - links are stored under their lower idkey (a store of format 5 or
//     older also keeps a copy under the higher one), and join two
//     identifiers of one profile; pending links are stored both ways;
//   - the quarantine flag in the index agrees with the quarantine records;
//   - events are filed only under identifiers of live profiles (or of
//     erased identifiers whose events are still being purged), and every
//     profile's counters equal a refold of the events filed under its
//     identifiers;
//   - cached entries and profiles equal what Badger holds.
//
// It reads a snapshot and must run while the writer is idle. Identifier
// values appear in its messages: it is built for tests only.
func (g *Graph) CheckInvariants(s *store.Store) error {
	var errs []error
	bad := func(format string, a ...any) {
		if len(errs) < 25 {
			errs = append(errs, fmt.Errorf("invariant: "+format, a...))
		}
	}
	err := s.View(func(r *store.Reader) error {
		ids := map[string]uint64{}
		if err := r.ScanIDs(func(k string, v uint64) error { ids[k] = v; return nil }); err != nil {
			return err
		}
		profiles := map[uint64]*profile.State{}
		if err := r.ScanProfiles(func(c uint64, st *profile.State) error { profiles[c] = st; return nil }); err != nil {
			return err
		}
		aliases := map[string]uint64{}
		if err := r.ScanAliases(func(pid string, c uint64) error { aliases[pid] = c; return nil }); err != nil {
			return err
		}
		quar := map[string]*store.Quarantine{}
		if err := r.ScanQuarantines(func(k string, q *store.Quarantine) error { quar[k] = q; return nil }); err != nil {
			return err
		}
		if n := s.Profiles(); n != uint64(len(profiles)) {
			bad("live-profile counter %d, %d profiles stored", n, len(profiles))
		}
		// Index entries.
		for k, raw := range ids {
			c, q := Comp(raw), raw&quarantineBit != 0
			if qr := quar[k]; q != (qr != nil && qr.Quarantined) {
				bad("identifier %q: index quarantine flag %v, record %+v", k, q, qr)
			}
			if c == 0 {
				if !q {
					bad("identifier %q: index entry 0 stored", k)
				}
				continue
			}
			st := profiles[c]
			if st == nil {
				bad("identifier %q maps to component %d, which has no profile", k, c)
				continue
			}
			if !slices.ContainsFunc(st.Identifiers, func(pi canon.ProfileIdentifier) bool { return key(pi) == k }) {
				bad("identifier %q maps to component %d (%s), which does not hold it", k, c, st.ID)
			}
		}
		for k, qr := range quar {
			if qr.Quarantined && ids[k]&quarantineBit == 0 {
				bad("identifier %q is quarantined by its record but not in the index", k)
			}
		}
		// Profiles.
		for c, st := range profiles {
			if st.Comp != c {
				bad("profile %s stored under component %d says %d", st.ID, c, st.Comp)
			}
			counts := map[canon.IDType]int{}
			seen := map[string]bool{}
			for _, pi := range st.Identifiers {
				k := key(pi)
				if seen[k] {
					bad("profile %s holds %q twice", st.ID, k)
				}
				seen[k] = true
				counts[pi.Type]++
				if got := Comp(ids[k]); got != c {
					bad("profile %s (component %d) holds %q, which maps to component %d", st.ID, c, k, got)
				}
			}
			for t, n := range counts {
				if lim, ok := g.limit[t]; !ok || n > lim {
					bad("profile %s holds %d %s values, limit %d", st.ID, n, t, lim)
				}
			}
			if len(st.Identifiers) == 0 {
				bad("profile %s holds no identifier", st.ID)
			}
			for _, pid := range append([]string{st.ID}, st.MergedFrom...) {
				if aliases[pid] != c {
					bad("profile %s (component %d): id %s has alias to %d", st.ID, c, pid, aliases[pid])
				}
			}
			// A profile names as founders only identifiers it holds, so
			// an erased person's value never stays in another's state.
			if f := st.Founder; f != "" && !seen[f] {
				bad("profile %s names %q, which it does not hold, as its founder", st.ID, f)
			}
			for pid, f := range st.Founders {
				if !seen[f] {
					bad("profile %s names %q, which it does not hold, as the founder of %s", st.ID, f, pid)
				}
				if !slices.Contains(st.MergedFrom, pid) {
					bad("profile %s has a founder for %s, which it did not absorb", st.ID, pid)
				}
			}
		}
		for pid, c := range aliases {
			st := profiles[c]
			if st == nil {
				bad("alias %s points to component %d, which has no profile", pid, c)
				continue
			}
			if st.ID != pid && !slices.Contains(st.MergedFrom, pid) {
				bad("alias %s points to profile %s, whose merged_from %v does not list it", pid, st.ID, st.MergedFrom)
			}
		}
		// Links and pending links.
		type pair struct{ a, b string }
		edges := map[pair]canon.Evidence{}
		if err := r.ScanEdges(func(a, b string, ev canon.Evidence) error { edges[pair{a, b}] = ev; return nil }); err != nil {
			return err
		}
		for p := range edges {
			// Under the higher idkey only in a store of format 5 or older,
			// beside the copy under the lower one.
			if _, lower := edges[pair{p.b, p.a}]; p.a > p.b && !lower {
				bad("link %q-%q is stored under its higher idkey alone", p.a, p.b)
			}
			ca, cb := Comp(ids[p.a]), Comp(ids[p.b])
			if ca == 0 || ca != cb {
				bad("link %q-%q joins components %d and %d", p.a, p.b, ca, cb)
			}
		}
		cands := map[pair]bool{}
		if err := r.ScanCandidates(func(a, b string, _ *store.Candidate) error { cands[pair{a, b}] = true; return nil }); err != nil {
			return err
		}
		for p := range cands {
			if !cands[pair{p.b, p.a}] {
				bad("pending link %q-%q is not stored both ways", p.a, p.b)
			}
			if Comp(ids[p.a]) == 0 || Comp(ids[p.b]) == 0 {
				bad("pending link %q-%q names an identifier without a profile", p.a, p.b)
			}
		}
		// Filed events refold to each profile's counters. Those of erased
		// identifiers still being deleted belong to no one.
		purging := map[string]uint64{}
		if err := r.ScanPurging(func(k string, upTo uint64) error { purging[k] = upTo; return nil }); err != nil {
			return err
		}
		refiling := map[string]bool{} // events on their way off a quarantined value: no one's yet
		if err := r.ScanRefiles(func(k string) error { refiling[k] = true; return nil }); err != nil {
			return err
		}
		refold := map[uint64]*profile.State{}
		err := r.ScanEvents(func(k string, seq uint64, e *canon.Event) error {
			if seq <= purging[k] || refiling[k] && ids[k]&quarantineBit != 0 {
				return nil
			}
			if q, ok := strings.CutPrefix(k, parkedPrefix); ok {
				// Parked: no one's while the value is quarantined, then
				// its profile's.
				if ids[q]&quarantineBit != 0 {
					return nil
				}
				k = q
			}
			c := Comp(ids[k])
			if profiles[c] == nil {
				bad("event %s/%s is filed under %q, which has no profile", e.Channel, e.MessageID, k)
				return nil
			}
			if refold[c] == nil {
				refold[c] = profile.New("", c, 0)
			}
			refold[c].AddEvent(e)
			return nil
		})
		if err != nil {
			return err
		}
		for c, st := range profiles {
			want := profile.New("", c, 0).Computed
			if rf := refold[c]; rf != nil {
				want = rf.Computed
			}
			got := st.Computed
			if !maps.Equal(nonZero(got.EventsByChannel), nonZero(want.EventsByChannel)) || got.OrderCount != want.OrderCount ||
				!maps.Equal(nonZero(got.TotalSpend), nonZero(want.TotalSpend)) || got.TicketsOpened != want.TicketsOpened {
				bad("profile %s: counters %v orders %d spend %v; its filed events give %v orders %d spend %v",
					st.ID, got.EventsByChannel, got.OrderCount, got.TotalSpend, want.EventsByChannel, want.OrderCount, want.TotalSpend)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := s.CheckCache(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func key(pi canon.ProfileIdentifier) string {
	return pi.Identifier().Key()
}

func nonZero[K comparable](m map[K]int64) map[K]int64 {
	out := map[K]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
