{#-
    Edges of the identity graph, between nodes that are identifiers (email:..., phone:...) or
    records without any linking identifier (record:...):
      - identifier: a record carrying two or more linking identifiers ties each of them to its
        anchor (the smallest one): a star per record, deduplicated;
      - match: a probabilistic pair of int_record_matches_scored at or above var
        identity_match_threshold ties the anchors of both profiles' records (each to the
        profile's hub, the hubs to each other);
      - node: a self edge for every linking identifier and identifier-less record, so that
        every node is in the graph even when nothing links it.
    node_l <= node_r; one row per edge.

    Incremental: a run recomputes the edges that touch a changed node, and writes only those
    that are new or changed (_changed_at: the run), deleting the ones that are gone (strategy
    replace_logged, placeholder node_l: the replaced rows go to int_identity_edges_built__replaced
    for int_identity_components_resolved). Changed nodes, since this table's last run:
      - every identifier of the records whose anchor row was rewritten (a new or re-extracted
        record, or one whose identifier flipped), now and before (the pairs
        int_identifiers_extracted replaced, from its log), and their record nodes;
      - identifiers whose is_blocked_as_link flipped;
      - the anchors of match edges that appeared or disappeared (matches are scored anew each
        run).
    An edge touching a changed node is carried by a record that carries that node, so the star
    edges of every record carrying a changed node (or anchored on one) hold every such edge. A
    full rebuild gives the same rows. int_identity_records_resolved, the log's last reader,
    deletes the extracted log rows that all of its readers have taken in.

    In that mode the match edges, the changed records and nodes, and the records to recompute
    are written to scratch tables first (<model>__cc_*, dropped by the post-hook): estimated as
    filters of int_identity_records_anchored, the few changed records made DuckDB hash all 39 M
    rows of int_identifiers_extracted to probe them (8 of the model's 15 s at 1,000,000 people).
-#}
{{
    config(
        materialized='incremental',
        unique_key='edge_key',
        incremental_strategy='replace_logged',
        replaced_log_columns=['node_l', 'node_r'],
        placeholder_column='node_l',
        on_schema_change='append_new_columns',
        pre_hook="{{ replaced_log_create(ref('int_identifiers_extracted'), ['record_key', 'identifier_key']) }}",
        post_hook="{{ identity_scratch_drop(['match_edges', 'changed_records', 'changed_nodes', 'records']) }}",
    )
}}
{%- set match_threshold = var('identity_match_threshold', 0.9) -%}
{%- set watermark = loaded_at_watermark('_changed_at') -%}
{#- full: a first build or --full-refresh; rewrite: see below; diff_all: every edge recomputed
    and compared with the stored ones, when more than var identity_edges_diff_all_share of the
    records changed since (a new rule of merge protection that flips many identifiers: one pass
    over everything is cheaper than following them); changed: the edges that touch a changed
    node -#}
{%- set mode = 'full' -%}
{%- if is_incremental() -%}
    {#- rewrite: a table that predates these columns is written anew (the strategy deletes its
        rows, which have no edge_key) -#}
    {%- set mode = 'rewrite' -%}
    {%- if execute and this_has_columns(['edge_key', '_changed_at']) -%}
        {%- set mode = 'diff_all' -%}
        {%- set share = run_query(
            'select cast(count(case when ' ~ identity_reanchored_since(watermark)
            ~ ' then 1 end) as double)'
            ~ ' / greatest(count(*), 1) from ' ~ ref('int_identity_records_anchored')
        ).columns[0].values()[0] -%}
        {%- if share <= var('identity_edges_diff_all_share', 0.05) | float -%}
            {%- set mode = 'changed' -%}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}
{%- set incremental = mode == 'changed' -%}
{#- every match edge: few (CRM contacts and orders at or above the threshold). A row of
    int_record_matches_scored pairs two match profiles (or one with itself): every record of
    one is the same person as every record of the other. Each matched profile's records are
    tied to its hub (the smallest anchor among them), and the hubs of two matched profiles to
    each other: the same components as an edge for every record pair, with edges growing with
    the records, not their pairs (8.4 M record pairs at 1,000,000 people). The anchors are looked
    up once, in one scan of int_identity_records_anchored. -#}
{%- set match_edges_sql -%}
    with

    matches as (

        select profile_key_l, profile_key_r
        from {{ ref('int_record_matches_scored') }}
        where match_probability >= {{ match_threshold }}

    ),

    members as (

        select record_key, profile_key
        from {{ ref('int_match_records_prepared') }}
        where profile_key in (
            select profile_key_l from matches
            union
            select profile_key_r from matches
        )

    ),

    member_anchors as (

        select members.profile_key, anchored.anchor_node
        from members
        inner join {{ ref('int_identity_records_anchored') }} as anchored
            on members.record_key = anchored.record_key
        -- the semi join as well: DuckDB then filters the 27 M-row scan by the members' keys
        where anchored.record_key in (select record_key from members)

    ),

    hubs as (

        select profile_key, min(anchor_node) as hub_node
        from member_anchors
        group by profile_key

    ),

    ties as (

        select hubs_l.hub_node as node_a, hubs_r.hub_node as node_b
        from matches
        inner join hubs as hubs_l
            on matches.profile_key_l = hubs_l.profile_key
        inner join hubs as hubs_r
            on matches.profile_key_r = hubs_r.profile_key

        union all

        select hubs.hub_node, member_anchors.anchor_node
        from member_anchors
        inner join hubs
            on member_anchors.profile_key = hubs.profile_key

    )

    select distinct
        least(node_a, node_b) as node_l,
        greatest(node_a, node_b) as node_r
    from ties
    where node_a <> node_b
{%- endset -%}
{%- if incremental -%}
    {%- set scratch_match_edges = identity_components_scratch('match_edges') -%}
    {%- set scratch_changed_nodes = identity_components_scratch('changed_nodes') -%}
    {%- set scratch_records = identity_components_scratch('records') -%}
    {%- set scratch_changed_records = identity_components_scratch('changed_records') -%}
    {%- set changed_records_sql -%}
{{ identity_reanchored_records_since(ref('int_identity_records_anchored'), watermark) }}
    {%- endset -%}
    {%- set changed_nodes_sql -%}
with

match_edges as (

    select node_l, node_r from {{ scratch_match_edges }}

),

-- match edges that appeared (not stored at all) or disappeared (stored as match, gone)
changed_matches as (

    select match_edges.node_l, match_edges.node_r
    from match_edges
    left join {{ this }} as stored
        on match_edges.node_l = stored.node_l
        and match_edges.node_r = stored.node_r
    where stored.node_l is null

    union all

    select stored.node_l, stored.node_r
    from {{ this }} as stored
    left join match_edges
        on stored.node_l = match_edges.node_l
        and stored.node_r = match_edges.node_r
    where stored.edge_type = 'match'
        and match_edges.node_l is null

),

changed_records as (

    select record_key from {{ scratch_changed_records }}

),

changed_nodes as (

    select extracted.identifier_key as node
    from {{ ref('int_identifiers_extracted') }} as extracted
    where extracted.record_key in (select record_key from changed_records)
        and extracted.identifier_key is not null

    union

    select identifier_key
    from {{ replaced_log_relation(ref('int_identifiers_extracted')) }}
    where _replaced_at > {{ watermark }}
        and identifier_key is not null

    union

    select {{ dbt.concat(["'record:'", "record_key"]) }}
    from changed_records

    union

    select identifier_key
    from {{ ref('int_identifiers_screened') }}
    where _link_status_at > {{ watermark }}

    union

    select node_l from changed_matches

    union

    select node_r from changed_matches

)

select node from changed_nodes
    {%- endset -%}
    {%- set records_sql -%}
with

changed_records as (

    select record_key from {{ scratch_changed_records }}

),

changed_nodes as (

    select node from {{ scratch_changed_nodes }}

)

-- the changed records, the records that carry a changed node (a record's anchor is one of its
-- identifiers, so this holds the records anchored on one), and the records that are a changed
-- node themselves; one IN over a union: a bloom-filtered scan, not three probes of every row
select record_key, anchor_node, linking_identifier_count
from {{ ref('int_identity_records_anchored') }}
    where record_key in (
        select record_key from changed_records

        union

        select record_key
        from {{ ref('int_identifiers_extracted') }}
        where identifier_key in (select node from changed_nodes)

        union

        select substr(node, length('record:') + 1)
        from changed_nodes
        where node like 'record:%'
    )
    {%- endset -%}
    {%- if execute -%}
        {#- the log is read now, before the pre-hook runs: it may not exist yet -#}
        {% do run_query(replaced_log_create(ref('int_identifiers_extracted'), ['record_key', 'identifier_key'])) %}
        {% do identity_components_create(scratch_match_edges, match_edges_sql) %}
        {% do identity_components_create(scratch_changed_records, changed_records_sql) %}
        {% do identity_components_create(scratch_changed_nodes, changed_nodes_sql) %}
        {% do identity_components_create(scratch_records, records_sql) %}
    {%- endif -%}
{%- endif -%}
{%- set text = dbt.type_string() -%}

with

screened as {{ cte_inlined() }} (

    select identifier_key
    from {{ ref('int_identifiers_screened') }}
    where not is_blocked_as_link

),

match_edges as (

    {%- if incremental %}
    select node_l, node_r from {{ scratch_match_edges }}
    {%- else %}
    {{ match_edges_sql }}
    {%- endif %}

),

{% if incremental -%}
changed_nodes as (

    select node from {{ scratch_changed_nodes }}

),

{% endif -%}
-- the records whose star edges are recomputed: all of them, or those touching a changed node
records as (

    select record_key, anchor_node, linking_identifier_count
    {%- if incremental %}
    from {{ scratch_records }}
    {%- else %}
    from {{ ref('int_identity_records_anchored') }}
    {%- endif %}

),

extracted as (

    select record_key, identifier_key
    from {{ ref('int_identifiers_extracted') }}
    where identifier_key is not null
    {%- if incremental %}
        and record_key in (select record_key from records where linking_identifier_count >= 2)
    {%- endif %}

),

identifier_edges as (

    select distinct
        records.anchor_node as node_a,
        extracted.identifier_key as node_b
    from records
    inner join extracted
        on records.record_key = extracted.record_key
    inner join screened
        on extracted.identifier_key = screened.identifier_key
    where records.linking_identifier_count >= 2
        and extracted.identifier_key <> records.anchor_node

),

node_edges as (

    select identifier_key as node_a, identifier_key as node_b
    from screened
    {%- if incremental %}
    where identifier_key in (select node from changed_nodes)
    {%- endif %}

    union all

    select anchor_node as node_a, anchor_node as node_b
    from records
    where linking_identifier_count = 0

),

all_edges as (

    select node_a, node_b, 'identifier' as edge_type from identifier_edges
    union all
    select node_l, node_r, 'match' as edge_type from match_edges
    {%- if incremental %}
    where node_l in (select node from changed_nodes)
        or node_r in (select node from changed_nodes)
    {%- endif %}
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
        {{ dbt.concat(["cast(length(node_l) as " ~ text ~ ")", "':'", "node_l", "node_r"]) }} as edge_key,
        node_l,
        node_r,
        edge_type
    from edges

),

{% if mode in ('diff_all', 'changed') -%}
-- the stored edges that touch a changed node (all of them in diff_all): each is recomputed
-- above, or gone
stored_touched as (

    select edge_key
    from {{ this }}
    {%- if incremental %}
    where node_l in (select node from changed_nodes)
        or node_r in (select node from changed_nodes)
    {%- endif %}

),

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
        stored_touched.edge_key,
        cast(null as {{ text }}) as node_l,
        cast(null as {{ text }}) as node_r,
        cast(null as {{ text }}) as edge_type
    from stored_touched
    left join keyed
        on stored_touched.edge_key = keyed.edge_key
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
    from {{ 'changed' if mode in ('diff_all', 'changed') else 'keyed' }}

)

select * from final
