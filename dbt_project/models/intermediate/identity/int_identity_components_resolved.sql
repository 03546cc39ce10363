{#-
    Connected components of the identity graph (int_identity_edges_built): one row per node
    with its component, the smallest node id of the component. Computed by
    macros/identity_components.sql (min-label propagation with pointer jumping, looped until no
    label changes). The component id is an internal label: it changes whenever the smallest
    node of the component does; identity_map turns components into stable customer ids.

    Incremental: a run recomputes only the components that changed edges touch. The changed
    edges are those int_identity_edges_built wrote since (_changed_at after this table's
    _edges_through) and those it replaced or deleted since (its log,
    int_identity_edges_built__replaced). Their nodes' components (as stored here), and the nodes
    themselves, make a subgraph that no unchanged edge leaves: an unchanged edge joins two nodes
    of one stored component, and a changed one two changed nodes. The loop runs on that
    subgraph's edges. Of its nodes, only those that are new or got another component are
    written (replace_keys on node), and a node without any edge now (an identifier no record
    carries) loses its row: a node whose row is rewritten has every record anchored there
    redone downstream, and rewriting all the touched components' nodes redid 144 k records
    a day that had not moved (at 1,000,000 people). A run whose changed edges move no node
    writes nothing, so its watermark stays and the next run looks at those edges again. A full
    rebuild gives the same rows. Everything is recomputed when the edges were rebuilt whole
    since, or when this table predates _edges_through.
-#}
{{
    config(
        materialized='incremental',
        unique_key='node',
        incremental_strategy='replace_keys',
        placeholder_column='component',
        on_schema_change='append_new_columns',
        pre_hook="{{ replaced_log_create(ref('int_identity_edges_built'), ['node_l', 'node_r']) }}",
        post_hook=[
            "{{ identity_components_drop_scratch() }}",
            "{{ replaced_log_prune(ref('int_identity_edges_built'), '_edges_through') }}",
        ],
    )
}}
{%- set edges = ref('int_identity_edges_built') -%}
{%- set mode = 'full' -%}
{%- if is_incremental() -%}
    {%- set mode = 'redo_all' -%}
    {%- if execute and this_has_columns(['_edges_through']) -%}
        {%- if sql_holds(upstream_followed_since(edges, '_changed_at', '_edges_through')) -%}
            {%- set mode = 'changed' -%}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}

{%- if mode == 'full' -%}

with

computed as (

    {{ identity_connected_components(edges) }}

)

select
    node,
    component,
    (select max(_changed_at) from {{ edges }}) as _edges_through
from computed

{%- else -%}
{%- set log = replaced_log_relation(edges) -%}
{%- set nodes_sql -%}
    {%- if mode == 'changed' -%}
    with

    changed_nodes as (
        select node_l as node from {{ edges }} where _changed_at > (select max(_edges_through) from {{ this }})
        union
        select node_r from {{ edges }} where _changed_at > (select max(_edges_through) from {{ this }})
        union
        select node_l from {{ log }} where _replaced_at > (select max(_edges_through) from {{ this }})
        union
        select node_r from {{ log }} where _replaced_at > (select max(_edges_through) from {{ this }})
    )

    -- every node of the subgraph, with its stored component (none for a new node)
    select node, max(stored_component) as stored_component
    from (
        select node, cast(null as {{ dbt.type_string() }}) as stored_component
        from changed_nodes
        union all
        select stored.node, stored.component
        from {{ this }} as stored
        where stored.component in (
            select touched.component
            from {{ this }} as touched
            inner join changed_nodes
                on touched.node = changed_nodes.node
        )
    ) as subgraph
    group by node
    {%- else -%}
    select node, cast(null as {{ dbt.type_string() }}) as stored_component
    from (
        select node_l as node from {{ edges }}
        union
        select node_r from {{ edges }}
        union
        select node from {{ this }}
    ) as every_node
    {%- endif -%}
{%- endset -%}
{%- set subgraph_nodes = identity_components_scratch('nodes') -%}
{%- set subgraph_edges = identity_components_scratch('edges') -%}
{%- if execute -%}
    {#- the log is read now, before the pre-hook runs: it may not exist yet -#}
    {% do run_query(replaced_log_create(edges, ['node_l', 'node_r'])) %}
    {% do identity_components_create(subgraph_nodes, nodes_sql) %}
    {% do identity_components_create(subgraph_edges,
        'select node_l, node_r from ' ~ edges ~ ' where node_l in (select node from ' ~ subgraph_nodes ~ ')') %}
{%- endif -%}

with

recomputed as (

    {{ identity_connected_components(subgraph_edges) }}

),

final as (

    select
        subgraph_nodes.node,
        recomputed.component
    from {{ subgraph_nodes }} as subgraph_nodes
    left join recomputed
        on subgraph_nodes.node = recomputed.node
    {%- if mode == 'changed' %}
    -- only the nodes that are new, lost or relabelled: a row rewritten with the same
    -- component would make int_identity_records_resolved redo every record anchored there
    where recomputed.component is distinct from subgraph_nodes.stored_component
    {%- endif %}

)

select
    node,
    component,
    (select max(_changed_at) from {{ edges }}) as _edges_through
from final

{%- endif %}
