{#-
    One row per customer of customer_360: who matters and whom to contact. RFM scores and
    segment (int_customer_rfm_scored), lifecycle stage (int_customer_lifecycles_staged),
    Pareto value tier (int_customer_value_tiers_ranked), next best product
    (int_customer_next_products_recommended) and reachability per channel
    (int_customer_addresses_screened); the rules are in those models and in
    _segments__models.yml. Grain and key are customer_360's, so predictions (a later
    clv_predictions model: p_alive, expected purchases, expected spend per order, 12-month
    lifetime value) join here on customer_id.
-#}
{%- set text = dbt.type_string() -%}

with

customers as (

    select customer_id, is_known, net_revenue_reporting, as_of_date
    from {{ ref('customer_360') }}

),

rfm as (

    select * from {{ ref('int_customer_rfm_scored') }}

),

lifecycles as (

    select * from {{ ref('int_customer_lifecycles_staged') }}

),

value_tiers as (

    select * from {{ ref('int_customer_value_tiers_ranked') }}

),

next_products as (

    select * from {{ ref('int_customer_next_products_recommended') }}

),

reachability as (

    select * from {{ ref('int_customer_addresses_screened') }}

),

predictions as (

    select * from {{ ref('clv_predictions') }}

),

final as (

    select
        cast(customers.customer_id as {{ text }}) as customer_id,
        customers.is_known,
        cast(lifecycles.lifecycle_stage as {{ text }}) as lifecycle_stage,
        cast(rfm.rfm_segment as {{ text }}) as rfm_segment,
        cast(rfm.recency_score as integer) as recency_score,
        cast(rfm.frequency_score as integer) as frequency_score,
        cast(rfm.monetary_score as integer) as monetary_score,
        cast(rfm.frequency_monetary_score as integer) as frequency_monetary_score,
        cast(rfm.rfm_code as {{ text }}) as rfm_code,
        cast(rfm.recency_days as integer) as recency_days,
        cast(rfm.frequency_orders as bigint) as frequency_orders,
        cast(customers.net_revenue_reporting as decimal(18, 2)) as net_revenue_reporting,
        cast(lifecycles.typical_order_gap_days as double) as typical_order_gap_days,
        cast(lifecycles.at_risk_after_days as double) as at_risk_after_days,
        cast(lifecycles.lapsed_after_days as double) as lapsed_after_days,
        cast(value_tiers.value_tier as {{ text }}) as value_tier,
        cast(value_tiers.revenue_rank as bigint) as revenue_rank,
        cast(value_tiers.cumulative_revenue_share as double) as cumulative_revenue_share,
        cast(next_products.next_best_product_key as {{ text }}) as next_best_product_key,
        cast(next_products.next_best_product_title as {{ text }}) as next_best_product_title,
        cast(next_products.next_best_product_basis as {{ text }}) as next_best_product_basis,
        cast(next_products.next_best_product_score as double) as next_best_product_score,
        cast(next_products.next_best_product_lift as double) as next_best_product_lift,
        cast(predictions.p_alive as double) as p_alive,
        cast(predictions.expected_purchases_90d as double) as expected_purchases_90d,
        cast(predictions.expected_spend_per_order as double) as expected_spend_per_order,
        cast(predictions.clv as double) as predicted_clv,
        cast(predictions.clv_horizon_months as integer) as clv_horizon_months,
        cast(predictions.prediction_method as {{ text }}) as prediction_method,
        reachability.is_email_reachable,
        cast(reachability.email_suppression_reason as {{ text }}) as email_suppression_reason,
        reachability.is_phone_reachable,
        cast(reachability.phone_suppression_reason as {{ text }}) as phone_suppression_reason,
        customers.as_of_date
    from customers
    left join rfm on customers.customer_id = rfm.customer_id
    left join lifecycles on customers.customer_id = lifecycles.customer_id
    left join value_tiers on customers.customer_id = value_tiers.customer_id
    left join next_products on customers.customer_id = next_products.customer_id
    left join reachability on customers.customer_id = reachability.customer_id
    left join predictions on customers.customer_id = predictions.customer_id

)

select * from final
