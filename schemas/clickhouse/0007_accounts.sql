-- accounts: B2B accounts (a Segment group call or a CIAM organization),
-- one row per account version; FINAL (or argMax by seq) gives the current
-- one. members are profile ids as of the change; queries map absorbed ids
-- through profiles.merged_into (schemas/queries/accounts.sql).
--
-- Rows come from the engine's canon.ChangeAccount records (a new member or
-- new account traits). seq, the change-log position, is the replacing
-- version, as for profiles.
CREATE TABLE IF NOT EXISTS accounts
(
    account_id String,
    name String,
    traits String,
    members Array(String),
    member_count UInt32,
    version UInt64,
    deleted UInt8,
    seq UInt64,
    {{Time updated_at}}
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY account_id;
