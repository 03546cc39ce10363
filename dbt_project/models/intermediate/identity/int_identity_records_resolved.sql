{#-
    Every loaded record with its identity component (int_identity_components_resolved).

    A record follows its anchor's component. A record with no identifier that may link (all of
    its identifiers are blocked by merge protection: an email event to a shared inbox, a call
    from a household landline) follows its blocked identifiers when the records that carry them
    and do link all lie in one component, so that a blocked identifier never joins two
    components but still brings its own events home when there is only one home; otherwise it
    stays a component of its own.

    Incremental per record (delete+insert on record_key; no record disappears). A run redoes:
      - the records whose anchor row was rewritten since this table's last run (its
        _extracted_through or _screened_through is later: a new or re-extracted record, or an
        identifier of it flipped) and those whose anchor's component row was (components'
        _edges_through);
      - the records carrying a blocked identifier that one of those records carries, or that
        a record lost since (int_identifiers_extracted's log of replaced rows): its homes, the
        components of the linked records that carry it, may have changed. Where such a record
        belongs depends on all of its blocked identifiers, so their homes are recomputed from
        every record that carries them.
    A full rebuild gives the same rows. (Computing the homes of every blocked identifier each
    run made the model take 5.3 s in a run without new data at 1,000,000 people.) This model
    reads the log last, so its post-hook deletes the log rows that all three readers have
    taken in.
    Neither source_record_id (identity_map takes it from the record key) nor the anchor (a
    record whose anchor row was rewritten is redone and written anyway): at 1,000,000 people
    they were 1.9 GB of the table's 4 GB, and the stored rows of the redone records were read
    with them. A table built with them loses them at the next run (on_schema_change
    sync_all_columns).
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='sync_all_columns',
        pre_hook="{{ replaced_log_create(ref('int_identifiers_extracted'), ['record_key', 'identifier_key']) }}",
        post_hook="{{ identity_extracted_log_prune() }}",
    )
}}
{#- a table built before _resolved_at existed: every record is redone, once -#}
{%- set incremental = is_incremental() and this_has_columns(['_resolved_at']) -%}

with

blocked as (

    select extracted.record_key, extracted.identifier_key
    from {{ ref('int_identifiers_extracted') }} as extracted
    inner join {{ ref('int_identifiers_screened') }} as screened
        on extracted.identifier_key = screened.identifier_key
    where screened.is_blocked_as_link

),

{% if incremental -%}
changed_records as (

    {{ identity_reanchored_records_since(ref('int_identity_records_anchored'), loaded_at_watermark('_resolved_at')) }}

    union

    select anchored.record_key
    from {{ ref('int_identity_records_anchored') }} as anchored
    inner join {{ ref('int_identity_components_resolved') }} as components
        on anchored.anchor_node = components.node
    where components._edges_through > {{ loaded_at_watermark('_resolved_at') }}

),

-- blocked identifiers whose homes may have changed: carried by a changed record, or taken
-- from a record since
affected_blocked as (

    select identifier_key
    from blocked
    where record_key in (select record_key from changed_records)

    union

    select identifier_key
    from {{ replaced_log_relation(ref('int_identifiers_extracted')) }}
    where _replaced_at > {{ loaded_at_watermark('_resolved_at') }}
        and identifier_key is not null

),

-- the records redone: the changed ones and those carrying an affected identifier
redone_records as (

    select record_key from changed_records

    union

    select record_key
    from blocked
    where identifier_key in (select identifier_key from affected_blocked)

),

-- every record carrying a blocked identifier of a redone record: their components are the
-- homes of those identifiers
scoped_blocked as (

    select record_key, identifier_key
    from blocked
    where identifier_key in (
        select identifier_key
        from blocked
        where record_key in (select record_key from redone_records)
    )

),

{% else -%}
scoped_blocked as (

    select record_key, identifier_key from blocked

),

{% endif -%}
anchored as (

    select
        record_key,
        source,
        anchor_node,
        linking_identifier_count,
        blocked_identifier_count
    from {{ ref('int_identity_records_anchored') }}
    {%- if incremental %}
    -- one IN over a union, not two ORed: DuckDB then filters the scan by the keys (a bloom
    -- filter) instead of probing both sets for each of the table's rows
    where record_key in (
        select record_key from redone_records
        union
        select record_key from scoped_blocked
    )
    {%- endif %}

),

components as (

    select node, component from {{ ref('int_identity_components_resolved') }}

),

anchored_components as (

    select
        anchored.record_key,
        anchored.source,
        anchored.anchor_node,
        anchored.linking_identifier_count,
        anchored.blocked_identifier_count,
        components.component
    from anchored
    inner join components
        on anchored.anchor_node = components.node

),

-- the components of the linked records that carry each blocked identifier
blocked_homes as (

    select
        scoped_blocked.identifier_key,
        min(anchored_components.component) as component,
        count(distinct anchored_components.component) as component_count
    from scoped_blocked
    inner join anchored_components
        on scoped_blocked.record_key = anchored_components.record_key
    where anchored_components.linking_identifier_count > 0
    group by scoped_blocked.identifier_key

),

-- a record without linking identifiers: the one home of all of its blocked identifiers
unlinked_homes as (

    select
        scoped_blocked.record_key,
        min(blocked_homes.component) as component
    from scoped_blocked
    inner join anchored_components
        on scoped_blocked.record_key = anchored_components.record_key
    left join blocked_homes
        on scoped_blocked.identifier_key = blocked_homes.identifier_key
        and blocked_homes.component_count = 1
    where anchored_components.linking_identifier_count = 0
        and anchored_components.component = anchored_components.anchor_node
    group by scoped_blocked.record_key
    having count(*) = count(blocked_homes.component)
        and count(distinct blocked_homes.component) = 1

),

resolved as (

    select
        anchored_components.record_key,
        anchored_components.source,
        coalesce(unlinked_homes.component, anchored_components.component) as component,
        unlinked_homes.component is not null as is_attached_through_blocked
    from anchored_components
    left join unlinked_homes
        on anchored_components.record_key = unlinked_homes.record_key
    {%- if incremental %}
    -- the others were read for the homes only: their own blocked identifiers may be incomplete
    where anchored_components.record_key in (select record_key from redone_records)
    {%- endif %}

),

{% if incremental -%}
-- the stored rows of the redone records, picked first with a semi join: joined to the table
-- itself, DuckDB read its 27 M rows' columns in 4.9 s at 1,000,000 people (1.1 s this way)
stored as (

    select record_key, component, is_attached_through_blocked
    from {{ this }}
    where record_key in (select record_key from redone_records)

),

{% endif -%}
final as (

    select
        resolved.record_key,
        resolved.source,
        resolved.component,
        resolved.is_attached_through_blocked,
        {{ identity_run_timestamp() }} as _resolved_at
    from resolved
    {%- if incremental %}
    left join stored
        on resolved.record_key = stored.record_key
    where resolved.record_key in (select record_key from changed_records)
        or stored.record_key is null
        or stored.component <> resolved.component
        or stored.is_attached_through_blocked <> resolved.is_attached_through_blocked
    {%- endif %}

)

select * from final
