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

-- Each buyer's products as one key. What is recommended depends on that set alone, and far
-- fewer sets than customers exist (at 1,000,000 people: 1.77 M customers, 320 k sets, 50
-- products), so each set is worked out once, on the products of one of its buyers. The sets
-- are numbered from 1 (0 is the empty set) and the work below keys on that number: grouping
-- 27 M candidate rows by the listed set itself, a long string, took 5 s at 1,000,000 people.
owned_sets as (

    select
        customer_id,
        {{ dbt.listagg('product_key', "','", 'order by product_key') }} as owned_set
    from owned
    group by customer_id

),

set_buyers as (

    select
        owned_set,
        min(customer_id) as customer_id,
        row_number() over (order by owned_set) as set_id
    from owned_sets
    group by owned_set

),

set_owned as (

    select set_buyers.set_id, owned.product_key
    from set_buyers
    inner join owned
        on set_buyers.customer_id = owned.customer_id

),

set_sizes as (

    select set_id, count(*) as owned_count
    from set_owned
    group by set_id

),

-- each product's next products ranked by confidence (ties share a rank)
ranked_affinities as (

    select
        product_key,
        next_product_key,
        confidence,
        rank() over (partition by product_key order by confidence desc) as confidence_rank
    from affinities

),

-- A set's best score is the highest confidence, from any of its products, of a product it
-- lacks. Of a product's next products, the most confident one the set lacks is among its k
-- most confident (the other k - 1 products of a set of k are all that can rank above it),
-- and so is every one as confident: only those pairs are scored.
near_candidates as (

    select
        set_owned.set_id,
        ranked_affinities.next_product_key as product_key,
        ranked_affinities.confidence
    from set_owned
    inner join set_sizes
        on set_owned.set_id = set_sizes.set_id
    inner join ranked_affinities
        on set_owned.product_key = ranked_affinities.product_key
        and ranked_affinities.confidence_rank <= set_sizes.owned_count
    left join set_owned as already
        on set_owned.set_id = already.set_id
        and ranked_affinities.next_product_key = already.product_key
    where already.product_key is null

),

best_scores as (

    select set_id, max(confidence) as score
    from near_candidates
    group by set_id

),

-- the products that reach a set's best score, with the ties' deciders from all of the set's
-- products
affinity_candidates as (

    select
        top_products.set_id,
        top_products.product_key,
        top_products.score,
        max(affinities.lift) as lift,
        max(affinities.next_product_buyers) as product_buyers
    from (
        select distinct near_candidates.set_id, near_candidates.product_key, best_scores.score
        from near_candidates
        inner join best_scores
            on near_candidates.set_id = best_scores.set_id
            and near_candidates.confidence = best_scores.score
    ) as top_products
    inner join set_owned
        on top_products.set_id = set_owned.set_id
    inner join affinities
        on set_owned.product_key = affinities.product_key
        and top_products.product_key = affinities.next_product_key
    group by top_products.set_id, top_products.product_key, top_products.score

),

affinity_best as (

    select
        set_id,
        product_key,
        score,
        lift,
        'affinity' as basis
    from affinity_candidates
    qualify row_number() over (
        partition by set_id
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

-- the sets, and the empty one of customers without orders (0)
all_sets as (

    select set_id, owned_count
    from set_sizes
    union all
    select 0 as set_id, 0 as owned_count

),

popularity_best as (

    -- a set of k products misses one of the k + 1 most popular
    select
        all_sets.set_id,
        popularity.product_key,
        cast(popularity.buyers as double) / buyer_count.buyer_count as score,
        cast(null as double) as lift,
        'popularity' as basis
    from all_sets
    left join affinity_best
        on all_sets.set_id = affinity_best.set_id
    inner join popularity
        on popularity.popularity_rank <= all_sets.owned_count + 1
    cross join buyer_count
    left join set_owned
        on all_sets.set_id = set_owned.set_id
        and popularity.product_key = set_owned.product_key
    where affinity_best.set_id is null
        and set_owned.product_key is null
    qualify row_number() over (
        partition by all_sets.set_id
        order by popularity.popularity_rank asc nulls last
    ) = 1

),

recommended as (

    select set_id, product_key, score, lift, basis from affinity_best
    union all
    select set_id, product_key, score, lift, basis from popularity_best

),

final as (

    select
        cast(customers.customer_id as {{ text }}) as customer_id,
        cast(recommended.product_key as {{ text }}) as next_best_product_key,
        cast(products.product_title as {{ text }}) as next_best_product_title,
        cast(recommended.basis as {{ text }}) as next_best_product_basis,
        cast(recommended.score as double) as next_best_product_score,
        cast(recommended.lift as double) as next_best_product_lift
    from customers
    left join owned_sets
        on customers.customer_id = owned_sets.customer_id
    left join set_buyers
        on owned_sets.owned_set = set_buyers.owned_set
    inner join recommended
        on coalesce(set_buyers.set_id, 0) = recommended.set_id
    inner join products
        on recommended.product_key = products.product_key

)

select * from final
