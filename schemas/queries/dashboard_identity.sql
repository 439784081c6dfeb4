-- dashboard_identity: live profiles per identity level at the end of each
-- day (the day's last snapshot), and the share that is known (registered
-- or verified).
SELECT
    day,
    profiles,
    anonymous,
    pseudonymous,
    registered,
    verified,
    if(profiles = 0, 0, round((registered + verified) / profiles, 4)) AS known_share
FROM rollup_identity_daily FINAL
ORDER BY day
