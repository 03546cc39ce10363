{#-
    Per RFM segment and value tier: how many customers, what share of net revenue they make,
    and how many can be contacted by email and by phone (int_customer_addresses_screened, the
    rule audience exports apply). Customers without orders have no RFM segment and are
    summed under '(no orders)'. Every customer of customer_segments is in exactly one row.
-#}
{%- set text = dbt.type_string() -%}

with

customers as (

    select
        coalesce(rfm_segment, '(no orders)') as rfm_segment,
        value_tier,
        net_revenue_reporting,
        is_email_reachable,
        is_phone_reachable,
        predicted_clv
    from {{ ref('customer_segments') }}

),

totals as (

    select
        count(*) as all_customers,
        sum(net_revenue_reporting) as all_net_revenue
    from customers

),

grouped as (

    select
        rfm_segment,
        value_tier,
        count(*) as customers,
        sum(net_revenue_reporting) as net_revenue_reporting,
        sum(case when is_email_reachable then 1 else 0 end) as email_reachable_customers,
        sum(case when is_phone_reachable then 1 else 0 end) as phone_reachable_customers,
        sum(case when is_email_reachable or is_phone_reachable then 1 else 0 end)
            as reachable_customers,
        avg(predicted_clv) as average_predicted_clv
    from customers
    group by rfm_segment, value_tier

),

final as (

    select
        cast(grouped.rfm_segment as {{ text }}) as rfm_segment,
        cast(grouped.value_tier as {{ text }}) as value_tier,
        cast(grouped.customers as bigint) as customers,
        cast(grouped.customers as double) / totals.all_customers as customer_share,
        cast(grouped.net_revenue_reporting as decimal(18, 2)) as net_revenue_reporting,
        cast(
            case
                when totals.all_net_revenue <> 0
                    then cast(grouped.net_revenue_reporting as double)
                        / cast(totals.all_net_revenue as double)
            end as double
        ) as revenue_share,
        cast(grouped.email_reachable_customers as bigint) as email_reachable_customers,
        cast(grouped.phone_reachable_customers as bigint) as phone_reachable_customers,
        cast(grouped.reachable_customers as bigint) as reachable_customers,
        cast(grouped.average_predicted_clv as double) as average_predicted_clv
    from grouped
    cross join totals

)

select * from final
