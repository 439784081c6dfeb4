-- journeys: cross-channel journeys. Each person's channels in event-time
-- order, repeats in a row collapsed ("web > ciam > pos"), counted per
-- path; people seen on one channel only are left out. People are
-- profiles as of now, so a journey that began on an anonymous profile and
-- went on after a merge is one path.
SELECT
    path,
    count() AS people
FROM
(
    SELECT arrayStringConcat(arrayFilter((c, i) -> i = 1 OR c != chans[i - 1], chans, arrayEnumerate(chans)), ' > ') AS path
    FROM
    (
        SELECT
            profile_id,
            arrayMap(x -> x.2, arraySort(groupArray((event_time, toString(channel), message_id)))) AS chans
        FROM events_resolved
        WHERE profile_id != '' -- parked events are no one's
        GROUP BY profile_id
    )
    WHERE arrayUniq(chans) > 1
)
GROUP BY path
ORDER BY people DESC, path
