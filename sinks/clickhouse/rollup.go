package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spinecdp/spine/schemas/canon"
)

// Roll-ups (migration 0009) are recomputed, never incremented: every
// refresh statement below reads the deduplicated base tables with FINAL and
// writes the whole answer for its key with version = the batch's last seq
// into a ReplacingMergeTree(version). A retried INSERT, a replayed batch or
// a message the engine emitted twice therefore cannot count twice: the
// next refresh of the day yields the same rows again, and the newest
// version wins. schemas/queries/README.md spells the argument out.
//
// Two kinds of refresh:
//   - event roll-ups (rollup_channel_daily): after each batch, for the days
//     its events fall on, from events_daily FINAL (sorted by day, so only
//     those days are read);
//   - snapshots (identity levels, lifecycle funnel, consent rates): the
//     state of all live profiles, keyed by the day of the batch's commit
//     time. They read every profile, so they run at most once per
//     Config.SnapshotInterval (and whenever the day changes).
//
// The statements are plain SQL that 18.16 and current servers both run:
// the chdb-tagged test runs the same text on ClickHouse 26.

// refreshChannelSQL recomputes rollup_channel_daily for days. Revenue is
// grouped per currency in the inner query and folded into parallel arrays
// sorted by currency (18.16's sumMap takes numeric keys only). A parked
// event (no profile) counts in events, orders and money but is no one in
// profiles; uniqExactStateIf keeps the column's state type.
func refreshChannelSQL(days []time.Time, version uint64, now time.Time) string {
	return `INSERT INTO rollup_channel_daily (day, channel, events, profiles, orders, currencies, revenue_micros, refund_micros, version, refreshed_at)
SELECT day, channel, events, profiles, orders,
    arrayMap(x -> x.1, money), arrayMap(x -> x.2, money), arrayMap(x -> x.3, money),
    ` + uintLit(version) + `, ` + timeLit(now) + `
FROM
(
    SELECT day, channel, sum(n) AS events, uniqExactMergeState(p) AS profiles, sum(o) AS orders,
        arraySort(groupArrayIf((currency, rev, ref), currency != '')) AS money
    FROM
    (
        SELECT day, channel, currency, count() AS n, uniqExactStateIf(profile_id, profile_id != '') AS p,
            countIf(kind = 'order') AS o,
            sumIf(amount_micros, kind = 'order') AS rev,
            sumIf(amount_micros, kind = 'refund') AS ref
        FROM events_daily FINAL
        WHERE day IN (` + dayList(days) + `)
        GROUP BY day, channel, currency
    )
    GROUP BY day, channel
)`
}

// emptiedChannelSQL writes zero rows for the (day, channel) pairs of days
// that have a roll-up row but no events left (all erased): the recount
// above writes nothing for them, and their old row would stand. The empty
// uniqExact state comes from aggregating no rows without GROUP BY.
func emptiedChannelSQL(days []time.Time, version uint64, now time.Time) string {
	in := dayList(days)
	return `INSERT INTO rollup_channel_daily (day, channel, events, profiles, orders, currencies, revenue_micros, refund_micros, version, refreshed_at)
SELECT day, channel, toUInt64(0), empty_profiles, toUInt64(0), emptyArrayString(), emptyArrayInt64(), emptyArrayInt64(),
    ` + uintLit(version) + `, ` + timeLit(now) + `
FROM
(
    SELECT day, toString(channel) AS channel
    FROM rollup_channel_daily FINAL
    WHERE day IN (` + in + `) AND events > 0
        AND (day, toString(channel)) NOT IN (SELECT day, toString(channel) FROM events_daily FINAL WHERE day IN (` + in + `))
) AS stale
CROSS JOIN (SELECT uniqExactState(toString('')) AS empty_profiles FROM system.one WHERE 0) AS empty`
}

// snapshotSQL returns the statements that snapshot live profiles into the
// day's identity, lifecycle and consent roll-ups. The funnel and consent
// statements drive from constant lists of stages and purposes, so every
// stage and purpose gets a row, zero included, and a recount can never
// leave a stale row behind.
func snapshotSQL(day time.Time, version uint64, now time.Time) []string {
	d, v, n := dayLit(day), uintLit(version), timeLit(now)
	stages := make([]string, len(canon.Stages))
	positions := make([]string, len(canon.Stages))
	for i, s := range canon.Stages {
		stages[i] = quote(s)
		positions[i] = "(" + strconv.Itoa(i+1) + ", " + quote(s) + ")"
	}
	purposes := make([]string, len(canon.Purposes))
	for i, p := range canon.Purposes {
		purposes[i] = quote(p)
	}
	return []string{
		`INSERT INTO rollup_identity_daily (day, profiles, anonymous, pseudonymous, registered, verified, version, refreshed_at)
SELECT ` + d + `, count(),
    countIf(identity_level = 'anonymous'), countIf(identity_level = 'pseudonymous'),
    countIf(identity_level = 'registered'), countIf(identity_level = 'verified'),
    ` + v + `, ` + n + `
FROM profiles FINAL
WHERE deleted = 0`,

		`INSERT INTO rollup_lifecycle_daily (day, stage, position, current, reached, avg_seconds, median_seconds, version, refreshed_at)
SELECT ` + d + `, stage, position, current, reached,
    if(reached = 0, 0, avg_s), if(reached = 0, 0, toFloat64(med_s)),
    ` + v + `, ` + n + `
FROM (SELECT arrayJoin([` + strings.Join(positions, ", ") + `]) AS t, t.1 AS position, t.2 AS stage) AS stages
ANY LEFT JOIN
(
    SELECT stage, countIf(current_stage = stage) AS current, countIf(hit) AS reached,
        avgIf(secs, hit) AS avg_s, quantileExactIf(0.5)(secs, hit) AS med_s
    FROM
    (
        SELECT stage, lifecycle_stage AS current_stage, has(lifecycle_stages, stage) AS hit,
            greatest(toInt64(toUnixTimestamp(lifecycle_times[indexOf(lifecycle_stages, stage)]))
                - toInt64(toUnixTimestamp(toDateTime(first_seen))), 0) AS secs
        FROM (SELECT lifecycle_stage, lifecycle_stages, lifecycle_times, first_seen FROM profiles FINAL WHERE deleted = 0)
        ARRAY JOIN [` + strings.Join(stages, ", ") + `] AS stage
    )
    GROUP BY stage
) AS counts USING (stage)`,

		`INSERT INTO rollup_consent_daily (day, purpose, profiles, decided, granted, version, refreshed_at)
SELECT ` + d + `, purpose, profiles, decided, granted, ` + v + `, ` + n + `
FROM (SELECT arrayJoin([` + strings.Join(purposes, ", ") + `]) AS purpose) AS purposes
ANY LEFT JOIN
(
    SELECT purpose, count() AS profiles,
        countIf(has(consent_purposes, purpose)) AS decided,
        countIf(consent_granted[indexOf(consent_purposes, purpose)] = 1) AS granted
    FROM (SELECT consent_purposes, consent_granted FROM profiles FINAL WHERE deleted = 0)
    ARRAY JOIN [` + strings.Join(purposes, ", ") + `] AS purpose
    GROUP BY purpose
) AS counts USING (purpose)`,
	}
}

// refresh brings the roll-ups up to date after a batch was written: the
// event roll-ups of days, at most once per Config.RollupInterval unless
// now (a batch with an erasure, whose rows are already gone), and the
// profile snapshots when due. version is the batch's last seq, at its
// commit time.
func (s *Sink) refresh(ctx context.Context, days map[time.Time]bool, now, profilesChanged bool, version uint64, at time.Time) error {
	wall := time.Now().UTC()
	if !s.recount.checked {
		// A process that stopped before its last recount ended left days
		// whose newest event row is newer than their roll-up rows.
		missed, err := s.days(ctx, uncountedDaysSQL)
		if err != nil {
			return fmt.Errorf("clickhouse: days not yet recounted: %w", err)
		}
		s.recount.checked = true
		for _, d := range missed {
			days[d] = true
		}
	}
	if s.recount.days == nil {
		s.recount.days = map[time.Time]bool{}
	}
	maps.Copy(s.recount.days, days)
	s.recount.version = version
	if len(s.recount.days) > 0 && (now || wall.Sub(s.recount.at) >= s.cfg.RollupInterval) {
		if err := s.recountDays(ctx, wall); err != nil {
			return err
		}
	}

	day := dayOf(at)
	if profilesChanged {
		s.snap.pending, s.snap.pendDay, s.snap.pendVersion = true, day, version
	}
	due := !day.Equal(s.snap.day) || wall.Sub(s.snap.at) >= s.cfg.SnapshotInterval
	if !s.snap.pending || !due {
		return nil
	}
	return s.snapshot(ctx, wall)
}

// Due implements sinks.Deferrer: how long until the held-back recount of
// event days, or the held-back profile snapshot, falls due, so that a
// stream that goes quiet still gets its roll-ups within the interval.
func (s *Sink) Due() (time.Duration, bool) {
	now := time.Now()
	var after time.Duration
	ok := false
	if len(s.recount.days) > 0 {
		after, ok = s.recount.at.Add(s.cfg.RollupInterval).Sub(now), true
	}
	if s.snap.pending {
		if a := s.snap.at.Add(s.cfg.SnapshotInterval).Sub(now); !ok || a < after {
			after = a
		}
		ok = true
	}
	return after, ok
}

// Flush implements sinks.Deferrer: it does the recount and the snapshot
// that are due.
func (s *Sink) Flush(ctx context.Context) error {
	now := time.Now().UTC()
	if len(s.recount.days) > 0 && now.Sub(s.recount.at) >= s.cfg.RollupInterval {
		if err := s.recountDays(ctx, now); err != nil {
			return err
		}
	}
	if s.snap.pending && now.Sub(s.snap.at) >= s.cfg.SnapshotInterval {
		return s.snapshot(ctx, now)
	}
	return nil
}

// uncountedDaysSQL finds the days whose newest event row, or newest
// erasure's recount request, is newer than the newest roll-up row of that
// day: a recount of a day takes the last seq written as its version and
// reads every row of the day written before it, so these are exactly the
// days not recounted since a row of theirs was written or deleted. Days
// are compared one by one, so a recount that stopped between two chunks
// of days is found too.
const uncountedDaysSQL = `SELECT day FROM
(SELECT day, max(seq) AS top FROM
    (SELECT day, seq FROM ` + tableEventsDaily + ` UNION ALL SELECT day, seq FROM ` + tableRecountRequests + `)
GROUP BY day) AS written
ANY LEFT JOIN
(SELECT day, max(version) AS counted FROM rollup_channel_daily GROUP BY day) AS recounted
USING (day)
WHERE top > counted
ORDER BY day`

// recountState tracks the event roll-up recounts Config.RollupInterval
// holds back. Losing it (a crash) loses nothing: the first batch after a
// start recounts the days uncountedDaysSQL finds.
type recountState struct {
	days    map[time.Time]bool // event days written since the last recount; at most one per calendar day
	version uint64             // last seq of the newest batch written
	at      time.Time          // wall time of the last recount
	checked bool               // the days a previous process left were looked up
}

// recountDays recounts the pending event days.
func (s *Sink) recountDays(ctx context.Context, now time.Time) error {
	list := slices.SortedFunc(maps.Keys(s.recount.days), func(a, b time.Time) int { return a.Compare(b) })
	for chunk := range chunks(list, s.cfg.MaxDeleteKeys) {
		for _, q := range []string{refreshChannelSQL(chunk, s.recount.version, now), emptiedChannelSQL(chunk, s.recount.version, now)} {
			if err := s.conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("clickhouse: refresh rollup_channel_daily: %w", classify(err))
			}
		}
	}
	clear(s.recount.days)
	s.recount.at = now
	return nil
}

// snapshotState tracks the throttled profile snapshots. Losing it (a
// crash) loses at most one interval's refresh, which the next batch that
// changes a profile redoes: snapshots are recounts, never increments.
type snapshotState struct {
	pending     bool      // a profile changed since the last snapshot
	pendDay     time.Time // commit day and seq of the newest such change
	pendVersion uint64
	day         time.Time // day and wall time of the last snapshot
	at          time.Time
}

// snapshot runs the pending snapshot.
func (s *Sink) snapshot(ctx context.Context, now time.Time) error {
	for _, q := range snapshotSQL(s.snap.pendDay, s.snap.pendVersion, now) {
		if err := s.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("clickhouse: refresh profile snapshots: %w", classify(err))
		}
	}
	s.snap.pending, s.snap.day, s.snap.at = false, s.snap.pendDay, now
	return nil
}

// dayOf is t's UTC calendar day, as toDate(DateTime('UTC')) computes it.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func dayLit(t time.Time) string  { return "toDate('" + t.UTC().Format(time.DateOnly) + "')" }
func uintLit(v uint64) string    { return "toUInt64(" + strconv.FormatUint(v, 10) + ")" }
func timeLit(t time.Time) string { return "toDateTime('" + t.UTC().Format(time.DateTime) + "', 'UTC')" }

func dayList(days []time.Time) string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = dayLit(d)
	}
	return strings.Join(out, ", ")
}
