-- How is revenue developing? Orders, buyers (and how many ordered for the first time), net
-- revenue, refunds and cancellations per week, in the reporting currency.
WITH orders AS (
    SELECT
        customer_id,
        touchpoint_at,
        order_net_revenue_reporting,
        order_refunded_reporting,
        order_is_cancelled,
        touchpoint_at = min(touchpoint_at) OVER (PARTITION BY customer_id) AS is_first_order
    FROM marts.customer_touchpoints
    WHERE channel = 'order'
)

SELECT
    CAST(date_trunc('week', touchpoint_at) AS DATE) AS week,
    count(*) AS orders,
    count(DISTINCT customer_id) AS buyers,
    count(DISTINCT CASE WHEN is_first_order THEN customer_id END) AS first_time_buyers,
    sum(order_net_revenue_reporting) AS net_revenue_reporting,
    sum(order_refunded_reporting) AS refunded_reporting,
    sum(CASE WHEN order_is_cancelled THEN 1 ELSE 0 END) AS cancelled_orders
FROM orders
GROUP BY week
ORDER BY week;
