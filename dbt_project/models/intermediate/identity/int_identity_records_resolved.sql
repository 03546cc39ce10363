{#-
    Every loaded record with its identity component (int_identity_components_resolved).

    A record follows its anchor's component. A record with no identifier that may link (all of
    its identifiers are blocked by merge protection: an email event to a shared inbox, a call
    from a household landline) follows its blocked identifiers when the records that carry them
    and do link all lie in one component, so that a blocked identifier never joins two
    components but still brings its own events home when there is only one home; otherwise it
    stays a component of its own.
-#}
{{ config(materialized='table') }}

with

anchored as (

    select * from {{ ref('int_identity_records_anchored') }}

),

components as (

    select node, component from {{ ref('int_identity_components_resolved') }}

),

blocked as (

    select extracted.record_key, extracted.identifier_key
    from {{ ref('int_identifiers_extracted') }} as extracted
    inner join {{ ref('int_identifiers_screened') }} as screened
        on extracted.identifier_key = screened.identifier_key
    where screened.is_blocked_as_link

),

anchored_components as (

    select
        anchored.record_key,
        anchored.source,
        anchored.source_record_id,
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
        blocked.identifier_key,
        min(anchored_components.component) as component,
        count(distinct anchored_components.component) as component_count
    from blocked
    inner join anchored_components
        on blocked.record_key = anchored_components.record_key
    where anchored_components.linking_identifier_count > 0
    group by blocked.identifier_key

),

-- a record without linking identifiers: the one home of all of its blocked identifiers
unlinked_homes as (

    select
        blocked.record_key,
        min(blocked_homes.component) as component
    from blocked
    inner join anchored_components
        on blocked.record_key = anchored_components.record_key
    left join blocked_homes
        on blocked.identifier_key = blocked_homes.identifier_key
        and blocked_homes.component_count = 1
    where anchored_components.linking_identifier_count = 0
        and anchored_components.component = anchored_components.anchor_node
    group by blocked.record_key
    having count(*) = count(blocked_homes.component)
        and count(distinct blocked_homes.component) = 1

),

final as (

    select
        anchored_components.record_key,
        anchored_components.source,
        anchored_components.source_record_id,
        anchored_components.anchor_node,
        coalesce(unlinked_homes.component, anchored_components.component) as component,
        unlinked_homes.component is not null as is_attached_through_blocked
    from anchored_components
    left join unlinked_homes
        on anchored_components.record_key = unlinked_homes.record_key

)

select * from final
