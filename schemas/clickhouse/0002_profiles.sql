-- profiles: one row per profile version; FINAL (or argMax by seq) gives the
-- current one. The typed columns are what dashboards filter and group by;
-- profile holds the full profile JSON for everything else.
--
-- The replacing version is seq, the change-log position, not the profile's
-- own version: a deletion (absorbed or erased profile) carries no profile
-- version, yet must replace the last version. seq orders every change of a
-- profile the way the engine committed them, and a replay repeats it.
--
-- deleted = 1 marks a profile id that is gone: delete_reason is "absorbed"
-- (merged_into names the survivor) or "erased". Both dialects keep deleted
-- rows visible under FINAL so queries behave the same; filter deleted = 0.
CREATE TABLE IF NOT EXISTS profiles
(
    profile_id String,
    version UInt64,
    identity_level {{LowString}},
    user_id String,
    email String,
    phone String,
    first_name String,
    last_name String,
    {{Time first_seen}},
    {{Time last_seen}},
    order_count Int64,
    lifecycle_stage {{LowString}},
    last_channel {{LowString}},
    groups Array(String),
    deleted UInt8,
    delete_reason {{LowString}},
    merged_into String,
    profile String,
    seq UInt64,
    {{Time updated_at}}
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY profile_id;
