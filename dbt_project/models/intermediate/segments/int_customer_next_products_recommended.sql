{#-
    The next best product of each customer of customer_360: the product they are most likely
    to buy next and have not bought yet.

    - affinity: among the products co-bought with something the customer bought
      (int_product_affinities_scored), not bought by them, the one with the highest confidence
      from any product they bought (the estimated probability that a buyer of that product
      buys it too); ties go to the higher lift, then to the product more customers bought,
      then to the smaller product_key.
    - popularity: for customers without such a product (no orders, or products nobody else
      combines with theirs): the product most customers bought (ties: smaller product_key)
      that they have not bought; the score is the share of buyers who bought it.
    A customer who bought every product has no row.

    A table (its five tests took 240 s at 1,000,000 people as a view, each recomputing it).
-#}
{{ config(materialized='table') }}
{%- set text = dbt.type_string() -%}

with

customers as (

    select customer_id
    from {{ ref('customer_360') }}

),

owned as (

    select customer_id, product_key
    from {{ ref('int_customer_products_purchased') }}

),

products as (

    select product_key, min(product_title) as product_title
    from {{ ref('int_customer_products_purchased') }}
    group by product_key

),

affinities as (

    select product_key, next_product_key, confidence, lift, next_product_buyers
    from {{ ref('int_product_affinities_scored') }}

),

affinity_candidates as (

    select
        owned.customer_id,
        affinities.next_product_key as product_key,
        max(affinities.confidence) as score,
        max(affinities.lift) as lift,
        max(affinities.next_product_buyers) as product_buyers
    from owned
    inner join affinities
        on owned.product_key = affinities.product_key
    left join owned as already
        on owned.customer_id = already.customer_id
        and affinities.next_product_key = already.product_key
    where already.product_key is null
    group by owned.customer_id, affinities.next_product_key

),

affinity_best as (

    select
        customer_id,
        product_key,
        score,
        lift,
        'affinity' as basis
    from affinity_candidates
    qualify row_number() over (
        partition by customer_id
        order by
            score desc nulls last,
            lift desc nulls last,
            product_buyers desc nulls last,
            product_key asc nulls last
    ) = 1

),

popularity as (

    select
        product_key,
        count(*) as buyers,
        row_number() over (order by count(*) desc nulls last, product_key asc nulls last)
            as popularity_rank
    from owned
    group by product_key

),

buyer_count as (

    select count(distinct customer_id) as buyer_count
    from owned

),

owned_counts as (

    select customer_id, count(*) as owned_count
    from owned
    group by customer_id

),

popularity_best as (

    -- a customer owning k products finds an unowned one among the k + 1 most popular
    select
        customers.customer_id,
        popularity.product_key,
        cast(popularity.buyers as double) / buyer_count.buyer_count as score,
        cast(null as double) as lift,
        'popularity' as basis
    from customers
    left join affinity_best
        on customers.customer_id = affinity_best.customer_id
    left join owned_counts
        on customers.customer_id = owned_counts.customer_id
    inner join popularity
        on popularity.popularity_rank <= coalesce(owned_counts.owned_count, 0) + 1
    cross join buyer_count
    left join owned
        on customers.customer_id = owned.customer_id
        and popularity.product_key = owned.product_key
    where affinity_best.customer_id is null
        and owned.product_key is null
    qualify row_number() over (
        partition by customers.customer_id
        order by popularity.popularity_rank asc nulls last
    ) = 1

),

recommended as (

    select customer_id, product_key, score, lift, basis from affinity_best
    union all
    select customer_id, product_key, score, lift, basis from popularity_best

),

final as (

    select
        cast(recommended.customer_id as {{ text }}) as customer_id,
        cast(recommended.product_key as {{ text }}) as next_best_product_key,
        cast(products.product_title as {{ text }}) as next_best_product_title,
        cast(recommended.basis as {{ text }}) as next_best_product_basis,
        cast(recommended.score as double) as next_best_product_score,
        cast(recommended.lift as double) as next_best_product_lift
    from recommended
    inner join products
        on recommended.product_key = products.product_key

)

select * from final
