{#-
    Pareto (ABC) view of net revenue: every customer of customer_360 with a value tier.

    Customers with positive net revenue are ranked by it (highest first; ties by customer_id).
    cumulative_revenue_share is the share of all net revenue that the customers ranked up to
    and including this one produce. A customer's tier is decided by the share produced by the
    customers ranked before them, against the bounds of var value_tier_revenue_shares
    ([0.5, 0.8, 0.95]): below 0.5 -> A (the fewest customers who make half the revenue; the
    customer who crosses the line is in), below 0.8 -> B, below 0.95 -> C, else D. Customers
    with no positive net revenue (no orders, or everything refunded) are tier none.
-#}
{#- A table, not a view: its three tests and customer_segments each ranked every customer
    again (0.7-0.8 s of the tests in a one-new-day build at 1,000,000 people). -#}
{{ config(materialized='table') }}
{%- set bounds = var('value_tier_revenue_shares', [0.5, 0.8, 0.95]) -%}
{#- `crm360 run --var` passes text: a list as YAML text. -#}
{%- if bounds is string -%}{%- set bounds = fromyaml(bounds) -%}{%- endif -%}
{%- set tiers = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'] -%}
{%- set text = dbt.type_string() -%}

with

customers as (

    select customer_id, net_revenue_reporting
    from {{ ref('customer_360') }}

),

ranked as (

    select
        customer_id,
        net_revenue_reporting,
        row_number() over (
            order by net_revenue_reporting desc nulls last, customer_id asc nulls last
        ) as revenue_rank,
        sum(net_revenue_reporting) over (
            order by net_revenue_reporting desc nulls last, customer_id asc nulls last
            rows between unbounded preceding and current row
        ) as cumulative_revenue,
        sum(net_revenue_reporting) over () as total_revenue
    from customers
    where net_revenue_reporting > 0

),

shared as (

    select
        customer_id,
        revenue_rank,
        cast(cumulative_revenue as double) / cast(total_revenue as double)
            as cumulative_revenue_share,
        cast(cumulative_revenue - net_revenue_reporting as double) / cast(total_revenue as double)
            as preceding_revenue_share
    from ranked

),

final as (

    select
        cast(customers.customer_id as {{ text }}) as customer_id,
        cast(
            case
                when shared.customer_id is null then 'none'
                {%- for bound in bounds %}
                when shared.preceding_revenue_share < {{ bound }} then '{{ tiers[loop.index0] }}'
                {%- endfor %}
                else '{{ tiers[bounds | length] }}'
            end as {{ text }}
        ) as value_tier,
        cast(shared.revenue_rank as bigint) as revenue_rank,
        cast(shared.cumulative_revenue_share as double) as cumulative_revenue_share
    from customers
    left join shared
        on customers.customer_id = shared.customer_id

)

select * from final
