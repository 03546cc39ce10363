{#- Incremental: each run adds the rows ingestion loaded since the newest _loaded_at already
    here; unique_key email_event_id, so an event seen again (a redelivery, a re-export) replaces its row
    instead of duplicating it. -#}
{{
    config(
        materialized='incremental',
        unique_key='email_event_id',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

with

email_events as (

    select * from {{ ref('stg_email__events') }}
    {% if is_incremental() %}
    where _loaded_at > {{ loaded_at_watermark() }}
    {% endif %}

),

final as (

    select * from email_events

)

select * from final
