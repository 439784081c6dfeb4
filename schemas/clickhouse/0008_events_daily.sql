-- events_daily: a narrow copy of events sorted by day, which the roll-up
-- refresh and day-range queries read by primary key instead of scanning a
-- month of events (sorted by channel, message_id for dedup).
--
-- It is fed by a MATERIALIZED VIEW, and stays exact under retried inserts
-- for the same reason events does: it is a ReplacingMergeTree whose key
-- holds the event's dedup key (channel, message_id) and whose version is
-- seq, so a block the view pushes twice collapses under FINAL. Nothing in
-- it is pre-summed; sums happen in the refresh (schemas/queries/README.md).
--
-- Erasure deletes from it like from events (the sink runs both mutations):
-- a mutation on events does not reach rows a view copied.
CREATE TABLE IF NOT EXISTS events_daily
(
    day Date,
    channel {{LowString}},
    message_id String,
    profile_id String,
    anchor_type {{LowString}},
    anchor_hash UInt64,
    kind {{LowString}},
    currency {{LowString}},
    amount_micros Int64,
    seq UInt64
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(day)
ORDER BY (day, channel, message_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_daily_mv TO events_daily AS
SELECT
    toDate(event_time) AS day,
    channel,
    message_id,
    profile_id,
    anchor_type,
    anchor_hash,
    kind,
    currency,
    amount_micros,
    seq
FROM events;

-- Backfill what events held before the view existed. Rows inserted between
-- the two statements arrive twice and collapse; rerunning is harmless.
INSERT INTO events_daily (day, channel, message_id, profile_id, anchor_type, anchor_hash, kind, currency, amount_micros, seq)
SELECT toDate(event_time), channel, message_id, profile_id, anchor_type, anchor_hash, kind, currency, amount_micros, seq
FROM events;
