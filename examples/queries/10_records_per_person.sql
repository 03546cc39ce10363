-- How many people are behind our records? Per source system: records loaded, the customers they
-- resolve to, records per customer, and how many of those customers other systems know too.
WITH sources_per_customer AS (
    SELECT customer_id, count(DISTINCT source) AS sources
    FROM marts.identity_map
    GROUP BY customer_id
)

SELECT
    m.source,
    count(*) AS records,
    count(DISTINCT m.customer_id) AS customers,
    round(count(*) / count(DISTINCT m.customer_id), 2) AS records_per_customer,
    count(DISTINCT CASE WHEN p.sources > 1 THEN m.customer_id END) AS customers_in_other_sources
FROM marts.identity_map AS m
INNER JOIN sources_per_customer AS p ON p.customer_id = m.customer_id
GROUP BY m.source
ORDER BY records DESC, m.source;
