-- dashboard_channels: events, distinct profiles and orders per day and
-- channel, from the roll-up. Distinct profiles over a range of days:
-- uniqExactMerge(profiles) grouped by channel, never a sum of the daily
-- counts. Profiles here are as resolved when each event arrived; for
-- people as of now use people.sql.
SELECT
    day,
    toString(channel) AS channel,
    events,
    finalizeAggregation(profiles) AS profiles,
    orders
FROM rollup_channel_daily FINAL
ORDER BY day, channel
