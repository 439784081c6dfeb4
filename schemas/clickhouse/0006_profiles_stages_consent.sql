-- profiles: lifecycle steps and consent as typed parallel arrays, so the
-- funnel and consent roll-ups and queries need no JSON parsing (18.16 has
-- only visitParam*, which cannot tell a nested key from a trait of the
-- same name).
--
-- lifecycle_stages[i] was reached at lifecycle_times[i] (seconds are
-- enough for a funnel); consent_purposes[i] is granted when
-- consent_granted[i] = 1. Purposes without a recorded choice are absent.
ALTER TABLE profiles
    ADD COLUMN lifecycle_stages Array(String) AFTER lifecycle_stage,
    ADD COLUMN lifecycle_times Array(DateTime('UTC')) AFTER lifecycle_stages,
    ADD COLUMN consent_purposes Array(String) AFTER lifecycle_times,
    ADD COLUMN consent_granted Array(UInt8) AFTER consent_purposes;
