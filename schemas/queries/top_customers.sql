-- top_customers: revenue per customer and currency, largest first, with
-- the channels each bought on. Add a time filter (event_time >= ...) to
-- the WHERE for a period.
SELECT
    profile_id,
    currency,
    count() AS orders,
    sum(amount_micros) AS revenue_micros,
    arraySort(groupUniqArray(toString(channel))) AS channels
FROM events_resolved
WHERE kind = 'order' AND profile_id != '' -- a parked order is no one's
GROUP BY profile_id, currency
ORDER BY revenue_micros DESC, profile_id, currency
LIMIT 100
