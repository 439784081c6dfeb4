-- events: every event the engine accepted, with the profile it resolved to.
--
-- The sorting key (channel, message_id) is the event's dedup key, so a
-- replayed change (same seq) or a redelivered message collapses to one row
-- under FINAL; seq, the change-log position, picks the latest row. The
-- partition is the event's month: a message always keeps its event time, so
-- its copies share a partition and can collapse.
--
-- profile_id is the profile at resolution time. Queries that must see later
-- merges map it through profiles.merged_into (absorbed profiles) or join
-- through identity_map.
CREATE TABLE IF NOT EXISTS events
(
    channel {{LowString}},
    message_id String,
    profile_id String,
    kind {{LowString}},
    name String,
    {{Time event_time}},
    id_types Array({{LowString}}),
    id_values Array(String),
    amount_micros Int64,
    currency {{LowString}},
    csat UInt8,
    group_id String,
    traits String,
    properties String,
    consent String,
    seq UInt64,
    {{Time ingested_at}}
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(event_time)
ORDER BY (channel, message_id);
