{#-
    What happened to customer ids, run by run, so that downstream systems holding an id can
    follow it. Derived from the identity_map rows written since the newest event here (their
    assigned_at is later), comparing each record's customer_id with its previous_customer_id:
      - created: an id that did not exist before the run; related_customer_id is the id most
        of its records had before (a split-off), NULL for a new person;
      - merged: an id that no longer exists; its records went to related_customer_id;
      - split: an id that still exists but some of its records went to related_customer_id
        (a new id, or another existing one).
    records_affected: the records the id got (created) or gave away (merged, split).
    Append-only (incremental): the history of earlier runs is never rewritten.
-#}
{{
    config(
        materialized='incremental',
        unique_key='history_id',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

{#- identity_map is read where it is used, each time with its own filter (pushed into the scan),
    not through one CTE: DuckDB materialises a CTE read twice, all of identity_map. -#}
{%- set identity_map = ref('identity_map') %}

with


cutoff as (

    {% if is_incremental() %}
    select max(recorded_at) as recorded_before from {{ this }}
    {% else %}
    select cast(null as timestamp) as recorded_before
    {% endif %}

),

changed as (

    select identity_map.*
    from {{ identity_map }} as identity_map
    cross join cutoff
    where cutoff.recorded_before is null
        or identity_map.assigned_at > cutoff.recorded_before

),

-- ids that existed before these changes, and ids that exist after them
ids_before as (

    select distinct identity_map.customer_id
    from {{ identity_map }} as identity_map
    cross join cutoff
    where identity_map.assigned_at <= cutoff.recorded_before
        -- only the ids the run's records carry are asked about
        and identity_map.customer_id in (select customer_id from changed)

    union

    select previous_customer_id as customer_id
    from changed
    where previous_customer_id is not null

),

ids_after as (

    select distinct customer_id
    from {{ identity_map }}
    -- only the ids records moved away from are asked about
    where customer_id in (
        select previous_customer_id from changed where previous_customer_id is not null
    )

),

moves as (

    select
        previous_customer_id,
        customer_id,
        count(*) as records_affected,
        max(assigned_at) as recorded_at
    from changed
    where previous_customer_id is not null
    group by previous_customer_id, customer_id

),

created_ids as (

    select
        changed.customer_id,
        count(*) as records_affected,
        max(changed.assigned_at) as recorded_at
    from changed
    left join ids_before
        on changed.customer_id = ids_before.customer_id
    where ids_before.customer_id is null
    group by changed.customer_id

),

created_origins as (

    select
        customer_id,
        previous_customer_id
    from moves
    qualify row_number() over (
        partition by customer_id
        order by records_affected desc nulls last, previous_customer_id asc nulls last
    ) = 1

),

events as (

    select
        created_ids.customer_id,
        'created' as event_type,
        created_origins.previous_customer_id as related_customer_id,
        created_ids.records_affected,
        created_ids.recorded_at
    from created_ids
    left join created_origins
        on created_ids.customer_id = created_origins.customer_id

    union all

    select
        moves.previous_customer_id as customer_id,
        case when ids_after.customer_id is null then 'merged' else 'split' end as event_type,
        moves.customer_id as related_customer_id,
        moves.records_affected,
        moves.recorded_at
    from moves
    left join ids_after
        on moves.previous_customer_id = ids_after.customer_id

),

final as (

    select
        cast({{ dbt.hash(dbt.concat([
            'customer_id', "'|'", 'event_type', "'|'", "coalesce(related_customer_id, '')", "'|'",
            'cast(recorded_at as ' ~ dbt.type_string() ~ ')'
        ])) }} as {{ dbt.type_string() }}) as history_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(related_customer_id as {{ dbt.type_string() }}) as related_customer_id,
        cast(records_affected as bigint) as records_affected,
        cast(recorded_at as timestamp) as recorded_at
    from events

)

select * from final
