-- Roll-ups for dashboards. Each row is a pure function of the deduplicated
-- base tables (events_daily FINAL, profiles FINAL) for its day, recomputed
-- by the sink after each batch and inserted with version = the batch's last
-- change-log seq; ReplacingMergeTree(version) keeps the newest. Nothing is
-- ever incremented, so a retried insert, a replayed batch or a message the
-- engine re-emitted cannot count twice: reading with FINAL is exact.
-- schemas/queries/README.md has the argument and the queries.
--
-- rollup_channel_daily: per day and channel, events, distinct profiles (as
-- resolved when each event arrived; a uniqExact state, so ranges of days
-- merge with uniqExactMerge), orders and, per currency (parallel arrays,
-- sorted by currency), order revenue and refunds in micros.
CREATE TABLE IF NOT EXISTS rollup_channel_daily
(
    day Date,
    channel {{LowString}},
    events UInt64,
    profiles AggregateFunction(uniqExact, String),
    orders UInt64,
    currencies Array(String),
    revenue_micros Array(Int64),
    refund_micros Array(Int64),
    version UInt64,
    refreshed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (day, channel);

-- rollup_identity_daily: live profiles per identity level, as of the last
-- refresh of the day (a snapshot: a profile moves between levels, which
-- only a recount gets right).
CREATE TABLE IF NOT EXISTS rollup_identity_daily
(
    day Date,
    profiles UInt64,
    anonymous UInt64,
    pseudonymous UInt64,
    registered UInt64,
    verified UInt64,
    version UInt64,
    refreshed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY day;

-- rollup_lifecycle_daily: the lifecycle funnel as of the day's last
-- refresh: per stage (position 1..5), profiles now at it, profiles that
-- ever reached it, and the time from first seen to reaching it (mean and
-- median seconds over those that reached it). Every stage has a row, even
-- at zero, so a recount can never leave a stale row behind.
CREATE TABLE IF NOT EXISTS rollup_lifecycle_daily
(
    day Date,
    stage {{LowString}},
    position UInt8,
    current UInt64,
    reached UInt64,
    avg_seconds Float64,
    median_seconds Float64,
    version UInt64,
    refreshed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, position);

-- rollup_consent_daily: per purpose, live profiles, those with a recorded
-- choice and those that granted it, as of the day's last refresh. Every
-- purpose has a row. Rate = granted / decided (or / profiles).
CREATE TABLE IF NOT EXISTS rollup_consent_daily
(
    day Date,
    purpose {{LowString}},
    profiles UInt64,
    decided UInt64,
    granted UInt64,
    version UInt64,
    refreshed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (day, purpose);
