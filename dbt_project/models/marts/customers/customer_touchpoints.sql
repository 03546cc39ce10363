{#-
    One timeline across channels: one row per event record of every source, keyed by
    record_key, on the customer marts.identity_map gives the record. Web touchpoints are the
    web events themselves (page, track, identify), the grain identity_map resolves; sessions
    are counted in customer_360 from int_web_sessions_built.

    Incremental: a run processes the records loaded since the newest _loaded_at already here
    (new events, and orders and contacts whose current version changed) plus the records whose
    customer_id changed since the newest customer_assigned_at here (identity_map.assigned_at:
    merges and splits), and replaces their rows by record_key (delete+insert on DuckDB, merge
    on Spark: macros/incremental.sql). A record that is not yet in identity_map waits for the
    run that maps it (its assigned_at is then new). _built_at says which dbt invocation wrote a
    row: the tests check the rows written since they last passed (macros/test_scope.sql).
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}

{%- set text = dbt.type_string() -%}
{%- set timestamp = dbt.type_timestamp() -%}
{%- set money = 'decimal(18, 2)' -%}
{#- What each channel says about what happened; the other channels' columns stay NULL. -#}
{%- set detail_columns = [
    ('event_name', text), ('campaign_name', text), ('campaign_source', text), ('url', text),
    ('email_message_id', text), ('email_is_hard_bounce', 'boolean'),
    ('call_direction', text), ('call_is_answered', 'boolean'), ('call_wait_seconds', 'bigint'),
    ('call_talk_seconds', 'bigint'), ('call_disposition', text), ('call_csat', 'integer'),
    ('order_number', text), ('order_currency', text), ('order_is_cancelled', 'boolean'),
    ('order_net_revenue_reporting', money), ('order_refunded_reporting', money),
] -%}
{%- set channels = [
    {
        'name': 'email', 'source': 'email', 'relation': ref('fct_email_events'),
        'record_id': 'email_event_id', 'at': 'event_at_utc', 'event_type': 'event_type',
        'identified': 'true',
        'details': {
            'campaign_name': 'campaign_name', 'url': 'url', 'email_message_id': 'message_id',
            'email_is_hard_bounce': 'is_hard_bounce',
        },
    },
    {
        'name': 'web', 'source': 'web', 'relation': ref('fct_web_events'),
        'record_id': 'web_event_id', 'at': 'event_at_utc', 'event_type': 'event_type',
        'identified': 'user_id is not null or traits_email_normalized is not null or traits_phone_e164 is not null',
        'details': {
            'event_name': 'event_name', 'campaign_name': 'campaign_name',
            'campaign_source': 'campaign_source', 'url': 'page_url',
        },
    },
    {
        'name': 'call', 'source': 'calls', 'relation': ref('fct_calls'),
        'record_id': 'call_id', 'at': 'started_at_utc',
        'event_type': "case when direction in ('inbound', 'outbound') then " ~ dbt.concat(['direction', "'_call'"]) ~ " else 'call' end",
        'identified': 'true',
        'details': {
            'call_direction': 'direction', 'call_is_answered': 'is_answered',
            'call_wait_seconds': 'wait_seconds', 'call_talk_seconds': 'talk_seconds',
            'call_disposition': 'disposition', 'call_csat': 'csat',
        },
    },
    {
        'name': 'order', 'source': 'orders', 'relation': ref('stg_orders__orders'),
        'record_id': 'order_id', 'at': 'created_at_utc', 'event_type': "'order_placed'",
        'identified': 'true',
        'details': {
            'order_number': 'order_number', 'order_currency': 'currency',
            'order_is_cancelled': 'is_cancelled',
            'order_net_revenue_reporting': 'net_revenue_reporting',
            'order_refunded_reporting': 'total_refunded * rate_to_reporting',
        },
    },
    {
        'name': 'crm', 'source': 'contacts', 'relation': ref('stg_contacts__contacts'),
        'record_id': 'contact_id', 'at': 'created_at_utc', 'event_type': "'contact_created'",
        'identified': 'true',
        'details': {},
    },
] -%}

{%- set identity_map = ref('identity_map') %}

with

{% if is_incremental() -%}
{#- The identity_map rows of the records to (re)write: loaded since the newest _loaded_at here
    (new events, and orders and contacts whose current version changed), or re-keyed since the
    newest customer_assigned_at here (merges and splits). Read once for all channels: a few
    hundred thousand rows a day, which each channel then reads. The two conditions are two
    selects, not one `or`: the re-keyed rows are the newest of identity_map (a filter on
    assigned_at skips the rest), and the records loaded since are found by their keys alone;
    with `or`, every row of identity_map was read whole (2.6 s at 1,000,000 people). -#}
changed_map as (

    select source, source_record_id, record_key, customer_id, assigned_at
    from {{ identity_map }}
    where assigned_at > {{ loaded_at_watermark('customer_assigned_at') }}

    union

    select source, source_record_id, record_key, customer_id, assigned_at
    from {{ identity_map }}
    where record_key in (
        {%- for channel in channels %}
        select {{ identity_record_key("'" ~ channel.source ~ "'", "cast(" ~ channel.record_id ~ " as " ~ text ~ ")") }}
        from {{ channel.relation }}
        where _loaded_at > {{ loaded_at_watermark('_loaded_at') }}
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    )

),

{% endif -%}
{#- In a full build each channel reads identity_map on its own, not through one CTE: DuckDB
    materialises a CTE that five selects read (all 27 million rows at 1M people, spilled to
    disk) instead of pushing each channel's filters into the scan. -#}
{%- set mapped = 'changed_map' if is_incremental() else identity_map -%}
{% for channel in channels %}
{{ channel.name }}_touchpoints as (

    select
        identity_map.record_key,
        identity_map.customer_id,
        cast(records.{{ channel.at }} as {{ timestamp }}) as touchpoint_at,
        cast('{{ channel.name }}' as {{ text }}) as channel,
        cast({{ channel.event_type }} as {{ text }}) as event_type,
        cast('{{ channel.source }}' as {{ text }}) as source,
        identity_map.source_record_id,
        coalesce({{ channel.identified }}, false) as is_identified_record,
        {%- for column, data_type in detail_columns %}
        cast({{ channel.details.get(column, 'null') }} as {{ data_type }}) as {{ column }},
        {%- endfor %}
        identity_map.assigned_at as customer_assigned_at,
        records._loaded_at,
        {{ identity_run_timestamp() }} as _built_at
    from {{ channel.relation }} as records
    inner join {{ mapped }} as identity_map
        on identity_map.source = '{{ channel.source }}'
        and cast(records.{{ channel.record_id }} as {{ text }}) = identity_map.source_record_id

),

{% endfor %}
final as (

    {% for channel in channels %}
    select * from {{ channel.name }}_touchpoints
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
