-- recount_requests: days whose channel roll-ups an erasure must recount.
-- The sink writes them before it deletes the person's rows, with the
-- erasure's seq. A process that stops between the deletions and the
-- recount leaves them here, and the next start recounts every day whose
-- request is newer than its roll-up row: the deleted rows themselves can
-- no longer say which days they were on. One row per day is enough (the
-- newest request), hence the ReplacingMergeTree.
CREATE TABLE IF NOT EXISTS recount_requests
(
    day Date,
    seq UInt64
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY day;
