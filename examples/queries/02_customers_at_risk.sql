-- Who is at risk? Buyers silent for longer than their usual gap between orders (lifecycle
-- at_risk or lapsed) or in a slipping RFM segment, most valuable first, and whether we may
-- contact them (and if not, why).
SELECT
    s.customer_id,
    c.first_name,
    c.email,
    c.phone,
    s.lifecycle_stage,
    s.rfm_segment,
    s.recency_days,
    s.frequency_orders,
    s.net_revenue_reporting,
    round(s.p_alive, 3) AS p_alive,
    s.is_email_reachable,
    s.email_suppression_reason,
    s.is_phone_reachable
FROM marts.customer_segments AS s
INNER JOIN marts.customer_360 AS c ON c.customer_id = s.customer_id
WHERE s.lifecycle_stage IN ('at_risk', 'lapsed')
    OR s.rfm_segment IN ('At Risk', 'Can''t Lose Them', 'About to Sleep')
ORDER BY s.net_revenue_reporting DESC, s.customer_id
LIMIT 50;
