{#-
    Edges of the identity graph, between nodes that are identifiers (email:..., phone:...) or
    records without any linking identifier (record:...):
      - identifier: a record carrying two or more linking identifiers ties each of them to its
        anchor (the smallest one): a star per record, deduplicated;
      - match: a probabilistic pair of int_record_matches_scored at or above var
        identity_match_threshold ties the two records' anchors;
      - node: a self edge for every linking identifier and identifier-less record, so that
        every node is in the graph even when nothing links it.
    node_l <= node_r; one row per edge.
-#}
{{ config(materialized='table') }}

{%- set match_threshold = var('identity_match_threshold', 0.9) -%}

with

extracted as (

    select record_key, identifier_key
    from {{ ref('int_identifiers_extracted') }}
    where identifier_key is not null

),

screened as (

    select identifier_key
    from {{ ref('int_identifiers_screened') }}
    where not is_blocked_as_link

),

anchored as (

    select * from {{ ref('int_identity_records_anchored') }}

),

identifier_edges as (

    select distinct
        anchored.anchor_node as node_a,
        extracted.identifier_key as node_b
    from anchored
    inner join extracted
        on anchored.record_key = extracted.record_key
    inner join screened
        on extracted.identifier_key = screened.identifier_key
    where anchored.linking_identifier_count >= 2
        and extracted.identifier_key <> anchored.anchor_node

),

match_edges as (

    select distinct
        anchored_l.anchor_node as node_a,
        anchored_r.anchor_node as node_b
    from {{ ref('int_record_matches_scored') }} as matches
    inner join anchored as anchored_l
        on matches.record_key_l = anchored_l.record_key
    inner join anchored as anchored_r
        on matches.record_key_r = anchored_r.record_key
    where matches.match_probability >= {{ match_threshold }}
        and anchored_l.anchor_node <> anchored_r.anchor_node

),

node_edges as (

    select identifier_key as node_a, identifier_key as node_b
    from screened

    union all

    select anchor_node as node_a, anchor_node as node_b
    from anchored
    where linking_identifier_count = 0

),

all_edges as (

    select node_a, node_b, 'identifier' as edge_type from identifier_edges
    union all
    select node_a, node_b, 'match' as edge_type from match_edges
    union all
    select node_a, node_b, 'node' as edge_type from node_edges

),

final as (

    select
        least(node_a, node_b) as node_l,
        greatest(node_a, node_b) as node_r,
        min(edge_type) as edge_type
    from all_edges
    group by least(node_a, node_b), greatest(node_a, node_b)

)

select * from final
