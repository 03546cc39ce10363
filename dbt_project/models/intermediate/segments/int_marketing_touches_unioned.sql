{#-
    Every marketing touch of a customer, one row each, on one key with channel_effectiveness
    (channel, campaign_source, campaign): the touches orders are attributed to.

    - email: an open or a click (campaign_source email; campaign: the email's campaign);
    - web: a session that came from a campaign (a utm source; campaign_source: the utm source,
      campaign: the utm campaign). Direct and organic sessions are no touch;
    - call: a call an agent and the customer talked in (answered), either direction
      (campaign_source: inbound or outbound; campaign: the queue).
    Missing names are '(none)'.
-#}
{#- A table, not a view: as a view each of its six tests recomputed it from four models (2.2 s of
    a one-new-day run at 1,000,000 people with one dbt thread); int_orders_attributed reads it
    once. -#}
{{ config(materialized='table') }}

{%- set text = dbt.type_string() -%}

with

identity_map as (

    select source, source_record_id, customer_id
    from {{ ref('identity_map') }}

),

touchpoints as (

    select
        record_key,
        customer_id,
        touchpoint_at,
        channel,
        event_type,
        source_record_id,
        campaign_name,
        call_direction,
        call_is_answered
    from {{ ref('customer_touchpoints') }}
    where channel in ('email', 'call')

),

email_touches as (

    select
        record_key as touch_id,
        customer_id,
        touchpoint_at as touched_at,
        'email' as channel,
        'email' as campaign_source,
        coalesce(campaign_name, '(none)') as campaign
    from touchpoints
    where channel = 'email'
        and event_type in ('open', 'click')

),

web_touches as (

    select
        {{ dbt.concat(["'session:'", "sessions.session_id"]) }} as touch_id,
        identity_map.customer_id,
        sessions.session_started_at_utc as touched_at,
        'web' as channel,
        sessions.campaign_source,
        coalesce(sessions.campaign_name, '(none)') as campaign
    from {{ ref('int_web_sessions_built') }} as sessions
    inner join identity_map
        on identity_map.source = 'web'
        and sessions.first_event_id = identity_map.source_record_id
    where sessions.campaign_source is not null

),

call_touches as (

    select
        touchpoints.record_key as touch_id,
        touchpoints.customer_id,
        touchpoints.touchpoint_at as touched_at,
        'call' as channel,
        coalesce(touchpoints.call_direction, '(none)') as campaign_source,
        coalesce(calls.queue, '(none)') as campaign
    from touchpoints
    inner join {{ ref('fct_calls') }} as calls
        on touchpoints.source_record_id = calls.call_id
    where touchpoints.channel = 'call'
        and touchpoints.call_is_answered

),

unioned as (

    select * from email_touches
    union all
    select * from web_touches
    union all
    select * from call_touches

),

final as (

    select
        cast(touch_id as {{ text }}) as touch_id,
        cast(customer_id as {{ text }}) as customer_id,
        cast(touched_at as {{ dbt.type_timestamp() }}) as touched_at,
        cast(channel as {{ text }}) as channel,
        cast(campaign_source as {{ text }}) as campaign_source,
        cast(campaign as {{ text }}) as campaign
    from unioned

)

select * from final
