{#-
    One row per loaded record of every source with its customer_id: stable from run to run.

    Components of the identity graph (int_identity_records_resolved) get customer ids as
    follows, carrying forward the previous assignment (this table, read before it is updated):
      - an id whose records are now spread over several components stays with the component
        that holds most of them (tie: the smaller component label): the others split off;
      - a component that is the home of several previous ids keeps the one with the most
        records in it (tie: the smallest id): the others are merged into it;
      - a component that is nobody's home gets a new id: 'cus_' and 20 hex digits of the md5
        of its smallest record key, plus, when its records had an id before (a split-off), '|'
        and that id (the one most of them had; tie: the smallest).
    So the same data gives the same ids, also after a --full-refresh, and new data changes no
    id unless records really merge or split. An incremental run weighs only the components that
    hold a record whose component changed (or a new record), and those holding the other
    records of the ids such records carried: no other component's id can change. Only new records and records whose customer_id
    changed are written (unique_key record_key: delete+insert on DuckDB, merge on Spark);
    assigned_at is the run at which the record got its current customer_id and
    previous_customer_id the one it had before, from which customer_id_history is derived.
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

{%- set narrowed = is_incremental() -%}

with

{% if narrowed -%}
-- records whose component changed, or that are new, since the newest assignment here (a run
-- that assigned nothing leaves them to be looked at again: harmless)
changed_records as (

    select record_key, component
    from {{ ref('int_identity_records_resolved') }}
    where _resolved_at > {{ loaded_at_watermark('assigned_at') }}

),

-- the ids those records carried, and every record of those ids (each step a semi join with a
-- small build side: a join of the two 14-million-row tables took a minute at 1M people)
carried_ids as (

    select customer_id
    from {{ this }}
    where record_key in (select record_key from changed_records)

),

carried_records as (

    select record_key
    from {{ this }}
    where customer_id in (select customer_id from carried_ids)

),

-- the components those records are in now: every id and component the assignment below
-- weighs for them. An id whose records did not move lies whole in one component, so these
-- components hold every record of every id they hold.
affected_components as (

    select component from changed_records

    union

    select component
    from {{ ref('int_identity_records_resolved') }}
    where record_key in (select record_key from carried_records)

),

{% endif -%}
current_records as (

    select
        record_key,
        source,
        {{ identity_source_record_id('record_key', 'source') }} as source_record_id,
        component
    from {{ ref('int_identity_records_resolved') }}
    {%- if narrowed %}
    where component in (select component from affected_components)
    {%- endif %}

),

previous_assignments as (

    {% if is_incremental() %}
    select
        record_key,
        customer_id,
        assigned_at,
        previous_customer_id
    from {{ this }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as record_key,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as timestamp) as assigned_at,
        cast(null as {{ dbt.type_string() }}) as previous_customer_id
    where 1 = 0
    {% endif %}

),

records as (

    select
        current_records.record_key,
        current_records.source,
        current_records.source_record_id,
        current_records.component,
        previous_assignments.customer_id as carried_customer_id,
        previous_assignments.assigned_at as carried_assigned_at,
        previous_assignments.previous_customer_id as carried_previous_customer_id
    from current_records
    left join previous_assignments
        on current_records.record_key = previous_assignments.record_key

),

-- how many records of each previous id each component holds
id_overlaps as (

    select
        component,
        carried_customer_id,
        count(*) as record_count
    from records
    where carried_customer_id is not null
    group by component, carried_customer_id

),

-- the component each previous id stays with: the one holding most of its records
id_homes as (

    select
        carried_customer_id,
        component,
        record_count
    from id_overlaps
    qualify row_number() over (
        partition by carried_customer_id
        order by record_count desc nulls last, component asc nulls last
    ) = 1

),

-- the id a component keeps: of the ids at home there, the one with the most records
kept_ids as (

    select
        component,
        carried_customer_id as customer_id
    from id_homes
    qualify row_number() over (
        partition by component
        order by record_count desc nulls last, carried_customer_id asc nulls last
    ) = 1

),

-- where a component's previously assigned records mostly came from (for split-off ids)
origins as (

    select
        component,
        carried_customer_id as origin_customer_id
    from id_overlaps
    qualify row_number() over (
        partition by component
        order by record_count desc nulls last, carried_customer_id asc nulls last
    ) = 1

),

components as (

    select
        component,
        min(record_key) as min_record_key
    from records
    group by component

),

component_ids as (

    select
        components.component,
        coalesce(
            kept_ids.customer_id,
            case
                when origins.origin_customer_id is null
                    then {{ identity_hash_id('cus_', 'components.min_record_key') }}
                else {{ identity_hash_id('cus_', dbt.concat([
                    'components.min_record_key', "'|'", 'origins.origin_customer_id'
                ])) }}
            end
        ) as customer_id
    from components
    left join kept_ids
        on components.component = kept_ids.component
    left join origins
        on components.component = origins.component

),

assigned as (

    select
        records.source,
        records.source_record_id,
        records.record_key,
        component_ids.customer_id,
        case
            when records.carried_customer_id = component_ids.customer_id
                then records.carried_assigned_at
            else {{ identity_run_timestamp() }}
        end as assigned_at,
        case
            when records.carried_customer_id = component_ids.customer_id
                then records.carried_previous_customer_id
            else records.carried_customer_id
        end as previous_customer_id,
        records.carried_customer_id
    from records
    inner join component_ids
        on records.component = component_ids.component

),

final as (

    select
        cast(source as {{ dbt.type_string() }}) as source,
        cast(source_record_id as {{ dbt.type_string() }}) as source_record_id,
        cast(record_key as {{ dbt.type_string() }}) as record_key,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(assigned_at as timestamp) as assigned_at,
        cast(previous_customer_id as {{ dbt.type_string() }}) as previous_customer_id
    from assigned
    {% if is_incremental() %}
    -- only what is new or changed is written
    where carried_customer_id is null
        or carried_customer_id <> customer_id
    {% endif %}

)

select * from final
