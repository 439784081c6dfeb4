-- revenue_per_customer: per currency (money is never converted), the
-- customers who ordered, their orders, revenue and the mean revenue per
-- customer, in micros (millionths of the currency unit). Customers are
-- profiles as of now, so orders placed before a merge add up in the
-- survivor. A parked order (only quarantined identifiers) is no
-- customer's and is left out; the channel roll-ups count it.
SELECT
    currency,
    uniqExact(profile_id) AS customers,
    count() AS orders,
    sum(amount_micros) AS revenue_micros,
    intDiv(sum(amount_micros), uniqExact(profile_id)) AS revenue_per_customer_micros
FROM events_resolved
WHERE kind = 'order' AND profile_id != ''
GROUP BY currency
ORDER BY currency
