-- How many people are behind our records? Per source system: records loaded, the customers they
-- resolve to, records per customer, and how many of those customers other systems know too.
WITH records_per_customer_and_source AS (
    SELECT
        customer_id,
        source,
        count(*) AS records
    FROM marts.identity_map
    GROUP BY customer_id, source
),

sources_per_customer AS (
    SELECT
        customer_id,
        count(*) AS sources
    FROM records_per_customer_and_source
    GROUP BY customer_id
)

SELECT
    r.source,
    cast(sum(r.records) AS BIGINT) AS records,
    count(*) AS customers,
    round(sum(r.records) / count(*), 2) AS records_per_customer,
    count(CASE WHEN p.sources > 1 THEN 1 END) AS customers_in_other_sources
FROM records_per_customer_and_source AS r
INNER JOIN sources_per_customer AS p ON p.customer_id = r.customer_id
GROUP BY r.source
ORDER BY records DESC, r.source;
