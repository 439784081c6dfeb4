-- people: how many people the events are from, and how many of them are
-- customers (at least one order), counted by the profile each person has
-- now. A person whose anonymous and registered profiles merged after the
-- fact counts once; a profile that was split counts as the people it
-- became.
SELECT
    uniqExact(profile_id) AS people,
    uniqExactIf(profile_id, kind = 'order') AS customers
FROM events_resolved
