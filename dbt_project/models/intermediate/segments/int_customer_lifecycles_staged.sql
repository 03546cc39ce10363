{#-
    Lifecycle stage of every customer of customer_360 across the whole journey, from the first
    anonymous visit to a lapsed or won-back buyer. Rules, first match wins (vars in
    dbt_project.yml, days counted to customer_360.as_of_date):

    - anonymous_visitor: not customer_360.is_known (browser cookies only).
    - Known, without an order (not cancelled):
      - lead: shows buying intent: a CRM lifecycle stage of var lifecycle_lead_crm_stages, a
        click in an email, or a cancelled order;
      - known_prospect: otherwise.
    - With orders, judged against the customer's typical gap between orders: their own mean
      gap ((last order date - first order date) / (orders - 1)) when they ordered twice or
      more, else the base gap of the customer base; never less than var
      lifecycle_min_order_gap_days (two orders on one day are no rhythm). The base gap is var
      lifecycle_base_order_gap_days, or when null (the default) the pooled gap of all buyers:
      the days from each buyer's first order to the as-of date, summed, over their repeat
      orders (orders - 1), summed (the maximum-likelihood mean gap if each buyer ordered at a
      steady rate; one-order buyers count with their exposure and no repeat).
      - lapsed: days since the last order > var lifecycle_lapsed_gap_multiple x typical gap;
      - at_risk: days since the last order > var lifecycle_at_risk_gap_multiple x typical gap;
      - win_back: the last order came after a silence that had made the customer lapsed: the
        days between the last two orders > lifecycle_lapsed_gap_multiple x the typical gap of
        the orders before the last (their own mean gap with three or more orders, else the
        base gap; the same floor);
      - loyal: at least var lifecycle_loyal_min_orders orders;
      - repeat_buyer: two orders or more;
      - first_time_buyer: one order.
-#}
{#- A table, not a view: as a view each of its four tests recomputed it from customer_360 (1.7 s
    of a one-new-day run at 1,000,000 people with one dbt thread, 7 s beside other models with
    two); customer_segments reads it once. -#}
{{ config(materialized='table') }}

{%- set at_risk_multiple = var('lifecycle_at_risk_gap_multiple', 2) -%}
{%- set lapsed_multiple = var('lifecycle_lapsed_gap_multiple', 4) -%}
{%- set min_gap_days = var('lifecycle_min_order_gap_days', 7) -%}
{%- set base_gap_days = var('lifecycle_base_order_gap_days', none) -%}
{%- set loyal_min_orders = var('lifecycle_loyal_min_orders', 4) | int -%}
{%- set lead_stages = var('lifecycle_lead_crm_stages', ['lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity']) -%}
{#- `crm360 run --var` passes text: a list as YAML text, null as 'null'. -#}
{%- if lead_stages is string -%}{%- set lead_stages = fromyaml(lead_stages) -%}{%- endif -%}
{%- if base_gap_days is string and base_gap_days | trim | lower in ('', 'null', 'none') -%}
    {%- set base_gap_days = none -%}
{%- endif -%}
{%- set text = dbt.type_string() -%}

with

customers as (

    select
        customer_id,
        is_known,
        cancelled_order_count,
        lower(lifecycle_stage) as crm_lifecycle_stage,
        email_click_rate,
        as_of_date
    from {{ ref('customer_360') }}

),

orders as (

    select customer_id, order_sequence, order_date
    from {{ ref('int_customer_orders_sequenced') }}

),

order_totals as (

    select
        customer_id,
        count(*) as order_count,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from orders
    group by customer_id

),

previous_orders as (

    select
        orders.customer_id,
        orders.order_date as previous_order_date
    from orders
    inner join order_totals
        on orders.customer_id = order_totals.customer_id
        and orders.order_sequence = order_totals.order_count - 1

),

buyer_gaps as (

    select
        order_totals.customer_id,
        order_totals.order_count,
        {{ dbt.datediff('order_totals.first_order_date', 'customers.as_of_date', 'day') }}
            as days_since_first_order,
        {{ dbt.datediff('order_totals.last_order_date', 'customers.as_of_date', 'day') }}
            as days_since_last_order,
        {{ dbt.datediff('previous_orders.previous_order_date', 'order_totals.last_order_date', 'day') }}
            as days_before_last_order,
        case
            when order_totals.order_count >= 2
                then {{ dbt.datediff('order_totals.first_order_date', 'order_totals.last_order_date', 'day') }}
                    / cast(order_totals.order_count - 1 as double)
        end as own_gap_days,
        case
            when order_totals.order_count >= 3
                then {{ dbt.datediff('order_totals.first_order_date', 'previous_orders.previous_order_date', 'day') }}
                    / cast(order_totals.order_count - 2 as double)
        end as own_gap_before_last_order_days
    from order_totals
    inner join customers
        on order_totals.customer_id = customers.customer_id
    left join previous_orders
        on order_totals.customer_id = previous_orders.customer_id

),

base_gap as (

    {%- if base_gap_days is not none %}
    select cast({{ base_gap_days }} as double) as base_gap_days
    {%- else %}
    select
        cast(sum(days_since_first_order) as double) / nullif(sum(order_count - 1), 0)
            as base_gap_days
    from buyer_gaps
    {%- endif %}

),

buyer_references as (

    select
        buyer_gaps.customer_id,
        buyer_gaps.order_count,
        buyer_gaps.days_since_last_order,
        buyer_gaps.days_before_last_order,
        greatest(
            coalesce(buyer_gaps.own_gap_days, base_gap.base_gap_days, {{ min_gap_days }}),
            {{ min_gap_days }}
        ) as typical_gap_days,
        greatest(
            coalesce(buyer_gaps.own_gap_before_last_order_days, base_gap.base_gap_days, {{ min_gap_days }}),
            {{ min_gap_days }}
        ) as typical_gap_before_last_order_days
    from buyer_gaps
    cross join base_gap

),

staged as (

    select
        customers.customer_id,
        buyer_references.order_count,
        buyer_references.days_since_last_order,
        buyer_references.typical_gap_days,
        case
            when not customers.is_known then 'anonymous_visitor'
            when buyer_references.customer_id is null then
                case
                    when customers.crm_lifecycle_stage in (
                        {%- for stage in lead_stages %}'{{ stage | lower }}'{% if not loop.last %}, {% endif %}{% endfor -%}
                    )
                        or customers.email_click_rate > 0
                        or customers.cancelled_order_count > 0
                        then 'lead'
                    else 'known_prospect'
                end
            when buyer_references.days_since_last_order
                > {{ lapsed_multiple }} * buyer_references.typical_gap_days then 'lapsed'
            when buyer_references.days_since_last_order
                > {{ at_risk_multiple }} * buyer_references.typical_gap_days then 'at_risk'
            when buyer_references.order_count >= 2
                and buyer_references.days_before_last_order
                    > {{ lapsed_multiple }} * buyer_references.typical_gap_before_last_order_days
                then 'win_back'
            when buyer_references.order_count >= {{ loyal_min_orders }} then 'loyal'
            when buyer_references.order_count >= 2 then 'repeat_buyer'
            else 'first_time_buyer'
        end as lifecycle_stage
    from customers
    left join buyer_references
        on customers.customer_id = buyer_references.customer_id

),

final as (

    select
        cast(customer_id as {{ text }}) as customer_id,
        cast(lifecycle_stage as {{ text }}) as lifecycle_stage,
        cast(days_since_last_order as integer) as days_since_last_order,
        cast(typical_gap_days as double) as typical_order_gap_days,
        cast({{ at_risk_multiple }} * typical_gap_days as double) as at_risk_after_days,
        cast({{ lapsed_multiple }} * typical_gap_days as double) as lapsed_after_days
    from staged

)

select * from final
