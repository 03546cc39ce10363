{#-
    Every loaded record with its anchor in the identity graph: the smallest of its identifiers
    that may link (not blocked by merge protection), or the record itself ('record:' and the
    record key) when it has none. Records with one identifier (most email and web events) are
    not nodes of the graph: they simply follow their identifier, so the graph is over
    identifiers and the records that tie two or more of them together.

    Incremental per record: a run redoes the records that int_identifiers_extracted wrote since
    (new records, new versions) and the records carrying an identifier whose
    is_blocked_as_link flipped since (int_identifiers_screened._link_flipped_at: a new
    identifier's records are all new), each against
    the newest value of that table here. A record's row depends on nothing else, and no record
    disappears, so delete+insert on record_key gives what a full rebuild gives.

    No source_record_id: the record key holds it (identity_record_key), and identity_map takes it
    from there (identity_source_record_id). Kept here and in int_identity_records_resolved, it
    was 0.8 GB more of each table at 1,000,000 people, read whole by each day's build. A table
    built with it loses it at the next run (on_schema_change sync_all_columns).
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='sync_all_columns',
    )
}}
{#- a table built before these columns existed: every record is redone, once -#}
{%- set incremental = is_incremental() and this_has_columns(['_extracted_through', '_screened_through']) -%}

with

{% if incremental -%}
changed_records as (

    select record_key
    from {{ ref('int_identifiers_extracted') }}
    where _extracted_at > {{ loaded_at_watermark('_extracted_through') }}

    union

    select extracted.record_key
    from {{ ref('int_identifiers_extracted') }} as extracted
    inner join {{ ref('int_identifiers_screened') }} as screened
        on extracted.identifier_key = screened.identifier_key
    where screened._link_flipped_at > {{ loaded_at_watermark('_screened_through') }}

),

{% endif -%}
extracted as (

    select record_key, source, identifier_key
    from {{ ref('int_identifiers_extracted') }}
    {%- if incremental %}
    where record_key in (select record_key from changed_records)
    {%- endif %}

),

screened as (

    select identifier_key, is_blocked_as_link
    from {{ ref('int_identifiers_screened') }}

),

final as (

    select
        extracted.record_key,
        max(extracted.source) as source,
        coalesce(
            min(case when not screened.is_blocked_as_link then extracted.identifier_key end),
            {{ dbt.concat(["'record:'", "extracted.record_key"]) }}
        ) as anchor_node,
        count(case when not screened.is_blocked_as_link then extracted.identifier_key end)
            as linking_identifier_count,
        count(case when screened.is_blocked_as_link then extracted.identifier_key end)
            as blocked_identifier_count,
        (select max(_extracted_at) from {{ ref('int_identifiers_extracted') }}) as _extracted_through,
        (select max(_link_status_at) from {{ ref('int_identifiers_screened') }}) as _screened_through,
        {{ identity_run_timestamp() }} as _anchored_at
    from extracted
    left join screened
        on extracted.identifier_key = screened.identifier_key
    group by extracted.record_key

)

select * from final
