{#- Convergence of the connected components: no edge of `edges` joins two nodes whose
    components differ (and every node of an edge has a component). Fails with the offending
    edges.

    Given the columns that say when a row was written (`model_written_at`, `edges_written_at`),
    it checks only the edges written since it last passed and those touching a node whose row
    was written since, as the scoped tests of macros/test_scope.sql do, and every edge when
    those say so: an edge checked before, neither of whose nodes changed component since,
    still joins one component. -#}
{% test identity_components_converged(model, edges, model_written_at=none, edges_written_at=none) %}
{%- set since = tests_passed_at() if model_written_at and edges_written_at else none -%}

{%- if since %}
with written_nodes as (
    select node from {{ model }} where {{ model_written_at }} > {{ since }}
),

scoped_edges as (
    select node_l, node_r from {{ edges }}
    where {{ edges_written_at }} > {{ since }}
    union
    select node_l, node_r from {{ edges }}
    where node_l in (select node from written_nodes)
    union
    select node_l, node_r from {{ edges }}
    where node_r in (select node from written_nodes)
)

{% endif -%}
select
    edges.node_l,
    edges.node_r,
    components_l.component as component_l,
    components_r.component as component_r
from {{ 'scoped_edges' if since else edges }} as edges
left join {{ model }} as components_l
    on edges.node_l = components_l.node
left join {{ model }} as components_r
    on edges.node_r = components_r.node
where components_l.component is null
    or components_r.component is null
    or components_l.component <> components_r.component

{% endtest %}


{#- Every record of the identity graph's input is in `model` exactly once: the records of
    `records` (a relation with record_key) missing from the model, and record keys the model
    holds more than once or that are no record. One aggregation over both: at 1,000,000 people
    (28 M records) the two aggregations and joins it replaces held about 4 GB and ran out of
    dbt's memory beside another model.

    Given the columns that say when a row was written (`model_written_at`, `records_written_at`),
    it checks only the keys of the rows either side wrote since it last passed, as the scoped
    tests of macros/test_scope.sql do, and every key when those say so. -#}
{% test identity_every_record_once(model, records, model_written_at=none, records_written_at=none) %}
{%- set since = tests_passed_at() if model_written_at and records_written_at else none -%}

{%- if since %}
with written as (
    select record_key from {{ records }} where {{ records_written_at }} > {{ since }}
    union
    select record_key from {{ model }} where {{ model_written_at }} > {{ since }}
)

{% endif -%}
select record_key, sum(in_model) as copies
from (
    select record_key, 1 as is_record, 0 as in_model from {{ records }}
    {%- if since %}
    where record_key in (select record_key from written)
    {%- endif %}
    union all
    select record_key, 0 as is_record, 1 as in_model from {{ model }}
    {%- if since %}
    where record_key in (select record_key from written)
    {%- endif %}
) as keys
group by record_key
having max(is_record) = 0 or sum(in_model) <> 1

{% endtest %}
