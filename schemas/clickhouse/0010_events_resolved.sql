-- events_resolved: every event with the profile its person has now. Queries
-- that count people, revenue per customer or journeys read this, so a merge
-- or split that happens later shows in every earlier event at once.
--
-- The event's anchor identifier (type + cityHash64 of the value) is looked
-- up in identity_map, which always maps an identifier to its current
-- profile: after a merge the absorbed side's identifiers map to the
-- survivor, after a split the split-off ones map to the new profile. An
-- event whose anchor has no mapping (written before 0005, or its
-- identifier erased) keeps the profile it resolved to.
--
-- Joined subqueries carry aliases (e, m): current ClickHouse requires
-- them (joined_subquery_requires_alias), and 18.16 accepts them.
--
-- A plain view: nothing is stored, so it is never stale and never counts
-- a retried insert twice (both inner reads use FINAL). Filters on the
-- outer query are applied after the join; for very large tables copy the
-- SELECT and filter events inside.
CREATE VIEW IF NOT EXISTS events_resolved AS
SELECT
    if(mapped_profile_id != '', mapped_profile_id, event_profile_id) AS profile_id,
    event_profile_id,
    channel,
    message_id,
    kind,
    name,
    event_time,
    amount_micros,
    currency,
    csat,
    group_id,
    seq
FROM
(
    SELECT
        channel, message_id, kind, name, event_time, amount_micros, currency, csat, group_id, seq,
        profile_id AS event_profile_id,
        anchor_type,
        anchor_hash
    FROM events FINAL
) AS e
ANY LEFT JOIN
(
    SELECT
        id_type AS anchor_type,
        cityHash64(id_value) AS anchor_hash,
        profile_id AS mapped_profile_id
    FROM identity_map FINAL
) AS m USING (anchor_type, anchor_hash);
