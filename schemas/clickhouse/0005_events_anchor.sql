-- events.anchor_*: the identifier that decided the event's profile (its
-- anchor), as type plus cityHash64 of the value, so analyst queries can map
-- every event to its profile as of now through identity_map, whatever
-- merged or split since (schemas/queries). profile_id stays the profile at
-- event time.
--
-- A hash, not the value: events rows must not hold identifiers in clear
-- (erasure finds values in identity_map only). Erasure deletes events by
-- profile id and by anchor hash. Rows written before this migration have
-- anchor_hash 0 and fall back to profile_id.
--
-- One statement, so a failure leaves nothing half-added: 18.16 has no
-- ADD COLUMN IF NOT EXISTS, and the migration must be safe to rerun.
ALTER TABLE events
    ADD COLUMN anchor_type {{LowString}} AFTER id_values,
    ADD COLUMN anchor_hash UInt64 AFTER anchor_type;
