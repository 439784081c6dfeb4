package clickhouse

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-faster/city"

	"github.com/spinecdp/spine/schemas/canon"
	"github.com/spinecdp/spine/sinks"
)

// Write implements sinks.Sink. It inserts the batch's rows table by table,
// in bounded INSERTs, and runs erasures and identifier removals as
// mutations. Order matters only between a deletion and the rows it
// concerns: rows before it in the batch are inserted first (so the
// deletion removes them too), rows after it are inserted after it (so it
// does not). A replay repeats the same inserts, which collapse under FINAL,
// and the same deletions, which remove nothing new.
//
// After the rows, Write recomputes the roll-ups the batch touched (see
// rollup.go). A failure anywhere returns an error and the whole batch comes
// again, so a refresh is never skipped for rows that were written.
func (s *Sink) Write(ctx context.Context, batch []canon.Change) error {
	if len(batch) == 0 {
		return nil
	}
	w := &writer{s: s, ins: map[string][]*row{}, erased: map[string]bool{}, removed: map[canon.IDType]map[uint64]bool{}}
	days := map[time.Time]bool{} // event days whose roll-ups to recompute
	profilesChanged := false
	skipped, restricted, erasures := 0, 0, 0
	superseded := supersededProfiles(batch)
	for i := range batch {
		c := &batch[i]
		var err error
		switch {
		case c.Superseded:
			// Read back from the log after a newer record replaced it.
		case superseded[i]:
			profilesChanged = true
		case c.Kind == canon.ChangeEvent && c.Event != nil && c.Restricted:
			// The person's consent keeps them out of analytics: no new rows.
			restricted++
		case c.Kind == canon.ChangeEvent && c.Event != nil:
			days[dayOf(clampTime(c.Event.Time))] = true
			err = w.add(ctx, tableEvents, eventRow(s.dialect, c), w.erased[c.Event.ProfileID])
		case c.Kind == canon.ChangeProfile && c.Profile != nil:
			profilesChanged = true
			var r *row
			if c.Restricted {
				c = restrictedProfile(c)
			}
			if r, err = profileRow(s.dialect, c); err != nil {
				return fmt.Errorf("clickhouse: encode profile at seq %d: %w", c.Seq, err)
			}
			err = w.add(ctx, tableProfiles, r, w.erased[c.Profile.ID])
		case c.Kind == canon.ChangeDelete && c.Delete != nil:
			profilesChanged = true
			err = w.add(ctx, tableProfiles, deletionRow(s.dialect, c), w.erased[c.Delete.ProfileID])
		case c.Kind == canon.ChangeMapping && c.Mapping != nil:
			err = w.mapping(ctx, c)
		case c.Kind == canon.ChangeLog && c.Log != nil:
			err = w.add(ctx, tableMerges, logRow(s.dialect, c), w.logErased(c.Log))
		case c.Kind == canon.ChangeAccount && c.Account != nil:
			err = w.add(ctx, tableAccounts, accountRow(s.dialect, c.Seq, c.At, c.Account), false)
		case c.Kind == canon.ChangeErase && c.Erase != nil:
			for _, id := range c.Erase.ProfileIDs {
				w.erased[id] = true
			}
			// The days the person's events fall on are recounted once
			// their rows are gone.
			var erasedDays []time.Time
			if erasedDays, err = s.daysOf(ctx, c.Erase.ProfileIDs, w.removed); err == nil {
				err = s.requestRecount(ctx, erasedDays, c.Seq)
			}
			if err == nil {
				// Kept for the recount at once, not only at the end of this
				// Write: if it fails after the deletions were submitted, the
				// retry finds the rows gone and these days no more. A
				// restart finds them in recount_requests.
				if s.recount.days == nil {
					s.recount.days = map[time.Time]bool{}
				}
				for _, d := range erasedDays {
					days[d] = true
					s.recount.days[d] = true
				}
				erasures++
			}
		default:
			// A kind this sink does not know (a newer engine) or a malformed
			// record: skipping keeps the other destinations flowing.
			skipped++
		}
		if err != nil {
			return err
		}
	}
	if restricted > 0 {
		s.metrics.restricted.WithLabelValues(name, tableEvents).Add(float64(restricted))
	}
	if n := len(superseded); n > 0 {
		s.metrics.superseded.WithLabelValues(name, tableProfiles).Add(float64(n))
	}
	if skipped > 0 {
		s.log.Warn("clickhouse sink skipped changes it does not know", "count", skipped)
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	if erasures > 0 {
		// Deletions are mutations, applied in the background: the
		// roll-ups are recounted only once the erased rows are gone.
		if err := s.WaitMutations(ctx); err != nil {
			return sinks.Retryable(fmt.Errorf("clickhouse: wait for erasure: %w", err))
		}
	}
	last := &batch[len(batch)-1]
	return s.refresh(ctx, days, erasures > 0, profilesChanged, last.Seq, last.At)
}

// supersededProfiles returns the indexes of the batch's profile changes
// that a later version of the same profile in the batch replaces: the
// profiles table keeps the newest version of each profile (FINAL), so
// their rows would be inserted only to be merged away. A profile that
// changes with every event of a busy person becomes one row per batch
// instead of one per event. A deletion of the profile in between keeps
// the versions before it, and a batch with an erasure is written whole,
// so the order of rows and deletions stays as Write describes it.
func supersededProfiles(batch []canon.Change) map[int]bool {
	var out map[int]bool
	later := map[string]bool{} // a newer version comes later in the batch
	for i := len(batch) - 1; i >= 0; i-- {
		c := &batch[i]
		switch {
		case c.Kind == canon.ChangeErase:
			return nil
		case c.Kind == canon.ChangeDelete && c.Delete != nil:
			delete(later, c.Delete.ProfileID)
		case c.Kind == canon.ChangeProfile && c.Profile != nil:
			if later[c.Profile.ID] {
				if out == nil {
					out = map[int]bool{}
				}
				out[i] = true
			}
			later[c.Profile.ID] = true
		}
	}
	return out
}

// writer holds the rows and deletions of one Write that are not yet sent.
// Invariant: no pending row is matched by a pending deletion, so pending
// rows may be sent at any time and deletions always run after them.
type writer struct {
	s       *Sink
	ins     map[string][]*row
	erased  map[string]bool                  // profile ids to delete everywhere
	removed map[canon.IDType]map[uint64]bool // identity_map keys to delete, by value hash
}

// add queues r for table. hit says a pending deletion matches r: the
// deletion came earlier in the batch, so it runs (after the rows before it)
// before r is queued.
func (w *writer) add(ctx context.Context, table string, r *row, hit bool) error {
	if hit {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	w.ins[table] = append(w.ins[table], r)
	if len(w.ins[table]) >= w.s.cfg.MaxInsertRows {
		if err := w.s.insert(ctx, table, w.ins[table]); err != nil {
			return err
		}
		w.ins[table] = nil
	}
	return nil
}

// mapping queues an identity_map row, or the removal of one: an identifier
// mapped to no profile was erased, and its rows are deleted rather than
// overwritten, since an overwriting row would keep the value in clear.
func (w *writer) mapping(ctx context.Context, c *canon.Change) error {
	m := c.Mapping
	h := valueHash(m.Identifier.Value)
	if m.ProfileID == "" {
		if w.removed[m.Identifier.Type] == nil {
			w.removed[m.Identifier.Type] = map[uint64]bool{}
		}
		w.removed[m.Identifier.Type][h] = true
		return nil
	}
	if c.Restricted {
		// A person kept out of analytics: no identifier of theirs either.
		w.s.metrics.restricted.WithLabelValues(name, tableIdentityMap).Inc()
		return nil
	}
	hit := w.erased[m.ProfileID] || w.removed[m.Identifier.Type][h]
	return w.add(ctx, tableIdentityMap, mappingRow(w.s.dialect, c), hit)
}

// logErased reports whether erasing the pending profiles deletes the log
// record l. Erase records are kept: they hold only hashes and are the
// receipt that the erasure happened.
func (w *writer) logErased(l *canon.LogRecord) bool {
	if l.Type == canon.LogErase {
		return false
	}
	if w.erased[l.ProfileID] {
		return true
	}
	for _, o := range l.Others {
		if w.erased[o] {
			return true
		}
	}
	return false
}

// flush sends the pending rows, then runs the pending deletions.
func (w *writer) flush(ctx context.Context) error {
	for _, t := range []string{tableEvents, tableProfiles, tableIdentityMap, tableMerges, tableAccounts} {
		if len(w.ins[t]) == 0 {
			continue
		}
		if err := w.s.insert(ctx, t, w.ins[t]); err != nil {
			return err
		}
		w.ins[t] = nil
	}
	if err := w.s.deleteStrays(ctx, w.erased, w.removed); err != nil {
		return err
	}
	if err := w.s.deleteRemoved(ctx, w.removed); err != nil {
		return err
	}
	clear(w.removed)
	if err := w.s.erase(ctx, w.erased); err != nil {
		return err
	}
	clear(w.erased)
	return nil
}

// insert sends rows, which all have the same columns, as one INSERT.
func (s *Sink) insert(ctx context.Context, table string, rows []*row) error {
	query := "INSERT INTO " + table + " (" + strings.Join(rows[0].names, ", ") + ")"
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("clickhouse: insert %s: %w", table, classify(err))
	}
	for _, r := range rows {
		if err := b.Append(r.vals...); err != nil {
			_ = b.Abort()
			return fmt.Errorf("clickhouse: insert %s: %w", table, classify(err))
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %s: %w", table, classify(err))
	}
	s.metrics.addInsert(table, len(rows))
	return nil
}

// erase deletes every row of the given profiles. The mutations run in the
// background on the server; WaitMutations waits for them.
func (s *Sink) erase(ctx context.Context, ids map[string]bool) error {
	if len(ids) == 0 {
		return nil
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, quote(id))
	}
	sort.Strings(list) // the same batch gives the same statements
	for chunk := range chunks(list, s.cfg.MaxDeleteKeys) {
		in := strings.Join(chunk, ", ")
		stmts := []struct{ table, where string }{
			{tableEvents, "profile_id IN (" + in + ")"},
			{tableEventsDaily, "profile_id IN (" + in + ")"},
			{tableProfiles, "profile_id IN (" + in + ")"},
			{tableIdentityMap, "profile_id IN (" + in + ")"},
			{tableMerges, "type != 'erase' AND (profile_id IN (" + in + ") OR hasAny(others, [" + in + "]))"},
			// Older account versions listing the person; the engine wrote
			// the new version without them before the erasure.
			{tableAccounts, "hasAny(members, [" + in + "])"},
		}
		for _, st := range stmts {
			if err := s.conn.Exec(ctx, "ALTER TABLE "+st.table+" DELETE WHERE "+st.where); err != nil {
				return fmt.Errorf("clickhouse: erase from %s: %w", st.table, classify(err))
			}
		}
	}
	s.log.Info("clickhouse erasure submitted", "profiles", len(ids))
	return nil
}

// deleteRemoved deletes identity_map rows of removed identifiers. It
// matches on cityHash64 of the value so that the erased values never
// appear in mutation text, which the server keeps (system.mutations, the
// query log). Two values of one type colliding on 64 bits is negligible.
func (s *Sink) deleteRemoved(ctx context.Context, removed map[canon.IDType]map[uint64]bool) error {
	for t, hashes := range removedByType(removed) {
		for chunk := range chunks(hashes, s.cfg.MaxDeleteKeys) {
			in := strings.Join(chunk, ", ")
			// Events anchored on the identifier are the erased person's too,
			// whatever profile id they carry (DESIGN section 7).
			stmts := []struct{ table, where string }{
				{tableIdentityMap, "id_type = " + quote(t) + " AND cityHash64(id_value) IN (" + in + ")"},
				{tableEvents, "anchor_type = " + quote(t) + " AND anchor_hash IN (" + in + ")"},
				{tableEventsDaily, "anchor_type = " + quote(t) + " AND anchor_hash IN (" + in + ")"},
			}
			for _, st := range stmts {
				if err := s.conn.Exec(ctx, "ALTER TABLE "+st.table+" DELETE WHERE "+st.where); err != nil {
					return fmt.Errorf("clickhouse: delete removed identifiers from %s: %w", st.table, classify(err))
				}
			}
		}
	}
	return nil
}

// deleteStrays deletes the other copies of the events an erasure deletes.
// An event refiled after its anchor was quarantined has a newer row with
// its person's profile and anchor, and an older one with neither, which
// the erasure's predicates (profile id, anchor hash) leave behind and
// FINAL would show again once the newer row is gone. The copies are
// found by the event's dedup key and deleted by its hash, so that no
// message id appears in mutation text; usually there are none and no
// mutation runs.
func (s *Sink) deleteStrays(ctx context.Context, ids map[string]bool, removed map[canon.IDType]map[uint64]bool) error {
	keys := map[string]bool{}
	for pred := range erasedEvents(ids, removed, s.cfg.MaxDeleteKeys) {
		q := "SELECT DISTINCT toString(cityHash64(channel, message_id)) FROM " + tableEvents +
			" WHERE (channel, message_id) IN (SELECT channel, message_id FROM " + tableEvents + " WHERE " + pred + ")" +
			" AND NOT (" + pred + ")"
		if err := s.stringSet(ctx, q, keys); err != nil {
			return fmt.Errorf("clickhouse: find other copies of erased events: %w", err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	list := slices.Sorted(maps.Keys(keys))
	for chunk := range chunks(list, s.cfg.MaxDeleteKeys) {
		where := "cityHash64(channel, message_id) IN (" + strings.Join(chunk, ", ") + ")"
		for _, t := range []string{tableEvents, tableEventsDaily} {
			if err := s.conn.Exec(ctx, "ALTER TABLE "+t+" DELETE WHERE "+where); err != nil {
				return fmt.Errorf("clickhouse: erase other copies from %s: %w", t, classify(err))
			}
		}
	}
	s.log.Info("clickhouse erasure found other copies of events", "events", len(keys))
	return nil
}

// erasedEvents yields, in pieces of at most n keys, the predicates by
// which an erasure deletes events rows: by profile id and by the anchor
// hash of a removed identifier.
func erasedEvents(ids map[string]bool, removed map[canon.IDType]map[uint64]bool, n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, quote(id))
		}
		sort.Strings(list)
		for chunk := range chunks(list, n) {
			if !yield("profile_id IN (" + strings.Join(chunk, ", ") + ")") {
				return
			}
		}
		for t, hashes := range removedByType(removed) {
			for chunk := range chunks(hashes, n) {
				if !yield("anchor_type = " + quote(t) + " AND anchor_hash IN (" + strings.Join(chunk, ", ") + ")") {
					return
				}
			}
		}
	}
}

// stringSet runs a query whose one column is a String and adds its values
// to out.
func (s *Sink) stringSet(ctx context.Context, query string, out map[string]bool) error {
	rows, err := s.conn.Query(ctx, query)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		out[v] = true
	}
	return rows.Err()
}

// removedByType yields the removed identifiers' value hashes as decimal
// literals, type by type, both in a stable order (the same batch gives the
// same statements).
func removedByType(removed map[canon.IDType]map[uint64]bool) iter.Seq2[string, []string] {
	return func(yield func(string, []string) bool) {
		types := make([]string, 0, len(removed))
		for t := range removed {
			types = append(types, string(t))
		}
		sort.Strings(types)
		for _, t := range types {
			hashes := make([]string, 0, len(removed[canon.IDType(t)]))
			for h := range removed[canon.IDType(t)] {
				hashes = append(hashes, strconv.FormatUint(h, 10))
			}
			sort.Strings(hashes)
			if !yield(t, hashes) {
				return
			}
		}
	}
}

// valueHash is ClickHouse's cityHash64 of a String.
func valueHash(v string) uint64 { return city.CH64([]byte(v)) }

// quote renders s as a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// restrictedProfile is what analytics may keep of a person whose consent
// keeps them out: levels, lifecycle, counters and consent (so roll-ups stay
// right), and nothing that identifies or describes them.
func restrictedProfile(c *canon.Change) *canon.Change {
	out := *c
	p := *c.Profile
	p.Identifiers, p.Traits, p.TraitSources = nil, map[string]any{}, nil
	out.Profile = &p
	out.Raw = nil // the engine's JSON is of the whole profile
	return &out
}

// daysOf returns the days on which the given profiles have events.
func (s *Sink) daysOf(ctx context.Context, ids []string, removed map[canon.IDType]map[uint64]bool) ([]time.Time, error) {
	list := make([]string, 0, len(ids))
	for _, id := range ids {
		list = append(list, quote(id))
	}
	where := []string{"profile_id IN (" + strings.Join(list, ", ") + ")"}
	// Events filed under the erased identifiers carry other profile ids
	// when they were made while the person was merged with someone else;
	// the erasure's identifier removals (mapping changes before it) name
	// them by hash.
	for t, hashes := range removedByType(removed) {
		where = append(where, "(anchor_type = "+quote(t)+" AND anchor_hash IN ("+strings.Join(hashes, ", ")+"))")
	}
	out, err := s.days(ctx, "SELECT DISTINCT day FROM "+tableEventsDaily+" WHERE "+strings.Join(where, " OR "))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: days of erased events: %w", err)
	}
	return out, nil
}

// requestRecount records, before an erasure's deletions are submitted,
// that days must be recounted as of seq, so that a process stopped before
// the recount leaves the request to the next start (uncountedDaysSQL).
func (s *Sink) requestRecount(ctx context.Context, days []time.Time, seq uint64) error {
	if len(days) == 0 {
		return nil
	}
	rows := make([]*row, len(days))
	for i, d := range days {
		r := newRow(s.dialect, 2)
		r.add("day", d)
		r.add("seq", seq)
		rows[i] = r
	}
	if err := s.insert(ctx, tableRecountRequests, rows); err != nil {
		return fmt.Errorf("clickhouse: request the recount of erased days: %w", err)
	}
	return nil
}

// days runs a query whose one column is a day.
func (s *Sink) days(ctx context.Context, query string) ([]time.Time, error) {
	rows, err := s.conn.Query(ctx, query)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, dayOf(d))
	}
	return out, rows.Err()
}
