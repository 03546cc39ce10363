{#-
    Monthly acquisition cohorts: customers by the calendar month of their first order
    (int_customer_orders_sequenced, orders not cancelled), followed month by month.

    One row per cohort month and months since the first order (0, 1, ... up to the month of
    customer_360.as_of_date): cohort_customers (the cohort's size), retained_customers (those
    of the cohort who ordered in that calendar month; all of them in month 0), retention_rate
    = retained / cohort size, retention_rate_change (against the month before: the drops),
    the month's net revenue of the cohort and the cumulative net revenue per cohort customer
    up to and including it. is_complete_month is false for the month the as-of date falls in
    (still filling up).
-#}
{%- set text = dbt.type_string() -%}

with

orders as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'ordered_at') }} as date) as order_month,
        net_revenue_reporting
    from {{ ref('int_customer_orders_sequenced') }}

),

as_of as (

    select max(as_of_date) as as_of_date
    from {{ ref('customer_360') }}

),

first_orders as (

    select customer_id, min(order_month) as cohort_month
    from orders
    group by customer_id

),

cohorts as (

    select cohort_month, count(*) as cohort_customers
    from first_orders
    group by cohort_month

),

activity as (

    select
        first_orders.cohort_month,
        cast({{ dbt.datediff('first_orders.cohort_month', 'orders.order_month', 'month') }} as integer)
            as months_since_first_order,
        count(distinct orders.customer_id) as retained_customers,
        sum(orders.net_revenue_reporting) as revenue
    from orders
    inner join first_orders
        on orders.customer_id = first_orders.customer_id
    group by
        first_orders.cohort_month,
        cast({{ dbt.datediff('first_orders.cohort_month', 'orders.order_month', 'month') }} as integer)

),

month_offsets as (

    select cast(generated_number as integer) - 1 as months_since_first_order
    from ({{ dbt.generate_series(1200) }}) as series

),

spine as (

    select
        cohorts.cohort_month,
        cohorts.cohort_customers,
        month_offsets.months_since_first_order,
        as_of.as_of_date
    from cohorts
    cross join as_of
    inner join month_offsets
        on month_offsets.months_since_first_order
            <= {{ dbt.datediff('cohorts.cohort_month', 'as_of.as_of_date', 'month') }}

),

filled as (

    select
        spine.cohort_month,
        spine.months_since_first_order,
        spine.cohort_customers,
        spine.as_of_date,
        coalesce(activity.retained_customers, 0) as retained_customers,
        coalesce(activity.revenue, 0) as revenue,
        sum(coalesce(activity.revenue, 0)) over (
            partition by spine.cohort_month
            order by spine.months_since_first_order asc nulls last
            rows between unbounded preceding and current row
        ) as cumulative_revenue
    from spine
    left join activity
        on spine.cohort_month = activity.cohort_month
        and spine.months_since_first_order = activity.months_since_first_order

),

rated as (

    select
        *,
        cast(retained_customers as double) / cohort_customers as retention_rate
    from filled

),

final as (

    select
        cohort_month,
        months_since_first_order,
        cast({{ dbt.dateadd('month', 'months_since_first_order', 'cohort_month') }} as date)
            as activity_month,
        cast(cohort_customers as bigint) as cohort_customers,
        cast(retained_customers as bigint) as retained_customers,
        cast(retention_rate as double) as retention_rate,
        cast(
            retention_rate - lag(retention_rate) over (
                partition by cohort_month
                order by months_since_first_order asc nulls last
            ) as double
        ) as retention_rate_change,
        cast(revenue as decimal(18, 2)) as net_revenue_reporting,
        cast(cumulative_revenue as decimal(18, 2)) as cumulative_net_revenue_reporting,
        cast(cast(cumulative_revenue as double) / cohort_customers as double)
            as cumulative_revenue_per_customer,
        cast({{ dbt.last_day('cast(' ~ dbt.dateadd('month', 'months_since_first_order', 'cohort_month') ~ ' as date)', 'month') }} as date)
            <= as_of_date as is_complete_month
    from rated

)

select * from final
