{#-
    Every identifier of every customer: one row per customer_id and identifier value, with when
    it was first and last seen on the customer's records, in which sources, on how many records,
    and whether merge protection kept it from linking records (a shared inbox, a household
    landline or a placeholder still shows on each profile that carries it).
-#}
with

extracted as (

    select
        record_key,
        source,
        identifier_type,
        identifier_value,
        identifier_key,
        first_seen_at,
        last_seen_at
    from {{ ref('int_identifiers_extracted') }}
    where identifier_key is not null

),

identity_map as (

    select record_key, customer_id from {{ ref('identity_map') }}

),

screened as (

    select identifier_key, is_blocked_as_link
    from {{ ref('int_identifiers_screened') }}

),

customer_records as (

    select
        identity_map.customer_id,
        extracted.identifier_type,
        extracted.identifier_value,
        extracted.identifier_key,
        extracted.source,
        extracted.record_key,
        extracted.first_seen_at,
        extracted.last_seen_at
    from extracted
    inner join identity_map
        on extracted.record_key = identity_map.record_key

),

customer_sources as (

    select
        customer_id,
        identifier_key,
        {{ dbt.listagg('source', "','", 'order by source') }} as sources
    from (
        select distinct customer_id, identifier_key, source
        from customer_records
    ) as distinct_sources
    group by customer_id, identifier_key

),

aggregated as (

    select
        customer_id,
        identifier_key,
        max(identifier_type) as identifier_type,
        max(identifier_value) as identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        count(distinct record_key) as record_count
    from customer_records
    group by customer_id, identifier_key

),

final as (

    select
        cast({{ dbt.concat(['aggregated.customer_id', "'|'", 'aggregated.identifier_key']) }}
            as {{ dbt.type_string() }}) as customer_identifier_id,
        cast(aggregated.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(aggregated.identifier_type as {{ dbt.type_string() }}) as identifier_type,
        cast(aggregated.identifier_value as {{ dbt.type_string() }}) as identifier_value,
        cast(aggregated.first_seen_at as timestamp) as first_seen_at,
        cast(aggregated.last_seen_at as timestamp) as last_seen_at,
        cast(customer_sources.sources as {{ dbt.type_string() }}) as sources,
        cast(aggregated.record_count as bigint) as record_count,
        cast(coalesce(screened.is_blocked_as_link, false) as boolean) as is_blocked_as_link
    from aggregated
    inner join customer_sources
        on aggregated.customer_id = customer_sources.customer_id
        and aggregated.identifier_key = customer_sources.identifier_key
    left join screened
        on aggregated.identifier_key = screened.identifier_key

)

select * from final
