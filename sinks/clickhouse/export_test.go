package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas"
	"github.com/spinecdp/spine/schemas/canon"
)

// Internals the external tests check against a real server.
var (
	ValueHash        = valueHash
	Quote            = quote
	UncountedDaysSQL = uncountedDaysSQL
)

// Account is the account shape the sink writes (canon has none yet).
type Account = account

// WriteAccounts inserts account rows as Write will once canon carries
// account changes.
func WriteAccounts(ctx context.Context, s *Sink, seq uint64, at time.Time, as ...*Account) error {
	rows := make([]*row, len(as))
	for i, a := range as {
		rows[i] = accountRow(s.dialect, seq+uint64(i), at, a)
	}
	return s.insert(ctx, tableAccounts, rows)
}

// InsertSQL renders the rows Write would insert for batch as INSERT ...
// VALUES statements, one per table, for engines the driver cannot reach
// (chDB, in process). Deletions and erasure are not rendered.
func InsertSQL(d schemas.Dialect, batch []canon.Change) ([]string, error) {
	byTable := map[string][]*row{}
	var order []string
	add := func(table string, r *row) {
		if byTable[table] == nil {
			order = append(order, table)
		}
		byTable[table] = append(byTable[table], r)
	}
	for i := range batch {
		c := &batch[i]
		switch {
		case c.Kind == canon.ChangeEvent && c.Event != nil:
			add(tableEvents, eventRow(d, c))
		case c.Kind == canon.ChangeProfile && c.Profile != nil:
			r, err := profileRow(d, c)
			if err != nil {
				return nil, err
			}
			add(tableProfiles, r)
		case c.Kind == canon.ChangeDelete && c.Delete != nil:
			add(tableProfiles, deletionRow(d, c))
		case c.Kind == canon.ChangeMapping && c.Mapping != nil && c.Mapping.ProfileID != "":
			add(tableIdentityMap, mappingRow(d, c))
		case c.Kind == canon.ChangeLog && c.Log != nil:
			add(tableMerges, logRow(d, c))
		}
	}
	var out []string
	for _, t := range order {
		rows := byTable[t]
		vals := make([]string, len(rows))
		for i, r := range rows {
			lits := make([]string, len(r.vals))
			for j, v := range r.vals {
				lits[j] = literal(v)
			}
			vals[i] = "(" + strings.Join(lits, ", ") + ")"
		}
		out = append(out, "INSERT INTO "+t+" ("+strings.Join(rows[0].names, ", ")+") VALUES "+strings.Join(vals, ", "))
	}
	return out, nil
}

func literal(v any) string {
	switch x := v.(type) {
	case string:
		return quote(x)
	case time.Time:
		if x.Nanosecond() == 0 {
			return quote(x.UTC().Format(time.DateTime))
		}
		return quote(x.UTC().Format("2006-01-02 15:04:05.000"))
	case []string:
		return arrayLit(x)
	case []time.Time:
		return arrayLit(x)
	case []uint8:
		return arrayLit(x)
	}
	return fmt.Sprint(v)
}

func arrayLit[T any](s []T) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = literal(v)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// RefreshSQL returns the roll-up statements Write runs after batch (with
// the snapshots due), computed as Write computes them.
func RefreshSQL(batch []canon.Change, now time.Time) []string {
	days := map[time.Time]bool{}
	for _, c := range batch {
		if c.Kind == canon.ChangeEvent && c.Event != nil {
			days[dayOf(clampTime(c.Event.Time))] = true
		}
	}
	last := batch[len(batch)-1]
	var out []string
	if len(days) > 0 {
		list := slices.SortedFunc(maps.Keys(days), time.Time.Compare)
		out = append(out, refreshChannelSQL(list, last.Seq, now), emptiedChannelSQL(list, last.Seq, now))
	}
	return append(out, snapshotSQL(dayOf(last.At), last.Seq, now)...)
}
