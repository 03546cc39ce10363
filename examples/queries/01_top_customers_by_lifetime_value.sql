-- Who are our most valuable customers? Net revenue so far plus the value the CLV model expects
-- over the next clv_horizon_months (12), the probability they still buy, and their value tier.
SELECT
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    c.country,
    c.order_count,
    c.net_revenue_reporting,
    round(s.predicted_clv, 2) AS predicted_clv,
    round(s.p_alive, 3) AS p_alive,
    c.net_revenue_reporting + coalesce(round(s.predicted_clv, 2), 0) AS lifetime_value,
    s.value_tier
FROM marts.customer_360 AS c
INNER JOIN marts.customer_segments AS s ON s.customer_id = c.customer_id
WHERE c.order_count > 0
ORDER BY lifetime_value DESC, c.customer_id
LIMIT 20;
