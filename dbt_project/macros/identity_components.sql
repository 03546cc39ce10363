{#-
    Connected components of an undirected graph, set-based: min-label propagation with pointer
    jumping, run to full convergence.

    `edges` is a relation with text columns node_l and node_r (one row per edge, either way
    round; a self edge node_l = node_r brings in an isolated node). The result is a select of
    `node` and `component`, the smallest node id of the node's component.

    Each round, every node takes the smallest label among its own and its neighbours' (hooking),
    then the label of that label (pointer jumping), which shortens chains geometrically. Labels
    only decrease and are node ids of the same component, so when a round changes nothing every
    node holds its component's minimum. Each round is one CREATE TABLE AS over the edges (no
    recursion, no engine-specific SQL): the same loop runs on DuckDB and Spark.

    At run time the rounds are separate statements (run_query) on scratch tables next to the
    model (<model>__cc_*), looping until no label changes; more than `max_rounds` rounds is an
    error, never a silently unconverged answer. In a dbt unit test (whose inputs are CTEs, not
    tables) and at parse time the same round SQL is unrolled `unit_test_rounds` times instead.
-#}
{% macro identity_connected_components(edges, max_rounds=64, unit_test_rounds=4) -%}
    {%- if execute and model.resource_type != 'unit_test' -%}
        {{ return(identity_components_by_loop(edges, max_rounds)) }}
    {%- else -%}
        {{ return(identity_components_unrolled(edges, unit_test_rounds)) }}
    {%- endif -%}
{%- endmacro %}


{#- Round 0: every node with the smallest of its own id and its neighbours' ids. -#}
{% macro identity_components_initial_sql(edges) -%}
    select node, min(label) as label
    from (
        select node_l as node, node_l as label from {{ edges }}
        union all
        select node_r as node, node_r as label from {{ edges }}
        union all
        select node_l as node, node_r as label from {{ edges }}
        union all
        select node_r as node, node_l as label from {{ edges }}
    ) as incident
    group by node
{%- endmacro %}


{#- Hooking: the smallest label among the node's and its neighbours'. -#}
{% macro identity_components_hook_sql(edges, labels) -%}
    select node, min(label) as label
    from (
        select node, label from {{ labels }}
        union all
        select edges.node_r as node, labels.label
        from {{ edges }} as edges
        inner join {{ labels }} as labels
            on edges.node_l = labels.node
        union all
        select edges.node_l as node, labels.label
        from {{ edges }} as edges
        inner join {{ labels }} as labels
            on edges.node_r = labels.node
    ) as offered
    group by node
{%- endmacro %}


{#- Pointer jumping: the label of the node's label (never larger: labels only decrease). -#}
{% macro identity_components_jump_sql(hooked) -%}
    select
        hooked.node,
        coalesce(parents.label, hooked.label) as label
    from {{ hooked }} as hooked
    left join {{ hooked }} as parents
        on hooked.label = parents.node
{%- endmacro %}


{% macro identity_components_unrolled(edges, rounds) -%}
    with

    labels_0 as (
        {{ identity_components_initial_sql(edges) }}
    ),
    {%- for i in range(1, rounds + 1) %}

    hooked_{{ i }} as (
        {{ identity_components_hook_sql(edges, 'labels_' ~ (i - 1)) }}
    ),

    labels_{{ i }} as (
        {{ identity_components_jump_sql('hooked_' ~ i) }}
    ),
    {%- endfor %}

    final as (
        select node, label as component from labels_{{ rounds }}
    )

    select * from final
{%- endmacro %}


{% macro identity_components_scratch(suffix) -%}
    {{ return(api.Relation.create(
        database=this.database,
        schema=this.schema,
        identifier=this.identifier ~ '__cc_' ~ suffix,
        type='table'
    )) }}
{%- endmacro %}


{% macro identity_components_create(relation, sql) -%}
    {% do adapter.drop_relation(relation) %}
    {% do run_query(get_create_table_as_sql(False, relation, sql)) %}
{%- endmacro %}


{% macro identity_components_by_loop(edges, max_rounds) -%}
    {%- set labels = identity_components_scratch('labels') -%}
    {%- set hooked = identity_components_scratch('hooked') -%}
    {%- set jumped = identity_components_scratch('jumped') -%}
    {%- set result = identity_components_scratch('result') -%}
    {% do identity_components_create(labels, identity_components_initial_sql(edges)) %}
    {%- set state = {'converged': false, 'rounds': 0} -%}
    {%- for i in range(1, max_rounds + 1) -%}
        {%- if not state.converged -%}
            {% do identity_components_create(hooked, identity_components_hook_sql(edges, labels)) %}
            {% do identity_components_create(jumped, identity_components_jump_sql(hooked)) %}
            {%- set changed_sql -%}
                select count(*) as changed
                from {{ jumped }} as new_labels
                inner join {{ labels }} as old_labels
                    on new_labels.node = old_labels.node
                where new_labels.label <> old_labels.label
            {%- endset -%}
            {%- set changed = run_query(changed_sql).columns[0].values()[0] | int -%}
            {% do adapter.drop_relation(labels) %}
            {% do adapter.rename_relation(jumped, labels) %}
            {% do state.update({'rounds': i, 'converged': changed == 0}) %}
        {%- endif -%}
    {%- endfor -%}
    {%- if not state.converged -%}
        {{ exceptions.raise_compiler_error(
            'identity_connected_components: labels still changing after ' ~ max_rounds ~ ' rounds'
        ) }}
    {%- endif -%}
    {{ log('identity_connected_components: converged in ' ~ state.rounds ~ ' rounds', info=False) }}
    {% do identity_components_create(result, 'select node, label as component from ' ~ labels) %}
    {% do adapter.drop_relation(hooked) %}
    {% do adapter.drop_relation(labels) %}
    {{ return('select node, component from ' ~ result) }}
{%- endmacro %}


{#- Drops the scratch tables of the model being built that end in these suffixes. -#}
{% macro identity_scratch_drop(suffixes) -%}
    {%- for suffix in suffixes %}
    {% do adapter.drop_relation(identity_components_scratch(suffix)) %}
    {%- endfor %}
{%- endmacro %}


{#- post-hook of the model that calls identity_connected_components: the result's scratch table
    (and the incremental run's subgraph) is no longer needed once the model's own table holds it. -#}
{% macro identity_components_drop_scratch() -%}
    {% do identity_scratch_drop(['result', 'nodes', 'edges']) %}
{%- endmacro %}


{#- Whether a row of int_identity_records_anchored was rewritten after `watermark` (a timestamp
    expression): its record was (re)extracted, or one of its identifiers flipped, since. The
    records that the graph's incremental models downstream look at again. -#}
{% macro identity_reanchored_since(watermark) -%}
    (_extracted_through > {{ watermark }} or _screened_through > {{ watermark }})
{%- endmacro %}


{#- The record keys of the rows of `anchored` (int_identity_records_anchored) rewritten after
    `watermark`, as identity_reanchored_since picks them: one select per column, so that each
    filter reaches the scan and skips the row groups written before (the rows a run rewrites
    are appended at the table's end). With the two ORed, DuckDB read every record key of the
    table's 27 M rows at 1,000,000 people. -#}
{% macro identity_reanchored_records_since(anchored, watermark) -%}
    select record_key from {{ anchored }} where _extracted_through > {{ watermark }}
    union
    select record_key from {{ anchored }} where _screened_through > {{ watermark }}
{%- endmacro %}
