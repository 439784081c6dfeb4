-- people: how many people the events are from, and how many of them are
-- customers (at least one order), counted by the profile each person has
-- now. A person whose anonymous and registered profiles merged after the
-- fact counts once; a profile that was split counts as the people it
-- became. Parked events (only quarantined identifiers) are no one's.
SELECT
    uniqExactIf(profile_id, profile_id != '') AS people,
    uniqExactIf(profile_id, kind = 'order' AND profile_id != '') AS customers
FROM events_resolved
