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
    holds more than once or that are no record. One aggregation over both: at 1,000,000 people
    (28 M records) the two aggregations and joins it replaces held about 4 GB and ran out of
    dbt's memory beside another model. -#}
{% test identity_every_record_once(model, records) %}

select record_key, sum(in_model) as copies
from (
    select record_key, 1 as is_record, 0 as in_model from {{ records }}
    union all
    select record_key, 0 as is_record, 1 as in_model from {{ model }}
) as keys
group by record_key
having max(is_record) = 0 or sum(in_model) <> 1

{% endtest %}
