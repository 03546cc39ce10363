-- What does one customer's journey look like? Every touchpoint, across channels, of the known
-- customer with the most touchpoints (put any customer_id in the WHERE clause instead).
SELECT
    customer_id,
    touchpoint_at,
    channel,
    event_type,
    campaign_name,
    url,
    call_direction,
    call_wait_seconds,
    call_disposition,
    order_number,
    order_net_revenue_reporting
FROM marts.customer_touchpoints
WHERE customer_id = (
    SELECT customer_id FROM marts.customer_360
    WHERE is_known
    ORDER BY touchpoint_count DESC, customer_id
    LIMIT 1
)
ORDER BY touchpoint_at, record_key;
