{#-
    Co-purchase affinity between products, from what the same customers bought (at any time,
    not only in one basket): one row per ordered pair (product_key -> next_product_key) that
    at least var next_product_min_co_buyers customers bought both of.

    - co_buyers: customers who bought both; product_buyers, next_product_buyers: customers who
      bought each; buyer_count: customers who bought anything.
    - confidence = co_buyers / product_buyers: of the customers who bought the product, the
      share who also bought the next product, the estimate of P(buys next | bought product).
    - lift = confidence / (next_product_buyers / buyer_count): how much more likely than for
      any customer (1 = no affinity).

    A table (its tests took 29 s at 1,000,000 people as a view, each recomputing it, and the
    recommendations read it).
-#}
{{ config(materialized='table') }}
{%- set min_co_buyers = var('next_product_min_co_buyers', 2) | int -%}
{%- set text = dbt.type_string() -%}

with

customer_products as (

    select customer_id, product_key
    from {{ ref('int_customer_products_purchased') }}

),

buyer_count as (

    select count(distinct customer_id) as buyer_count
    from customer_products

),

product_buyers as (

    select product_key, count(*) as buyers
    from customer_products
    group by product_key

),

pairs as (

    select
        bought.product_key,
        next_product.product_key as next_product_key,
        count(*) as co_buyers
    from customer_products as bought
    inner join customer_products as next_product
        on bought.customer_id = next_product.customer_id
        and bought.product_key <> next_product.product_key
    group by bought.product_key, next_product.product_key
    having count(*) >= {{ min_co_buyers }}

),

final as (

    select
        cast(pairs.product_key as {{ text }}) as product_key,
        cast(pairs.next_product_key as {{ text }}) as next_product_key,
        cast(pairs.co_buyers as bigint) as co_buyers,
        cast(product_buyers.buyers as bigint) as product_buyers,
        cast(next_product_buyers.buyers as bigint) as next_product_buyers,
        cast(buyer_count.buyer_count as bigint) as buyer_count,
        cast(pairs.co_buyers as double) / product_buyers.buyers as confidence,
        (cast(pairs.co_buyers as double) / product_buyers.buyers)
            / (cast(next_product_buyers.buyers as double) / buyer_count.buyer_count) as lift
    from pairs
    inner join product_buyers
        on pairs.product_key = product_buyers.product_key
    inner join product_buyers as next_product_buyers
        on pairs.next_product_key = next_product_buyers.product_key
    cross join buyer_count

)

select * from final
