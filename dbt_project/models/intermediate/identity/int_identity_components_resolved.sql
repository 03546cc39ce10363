{#-
    Connected components of the identity graph (int_identity_edges_built): one row per node
    with its component, the smallest node id of the component. Computed by
    macros/identity_components.sql (min-label propagation with pointer jumping, looped until no
    label changes). The component id is an internal label: it changes whenever the smallest
    node of the component does; identity_map turns components into stable customer ids.
-#}
{{
    config(
        materialized='table',
        post_hook="{{ identity_components_drop_scratch() }}",
    )
}}

{{ identity_connected_components(ref('int_identity_edges_built')) }}
