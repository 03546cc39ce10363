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

    Incremental as a diff: every run computes all edges, then writes only the edges that are new
    or changed (_changed_at: the run) and deletes those that are gone, logging the replaced
    rows in int_identity_edges_built__replaced (strategy replace_logged, placeholder node_l).
    int_identity_components_resolved recomputes only the components those edges touch.
-#}
{{
    config(
        materialized='incremental',
        unique_key='edge_key',
        incremental_strategy='replace_logged',
        replaced_log_columns=['node_l', 'node_r'],
        placeholder_column='node_l',
        on_schema_change='append_new_columns',
    )
}}
{%- set incremental = is_incremental() and this_has_columns(['edge_key', '_changed_at']) -%}

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

edges as (

    select
        least(node_a, node_b) as node_l,
        greatest(node_a, node_b) as node_r,
        min(edge_type) as edge_type
    from all_edges
    group by least(node_a, node_b), greatest(node_a, node_b)

),

keyed as (

    select
        -- node_l's length first: a key decodes to one pair, whatever the node ids hold
        {{ dbt.concat(["cast(length(node_l) as " ~ dbt.type_string() ~ ")", "':'", "node_l", "node_r"]) }} as edge_key,
        node_l,
        node_r,
        edge_type
    from edges

),

{% if incremental -%}
changed as (

    select keyed.edge_key, keyed.node_l, keyed.node_r, keyed.edge_type
    from keyed
    left join {{ this }} as stored
        on keyed.edge_key = stored.edge_key
    where stored.edge_key is null
        or stored.edge_type <> keyed.edge_type

    union all

    -- a placeholder: the edge is gone
    select
        stored.edge_key,
        cast(null as {{ dbt.type_string() }}) as node_l,
        cast(null as {{ dbt.type_string() }}) as node_r,
        cast(null as {{ dbt.type_string() }}) as edge_type
    from {{ this }} as stored
    left join keyed
        on stored.edge_key = keyed.edge_key
    where keyed.edge_key is null

),

{% endif -%}
final as (

    select
        edge_key,
        node_l,
        node_r,
        edge_type,
        {{ identity_run_timestamp() }} as _changed_at
    from {{ 'changed' if incremental else 'keyed' }}

)

select * from final
