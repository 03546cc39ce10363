{#- Incremental: each run adds the rows ingestion loaded since the newest _loaded_at already
    here; unique_key call_id, so an event seen again (a redelivery, a re-export) replaces its row
    instead of duplicating it. -#}
{{
    config(
        materialized='incremental',
        unique_key='call_id',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

with

calls as (

    select * from {{ ref('stg_calls__calls') }}
    {% if is_incremental() %}
    where _loaded_at > {{ loaded_at_watermark() }}
    {% endif %}

),

final as (

    select * from calls

)

select * from final
