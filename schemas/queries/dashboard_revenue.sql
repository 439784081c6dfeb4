-- dashboard_revenue: order revenue and refunds per day and currency, in
-- micros, from the roll-up (summed over channels; never across
-- currencies). Output names differ from the array columns on purpose:
-- ClickHouse aliases are global, and reusing one would shadow the column.
SELECT
    day,
    currency,
    sum(rev) AS revenue,
    sum(ref) AS refunds
FROM rollup_channel_daily FINAL
ARRAY JOIN currencies AS currency, revenue_micros AS rev, refund_micros AS ref
GROUP BY day, currency
ORDER BY day, currency
