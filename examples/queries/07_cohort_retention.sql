-- Do new buyers come back? For each month's first-time buyers, how many ordered again N months
-- later, the retention rate, and the revenue per customer of the cohort so far.
SELECT
    cohort_month,
    months_since_first_order,
    cohort_customers,
    retained_customers,
    round(retention_rate, 3) AS retention_rate,
    round(cumulative_revenue_per_customer, 2) AS cumulative_revenue_per_customer,
    is_complete_month
FROM marts.cohort_retention
ORDER BY cohort_month, months_since_first_order;
