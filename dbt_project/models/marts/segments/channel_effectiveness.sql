{#-
    Per channel and campaign: reach, engagement, the call centre's service, and the orders
    and net revenue attributed to it by first and by last touch (int_orders_attributed,
    window var attribution_window_days). One row per (channel, campaign_source, campaign):

    - email: campaign_source email, campaign the email's campaign. reach = customers with a
      delivered message; open / click rate = delivered messages opened (an open or a click) /
      clicked, over delivered messages (as customer_360); unsubscribes and spam reports.
    - web: campaign_source the utm source ('(direct)' without one), campaign the utm
      campaign. reach = customers with a session; web_sessions = sessions (a session's
      customer is the one of its first event, as customer_360).
    - call: campaign_source the direction (inbound, outbound), campaign the queue. reach =
      customers called or calling; answer rate = answered / calls; average wait over answered
      calls; resolution rate = answered calls resolved / answered calls; average CSAT (1-5)
      of rated calls.
    Missing names are '(none)'. Attributed orders and revenue are zero where nothing was
    credited; direct web sessions are no touch, so their row never gets credit.
-#}
{%- set window_days = var('attribution_window_days', 7) | int -%}
{%- set text = dbt.type_string() -%}

with

identity_map as {{ cte_inlined() }} (

    select source, source_record_id, customer_id
    from {{ ref('identity_map') }}

),

email_events as {{ cte_inlined() }} (

    select
        customer_id,
        event_type,
        email_message_id,
        coalesce(campaign_name, '(none)') as campaign
    from {{ ref('customer_touchpoints') }}
    where channel = 'email'

),

email_messages as (

    select
        customer_id,
        email_message_id,
        max(campaign) as campaign,
        max(case when event_type = 'delivered' then 1 else 0 end) as is_delivered,
        max(case when event_type in ('open', 'click') then 1 else 0 end) as is_opened,
        max(case when event_type = 'click' then 1 else 0 end) as is_clicked
    from email_events
    where email_message_id is not null
    group by customer_id, email_message_id

),

email_message_stats as (

    select
        campaign,
        count(distinct case when is_delivered = 1 then customer_id end) as reach_customers,
        sum(is_delivered) as messages_delivered,
        sum(is_delivered * is_opened) as messages_opened,
        sum(is_delivered * is_clicked) as messages_clicked
    from email_messages
    group by campaign

),

email_event_stats as (

    select
        campaign,
        sum(case when event_type = 'unsubscribe' then 1 else 0 end) as unsubscribes,
        sum(case when event_type = 'spamreport' then 1 else 0 end) as spam_reports
    from email_events
    group by campaign

),

email_stats as (

    select
        'email' as channel,
        'email' as campaign_source,
        email_event_stats.campaign,
        coalesce(email_message_stats.reach_customers, 0) as reach_customers,
        coalesce(email_message_stats.messages_delivered, 0) as email_messages_delivered,
        coalesce(email_message_stats.messages_opened, 0) as email_messages_opened,
        coalesce(email_message_stats.messages_clicked, 0) as email_messages_clicked,
        email_event_stats.unsubscribes as email_unsubscribes,
        email_event_stats.spam_reports as email_spam_reports
    from email_event_stats
    left join email_message_stats
        on email_event_stats.campaign = email_message_stats.campaign

),

web_stats as (

    select
        'web' as channel,
        coalesce(sessions.campaign_source, '(direct)') as campaign_source,
        coalesce(sessions.campaign_name, '(none)') as campaign,
        count(distinct identity_map.customer_id) as reach_customers,
        count(*) as web_sessions
    from {{ ref('int_web_sessions_built') }} as sessions
    inner join identity_map
        on identity_map.source = 'web'
        and sessions.first_event_id = identity_map.source_record_id
    group by
        coalesce(sessions.campaign_source, '(direct)'),
        coalesce(sessions.campaign_name, '(none)')

),

call_stats as (

    select
        'call' as channel,
        coalesce(calls.direction, '(none)') as campaign_source,
        coalesce(calls.queue, '(none)') as campaign,
        count(distinct identity_map.customer_id) as reach_customers,
        count(*) as calls,
        sum(case when calls.is_answered then 1 else 0 end) as calls_answered,
        sum(case when calls.is_answered and calls.disposition = 'resolved' then 1 else 0 end)
            as calls_resolved,
        avg(case when calls.is_answered then cast(calls.wait_seconds as double) end)
            as average_wait_seconds,
        avg(cast(calls.csat as double)) as average_csat,
        count(calls.csat) as csat_responses
    from {{ ref('fct_calls') }} as calls
    inner join identity_map
        on identity_map.source = 'calls'
        and calls.call_id = identity_map.source_record_id
    group by coalesce(calls.direction, '(none)'), coalesce(calls.queue, '(none)')

),

attributed as (

    select
        order_id,
        net_revenue_reporting,
        first_touch_channel,
        first_touch_campaign_source,
        first_touch_campaign,
        last_touch_channel,
        last_touch_campaign_source,
        last_touch_campaign
    from {{ ref('int_orders_attributed') }}

),

first_touch_stats as (

    select
        first_touch_channel as channel,
        first_touch_campaign_source as campaign_source,
        first_touch_campaign as campaign,
        count(*) as orders,
        sum(net_revenue_reporting) as revenue
    from attributed
    where first_touch_channel is not null
    group by first_touch_channel, first_touch_campaign_source, first_touch_campaign

),

last_touch_stats as (

    select
        last_touch_channel as channel,
        last_touch_campaign_source as campaign_source,
        last_touch_campaign as campaign,
        count(*) as orders,
        sum(net_revenue_reporting) as revenue
    from attributed
    where last_touch_channel is not null
    group by last_touch_channel, last_touch_campaign_source, last_touch_campaign

),

campaigns as (

    select channel, campaign_source, campaign from email_stats
    union
    select channel, campaign_source, campaign from web_stats
    union
    select channel, campaign_source, campaign from call_stats
    union
    select channel, campaign_source, campaign from first_touch_stats
    union
    select channel, campaign_source, campaign from last_touch_stats

),

final as (

    select
        cast(campaigns.channel as {{ text }}) as channel,
        cast(campaigns.campaign_source as {{ text }}) as campaign_source,
        cast(campaigns.campaign as {{ text }}) as campaign,
        cast(
            coalesce(email_stats.reach_customers, web_stats.reach_customers, call_stats.reach_customers, 0)
            as bigint
        ) as reach_customers,
        cast(email_stats.email_messages_delivered as bigint) as email_messages_delivered,
        cast(email_stats.email_messages_opened as bigint) as email_messages_opened,
        cast(email_stats.email_messages_clicked as bigint) as email_messages_clicked,
        cast(
            case
                when email_stats.email_messages_delivered > 0
                    then cast(email_stats.email_messages_opened as double) / email_stats.email_messages_delivered
            end as double
        ) as email_open_rate,
        cast(
            case
                when email_stats.email_messages_delivered > 0
                    then cast(email_stats.email_messages_clicked as double) / email_stats.email_messages_delivered
            end as double
        ) as email_click_rate,
        cast(email_stats.email_unsubscribes as bigint) as email_unsubscribes,
        cast(email_stats.email_spam_reports as bigint) as email_spam_reports,
        cast(web_stats.web_sessions as bigint) as web_sessions,
        cast(call_stats.calls as bigint) as calls,
        cast(call_stats.calls_answered as bigint) as calls_answered,
        cast(
            case
                when call_stats.calls > 0
                    then cast(call_stats.calls_answered as double) / call_stats.calls
            end as double
        ) as call_answer_rate,
        cast(call_stats.average_wait_seconds as double) as call_average_wait_seconds,
        cast(
            case
                when call_stats.calls_answered > 0
                    then cast(call_stats.calls_resolved as double) / call_stats.calls_answered
            end as double
        ) as call_resolution_rate,
        cast(call_stats.average_csat as double) as call_average_csat,
        cast(call_stats.csat_responses as bigint) as call_csat_responses,
        cast(coalesce(first_touch_stats.orders, 0) as bigint) as first_touch_orders,
        cast(coalesce(first_touch_stats.revenue, 0) as decimal(18, 2)) as first_touch_revenue_reporting,
        cast(coalesce(last_touch_stats.orders, 0) as bigint) as last_touch_orders,
        cast(coalesce(last_touch_stats.revenue, 0) as decimal(18, 2)) as last_touch_revenue_reporting,
        cast({{ window_days }} as integer) as attribution_window_days
    from campaigns
    left join email_stats
        on campaigns.channel = email_stats.channel
        and campaigns.campaign_source = email_stats.campaign_source
        and campaigns.campaign = email_stats.campaign
    left join web_stats
        on campaigns.channel = web_stats.channel
        and campaigns.campaign_source = web_stats.campaign_source
        and campaigns.campaign = web_stats.campaign
    left join call_stats
        on campaigns.channel = call_stats.channel
        and campaigns.campaign_source = call_stats.campaign_source
        and campaigns.campaign = call_stats.campaign
    left join first_touch_stats
        on campaigns.channel = first_touch_stats.channel
        and campaigns.campaign_source = first_touch_stats.campaign_source
        and campaigns.campaign = first_touch_stats.campaign
    left join last_touch_stats
        on campaigns.channel = last_touch_stats.channel
        and campaigns.campaign_source = last_touch_stats.campaign_source
        and campaigns.campaign = last_touch_stats.campaign

)

select * from final
