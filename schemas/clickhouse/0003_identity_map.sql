-- identity_map: which profile each identifier belongs to now. One row per
-- (id_type, id_value) survives FINAL; seq, the change-log position, picks
-- the latest (version is the engine's mapping version, kept for reference).
--
-- Identifiers removed by erasure are deleted (a mutation), not tombstoned:
-- a tombstone would keep the erased value in clear.
CREATE TABLE IF NOT EXISTS identity_map
(
    id_type {{LowString}},
    id_value String,
    profile_id String,
    version UInt64,
    deleted UInt8,
    seq UInt64,
    {{Time updated_at}}
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY (id_type, id_value);
