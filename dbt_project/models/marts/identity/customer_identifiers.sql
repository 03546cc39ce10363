{#-
    Every identifier of every customer: one row per customer_id and identifier value, with when
    it was first and last seen on the customer's records, in which sources, on how many records,
    and whether merge protection kept it from linking records (a shared inbox, a household
    landline or a placeholder still shows on each profile that carries it).

    Incremental: a run rewrites the rows of the customers whose records changed since the newest
    customer_assigned_at here, and only theirs. Most of them only gained records
    that got their first customer_id since (identity_map.previous_customer_id NULL: a new web
    event, email event, call or order): their stored rows are merged with the identifiers of
    those records alone (first and last seen, record count, sources), without reading their
    earlier records again (at 1,000,000 people one day's 150,000 new records touch 230,000
    customers, whose 3.4 M identifier rows the merge no longer reads from
    int_identifiers_extracted's 39 M). Recomputed from all their records instead:
      - records that changed customer since (merges and splits: identity_map.assigned_at with
        a previous_customer_id), both the customer they joined and the one they left;
      - records extracted again since and that are not new (int_identifiers_extracted.
        _extracted_at: a contact whose new version changed its email loses the old one; an
        order whose address phone is looked up anew);
      - customers carrying an identifier whose is_blocked_as_link changed since (a landline that
        new records showed to be shared: int_identifiers_screened._link_status_at);
      - every customer with a new record, when identity_map was rebuilt whole since (all its
        records look new then).
    The rewritten customers' rows are replaced whole (incremental strategy replace_keys on
    customer_id: macros/incremental.sql): an identifier a customer no longer carries
    disappears, and a customer left with none (merged into another) keeps no rows, through a
    placeholder row (NULL customer_identifier_id) that is never inserted. A full rebuild gives
    the same rows.
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
{#- new records only add to their customer's rows, unless identity_map was rebuilt whole since
    this table's last run (every record has a first customer_id then) -#}
{%- set appending = watermarked and execute and this is not string and sql_holds(
    upstream_followed_since(ref('identity_map'), 'assigned_at', 'customer_assigned_at')) -%}
{%- set assigned_watermark = loaded_at_watermark('customer_assigned_at') -%}
{%- set text = dbt.type_string() -%}
{#- the landing folders, in the alphabetical order of `sources` -#}
{%- set landing_sources = ['calls', 'contacts', 'email', 'orders', 'web'] -%}

with

{% if incremental %}
{% if watermarked -%}
-- records that got a customer_id since: new records (appended below) and moved ones
assigned_since as (

    select
        record_key,
        customer_id,
        assigned_at,
        previous_customer_id,
        {{ 'previous_customer_id is null' if appending else 'false' }} as is_new
    from {{ ref('identity_map') }}
    where assigned_at > {{ assigned_watermark }}

),

{% endif -%}
recomputed_customers as (

    {% if watermarked -%}
    select customer_id from assigned_since where not is_new

    union

    select previous_customer_id from assigned_since where previous_customer_id is not null

    union

    -- records extracted again since, new ones aside: a newer version loaded, or an order's
    -- address phone looked up anew (its _loaded_at is old)
    -- (their keys once each: probing identity_map with each of their identifier rows took 3.5 s
    -- at 1,000,000 people, with the distinct keys 0.4 s)
    select identity_map.customer_id
    from (
        select distinct record_key
        from {{ ref('int_identifiers_extracted') }}
        where _extracted_at > {{ assigned_watermark }}
    ) as extracted
    inner join {{ ref('identity_map') }} as identity_map
        on extracted.record_key = identity_map.record_key
    where not (
            identity_map.assigned_at > {{ assigned_watermark }}
            and {{ 'identity_map.previous_customer_id is null' if appending else 'false' }}
        )

    union

    -- customers carrying an identifier whose is_blocked_as_link flipped since (the run of a flip
    -- is later than any customer_assigned_at here before it)
    select current_rows.customer_id
    from {{ this }} as current_rows
    inner join {{ ref('int_identifiers_screened') }} as screened
        on current_rows.identifier_type = screened.identifier_type
        and current_rows.identifier_value = screened.identifier_value
    where screened._link_status_at > {{ assigned_watermark }}
    {%- else %}
    {{ customers_all(ref('identity_map')) }}
    {%- endif %}

),

{% if appending -%}
-- customers that only gained new records: their stored rows plus those records' identifiers
appended_customers as (

    select distinct customer_id
    from assigned_since
    where is_new
        and customer_id not in (select customer_id from recomputed_customers)

),

stored as (

    select
        customer_id,
        {{ identity_identifier_key('identifier_type', 'identifier_value') }} as identifier_key,
        identifier_type,
        identifier_value,
        first_seen_at,
        last_seen_at,
        sources,
        record_count,
        customer_assigned_at,
        _loaded_at
    from {{ this }}
    where customer_id in (select customer_id from appended_customers)

),

stored_sources as (

    {% for source in landing_sources %}
    select customer_id, identifier_key, '{{ source }}' as source
    from stored
    where {{ dbt.concat(["','", 'sources', "','"]) }} like '%,{{ source }},%'
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

{% endif -%}
{% endif -%}
identity_map as (

    select record_key, customer_id, assigned_at
    from {{ ref('identity_map') }}
    {% if incremental %}
    where customer_id in (select customer_id from recomputed_customers)
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

{% if appending -%}
-- the rows of the appended customers' new records: extracted at the run that assigned them or
-- before it, after this table's last run (a record extracted earlier had its customer then),
-- so only the newest part of the table is read
appended_records as (

    select
        assigned_since.customer_id,
        assigned_since.assigned_at,
        extracted.record_key,
        extracted.source,
        extracted.identifier_type,
        extracted.identifier_value,
        extracted.first_seen_at,
        extracted.last_seen_at,
        extracted._loaded_at
    from {{ ref('int_identifiers_extracted') }} as extracted
    inner join assigned_since
        on extracted.record_key = assigned_since.record_key
    where extracted._extracted_at > {{ assigned_watermark }}
        and extracted.identifier_type is not null
        and assigned_since.is_new
        and assigned_since.customer_id in (select customer_id from appended_customers)

),

{% endif -%}
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
    {%- if appending %}

    union all

    select
        customer_id,
        assigned_at,
        identifier_type,
        identifier_value,
        {{ identity_identifier_key('identifier_type', 'identifier_value') }} as identifier_key,
        source,
        record_key,
        first_seen_at,
        last_seen_at,
        _loaded_at
    from appended_records
    {%- endif %}

),

customer_sources as (

    select
        customer_id,
        identifier_key,
        {{ dbt.listagg('source', "','", 'order by source') }} as sources
    from (
        select distinct customer_id, identifier_key, source
        from customer_records
        {%- if appending %}

        union

        select customer_id, identifier_key, source
        from stored_sources
        {%- endif %}
    ) as distinct_sources
    group by customer_id, identifier_key

),

record_aggregates as (

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

aggregated as (

    {% if appending -%}
    -- an appended customer's stored rows and its new records' rows, which are other records
    select
        customer_id,
        identifier_key,
        max(identifier_type) as identifier_type,
        max(identifier_value) as identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        sum(record_count) as record_count,
        max(customer_assigned_at) as customer_assigned_at,
        max(_loaded_at) as _loaded_at
    from (
        select * from record_aggregates

        union all

        select
            customer_id,
            identifier_key,
            identifier_type,
            identifier_value,
            first_seen_at,
            last_seen_at,
            record_count,
            customer_assigned_at,
            _loaded_at
        from stored
    ) as parts
    group by customer_id, identifier_key
    {%- else -%}
    select * from record_aggregates
    {%- endif %}

),

screened as (

    select identifier_key, is_blocked_as_link
    from {{ ref('int_identifiers_screened') }}

),

final as (

    select
        cast({{ dbt.concat(['aggregated.customer_id', "'|'", 'aggregated.identifier_key']) }}
            as {{ text }}) as customer_identifier_id,
        cast(aggregated.customer_id as {{ text }}) as customer_id,
        cast(aggregated.identifier_type as {{ text }}) as identifier_type,
        cast(aggregated.identifier_value as {{ text }}) as identifier_value,
        cast(aggregated.first_seen_at as timestamp) as first_seen_at,
        cast(aggregated.last_seen_at as timestamp) as last_seen_at,
        cast(customer_sources.sources as {{ text }}) as sources,
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

    -- a recomputed customer left with no identifier: a placeholder, so that its old rows go
    select
        cast(null as {{ text }}) as customer_identifier_id,
        cast(recomputed_customers.customer_id as {{ text }}) as customer_id,
        cast(null as {{ text }}) as identifier_type,
        cast(null as {{ text }}) as identifier_value,
        cast(null as timestamp) as first_seen_at,
        cast(null as timestamp) as last_seen_at,
        cast(null as {{ text }}) as sources,
        cast(null as bigint) as record_count,
        cast(null as boolean) as is_blocked_as_link,
        cast(null as timestamp) as customer_assigned_at,
        cast(null as timestamp) as _loaded_at,
        {{ identity_run_timestamp() }} as _built_at
    from recomputed_customers
    where recomputed_customers.customer_id not in (select customer_id from aggregated)
    {% endif %}

)

select * from final
