-- accounts: B2B accounts with their distinct members as of now and the
-- members' orders. A member id that was absorbed counts as its survivor
-- (profiles.merged_into, one hop: the engine is to re-emit an account
-- whose member was absorbed, so longer chains only affect rows written
-- before that), and each survivor's orders count once.
SELECT
    account_id,
    any(name) AS name,
    count() AS members,
    sum(order_count) AS orders
FROM
(
    SELECT DISTINCT account_id, name, if(merged_into != '', merged_into, m) AS member
    FROM
    (
        SELECT account_id, name, m
        FROM (SELECT account_id, name, members FROM accounts FINAL WHERE deleted = 0)
        ARRAY JOIN members AS m
    ) AS am
    ANY LEFT JOIN
    (
        SELECT profile_id AS m, merged_into
        FROM profiles FINAL
    ) AS merged USING (m)
) AS members
ANY LEFT JOIN
(
    SELECT profile_id AS member, order_count
    FROM profiles FINAL
) AS orders USING (member)
GROUP BY account_id
ORDER BY account_id
