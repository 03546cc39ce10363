{#- Convergence of the connected components: no edge of `edges` joins two nodes whose
    components differ (and every node of an edge has a component). Fails with the offending
    edges. -#}
{% test identity_components_converged(model, edges) %}

select
    edges.node_l,
    edges.node_r,
    components_l.component as component_l,
    components_r.component as component_r
from {{ edges }} as edges
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
    holds more than once. -#}
{% test identity_every_record_once(model, records) %}

with

expected as (
    select distinct record_key from {{ records }}
),

actual as (
    select record_key, count(*) as copies from {{ model }} group by record_key
)

select expected.record_key, coalesce(actual.copies, 0) as copies
from expected
left join actual
    on expected.record_key = actual.record_key
where coalesce(actual.copies, 0) <> 1

union all

select actual.record_key, actual.copies
from actual
left join expected
    on actual.record_key = expected.record_key
where expected.record_key is null

{% endtest %}
