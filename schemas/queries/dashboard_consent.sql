-- dashboard_consent: per day and purpose, the share of live profiles that
-- made a choice and, of those, the share that granted it.
SELECT
    day,
    toString(purpose) AS purpose,
    profiles,
    decided,
    granted,
    if(profiles = 0, 0, round(decided / profiles, 4)) AS decided_share,
    if(decided = 0, 0, round(granted / decided, 4)) AS grant_rate
FROM rollup_consent_daily FINAL
ORDER BY day, purpose
