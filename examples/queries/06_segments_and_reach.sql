-- Where is the revenue, and whom of it can we reach? Customers, share of customers and of net
-- revenue per RFM segment (non-buyers have none), and how many may be emailed or phoned.
SELECT
    coalesce(rfm_segment, '(no orders)') AS rfm_segment,
    sum(customers) AS customers,
    round(sum(customer_share), 3) AS customer_share,
    sum(net_revenue_reporting) AS net_revenue_reporting,
    round(sum(revenue_share), 3) AS revenue_share,
    sum(email_reachable_customers) AS email_reachable_customers,
    sum(phone_reachable_customers) AS phone_reachable_customers
FROM marts.segment_summary
GROUP BY 1
ORDER BY revenue_share DESC, rfm_segment;
