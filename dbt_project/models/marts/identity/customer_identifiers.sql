{#-
    Every identifier of every customer: one row per customer_id and identifier value, with when
    it was first and last seen on the customer's records, in which sources, on how many records,
    and whether merge protection kept it from linking records (a shared inbox, a household
    landline or a placeholder still shows on each profile that carries it).

    Incremental: a run recomputes all rows of the customers whose records changed since the
    newest customer_assigned_at and _loaded_at here, and only theirs:
      - records that got a customer_id since (identity_map.assigned_at: new records, merges and
        splits), both for the customer they joined and the one they left;
      - records whose current version was loaded since (int_identifiers_extracted._loaded_at: a
        contact whose new version changed its email loses the old one);
      - customers carrying an identifier whose is_blocked_as_link changed since (a landline that
        new records showed to be shared: int_identifiers_screened._link_status_at).
    Their rows are replaced whole (incremental strategy replace_keys on customer_id: macros/
    incremental.sql): an identifier a customer no longer carries disappears, and a customer
    left with none (merged into another) keeps no rows, through a placeholder row (NULL
    customer_identifier_id) that is never inserted. A full rebuild gives the same rows.
-#}
{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        placeholder_column='customer_identifier_id',
        on_schema_change='append_new_columns',
    )
}}

{%- set incremental = is_incremental() -%}
{#- a table built before these columns existed: every customer is recomputed, once -#}
{%- set watermarked = incremental and this_has_columns(['customer_assigned_at', '_loaded_at']) -%}

with

{% if incremental %}
changed_customers as (

    {% if watermarked -%}
    {{ customers_moved_since(ref('identity_map')) }}

    union

    select identity_map.customer_id
    from {{ ref('int_identifiers_extracted') }} as extracted
    inner join {{ ref('identity_map') }} as identity_map
        on extracted.record_key = identity_map.record_key
    where extracted._loaded_at > {{ loaded_at_watermark('_loaded_at') }}

    union

    -- customers carrying an identifier whose is_blocked_as_link flipped since (the run of a flip
    -- is later than any customer_assigned_at here before it)
    select current_rows.customer_id
    from {{ this }} as current_rows
    inner join {{ ref('int_identifiers_screened') }} as screened
        on current_rows.identifier_type = screened.identifier_type
        and current_rows.identifier_value = screened.identifier_value
    where screened._link_status_at > {{ loaded_at_watermark('customer_assigned_at') }}
    {%- else %}
    {{ customers_all(ref('identity_map')) }}
    {%- endif %}

),

{% endif %}
identity_map as (

    select record_key, customer_id, assigned_at
    from {{ ref('identity_map') }}
    {% if incremental %}
    where customer_id in (select customer_id from changed_customers)
    {% endif %}

),

extracted as (

    -- not identifier_key (1.5 GB at 1,000,000 people, stored uncompressed for lookups): every
    -- value of the column is read before the semi join below picks the changed customers'
    -- records; the key is built from its type and value below, for the rows picked
    select
        record_key,
        source,
        identifier_type,
        identifier_value,
        first_seen_at,
        last_seen_at,
        _loaded_at
    from {{ ref('int_identifiers_extracted') }}
    where identifier_type is not null
    {%- if incremental %}
        -- the semi join as well, so that DuckDB filters the 39 M-row scan by the changed
        -- customers' records: with record_key stored uncompressed it otherwise joined every row
        -- to identity_map before picking those customers (the model took 48 s instead of 12 at
        -- 1,000,000 people)
        and record_key in (select record_key from identity_map)
    {%- endif %}

),

screened as (

    select identifier_key, is_blocked_as_link
    from {{ ref('int_identifiers_screened') }}

),

customer_records as (

    select
        identity_map.customer_id,
        identity_map.assigned_at,
        extracted.identifier_type,
        extracted.identifier_value,
        {{ identity_identifier_key('extracted.identifier_type', 'extracted.identifier_value') }}
            as identifier_key,
        extracted.source,
        extracted.record_key,
        extracted.first_seen_at,
        extracted.last_seen_at,
        extracted._loaded_at
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
        count(distinct record_key) as record_count,
        max(assigned_at) as customer_assigned_at,
        max(_loaded_at) as _loaded_at
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
        cast(coalesce(screened.is_blocked_as_link, false) as boolean) as is_blocked_as_link,
        cast(aggregated.customer_assigned_at as timestamp) as customer_assigned_at,
        cast(aggregated._loaded_at as timestamp) as _loaded_at,
        {{ identity_run_timestamp() }} as _built_at
    from aggregated
    inner join customer_sources
        on aggregated.customer_id = customer_sources.customer_id
        and aggregated.identifier_key = customer_sources.identifier_key
    left join screened
        on aggregated.identifier_key = screened.identifier_key

    {% if incremental %}
    union all

    -- a changed customer left with no identifier: a placeholder, so that its old rows go
    select
        cast(null as {{ dbt.type_string() }}) as customer_identifier_id,
        cast(changed_customers.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as identifier_type,
        cast(null as {{ dbt.type_string() }}) as identifier_value,
        cast(null as timestamp) as first_seen_at,
        cast(null as timestamp) as last_seen_at,
        cast(null as {{ dbt.type_string() }}) as sources,
        cast(null as bigint) as record_count,
        cast(null as boolean) as is_blocked_as_link,
        cast(null as timestamp) as customer_assigned_at,
        cast(null as timestamp) as _loaded_at,
        {{ identity_run_timestamp() }} as _built_at
    from changed_customers
    where changed_customers.customer_id not in (select customer_id from aggregated)
    {% endif %}

)

select * from final
