{#-
    Every loaded record with its anchor in the identity graph: the smallest of its identifiers
    that may link (not blocked by merge protection), or the record itself ('record:' and the
    record key) when it has none. Records with one identifier (most email and web events) are
    not nodes of the graph: they simply follow their identifier, so the graph is over
    identifiers and the records that tie two or more of them together.
-#}
{{ config(materialized='table') }}

with

extracted as (

    select * from {{ ref('int_identifiers_extracted') }}

),

screened as (

    select identifier_key, is_blocked_as_link
    from {{ ref('int_identifiers_screened') }}

),

final as (

    select
        extracted.record_key,
        max(extracted.source) as source,
        max(extracted.source_record_id) as source_record_id,
        coalesce(
            min(case when not screened.is_blocked_as_link then extracted.identifier_key end),
            {{ dbt.concat(["'record:'", "extracted.record_key"]) }}
        ) as anchor_node,
        count(case when not screened.is_blocked_as_link then extracted.identifier_key end)
            as linking_identifier_count,
        count(case when screened.is_blocked_as_link then extracted.identifier_key end)
            as blocked_identifier_count
    from extracted
    left join screened
        on extracted.identifier_key = screened.identifier_key
    group by extracted.record_key

)

select * from final
