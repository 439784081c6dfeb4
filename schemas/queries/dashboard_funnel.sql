-- dashboard_funnel: the lifecycle funnel per day (visitor > lead >
-- registered > customer > loyal): profiles now at each stage, those that
-- ever reached it, the conversion from the stage before, and the mean and
-- median hours from first seen to reaching it (divide by 24 for
-- days).
SELECT
    day,
    toString(stage) AS stage,
    current,
    reached,
    if(prev = 0, 0, round(reached / prev, 4)) AS conversion,
    round(avg_seconds / 3600, 1) AS avg_hours,
    round(median_seconds / 3600, 1) AS median_hours
FROM
(
    SELECT
        day, stage, position, current, reached, avg_seconds, median_seconds,
        -- the stage before's reached count, same day
        arrayElement(prevs, toUInt32(position)) AS prev
    FROM (SELECT * FROM rollup_lifecycle_daily FINAL) AS stages
    ANY LEFT JOIN
    (
        SELECT day, arrayPushFront(arrayMap(x -> x.2, arraySort(groupArray((position, reached)))), toUInt64(0)) AS prevs
        FROM rollup_lifecycle_daily FINAL
        GROUP BY day
    ) AS before USING (day)
)
ORDER BY day, position
