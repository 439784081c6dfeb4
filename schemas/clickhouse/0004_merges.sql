-- merges: the identity log (merge, split, conflict, quarantine, release,
-- candidate, link, unlink, erase), one row per change-log record. seq is the
-- key, so a replayed record collapses under FINAL.
--
-- others lists absorbed, split-off or conflicting profiles; erasure deletes
-- the rows whose profile_id or others name an erased profile. For erase
-- records id_value is a keyed hash, never the value.
CREATE TABLE IF NOT EXISTS merges
(
    seq UInt64,
    type {{LowString}},
    profile_id String,
    others Array(String),
    id_type {{LowString}},
    id_value String,
    reason String,
    evidence_channel {{LowString}},
    evidence_message_id String,
    {{Time evidence_time}},
    evidence_trust {{LowString}},
    {{Time logged_at}}
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(logged_at)
ORDER BY seq;
