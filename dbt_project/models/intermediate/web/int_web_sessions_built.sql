{#-
    Web sessions: a visitor's events with no more than `session_timeout_minutes` (30) between
    one and the next. A visitor is the browser (anonymousId), else the user (userId alone).
    When the visitor logs in during a session (any event of the session carries a userId, the
    identify first of all), the whole session belongs to that user, from its first event.

    Incremental, per visitor: a run re-sessionises the complete history of every visitor with
    an event loaded after the last run's newest load time minus `late_event_days`, and replaces
    all of that visitor's sessions (delete+insert on visitor_id). A late or out-of-order event
    can thus merge, split or re-own sessions of any age, and sessions whose id changed do not
    linger. The lookback only widens the set of visitors re-checked (a safety margin for loads
    that land out of _loaded_at order); event-time lateness is handled exactly, whatever its age.

    It reads the events from fct_web_events, the table the run has just brought up to date,
    not from the stg_web__events view: finding the visitors to rebuild and reading their
    history then scans stored columns, instead of extracting every event's JSON again.
-#}
{{
    config(
        materialized='incremental',
        unique_key='visitor_id',
        incremental_strategy=visitor_rebuild_strategy(),
        on_schema_change='append_new_columns',
    )
}}

{%- set timeout_minutes = var('session_timeout_minutes', 30) | int -%}
{%- set late_event_days = var('late_event_days', 3) | int -%}

with

web_events as (

    select
        web_event_id,
        visitor_id,
        anonymous_id,
        user_id,
        event_type,
        event_at_utc,
        page_url,
        page_path,
        page_referrer,
        campaign_source,
        campaign_medium,
        campaign_name,
        _loaded_at
    from {{ ref('fct_web_events') }}
    where event_at_utc is not null

),

{% if is_incremental() %}
visitors_to_rebuild as (

    select distinct visitor_id
    from web_events
    where _loaded_at > {{ dbt.dateadd('day', -late_event_days, loaded_at_watermark('last_loaded_at')) }}

),

events_to_sessionise as (

    select web_events.*
    from web_events
    inner join visitors_to_rebuild
        on web_events.visitor_id = visitors_to_rebuild.visitor_id

),
{% else %}
events_to_sessionise as (

    select * from web_events

),
{% endif %}

events_with_previous as (

    select
        *,
        lag(event_at_utc) over (
            partition by visitor_id
            order by event_at_utc asc nulls last, web_event_id asc nulls last
        ) as previous_event_at_utc
    from events_to_sessionise

),

events_flagged as (

    select
        *,
        case
            when previous_event_at_utc is null then 1
            when event_at_utc > {{ dbt.dateadd('minute', timeout_minutes, 'previous_event_at_utc') }} then 1
            else 0
        end as is_session_start
    from events_with_previous

),

events_numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by visitor_id
            order by event_at_utc asc nulls last, web_event_id asc nulls last
            rows between unbounded preceding and current row
        ) as session_number,
        row_number() over (
            partition by visitor_id
            order by event_at_utc asc nulls last, web_event_id asc nulls last
        ) as visitor_event_number
    from events_flagged

),

session_first_events as (

    select
        visitor_id,
        session_number,
        web_event_id as first_event_id,
        page_url as landing_page_url,
        page_path as landing_page_path,
        page_referrer as referrer,
        campaign_source,
        campaign_medium,
        campaign_name
    from events_numbered
    where is_session_start = 1

),

session_users as (

    select
        visitor_id,
        session_number,
        user_id,
        event_at_utc as identified_at_utc
    from events_numbered
    where user_id is not null
    qualify row_number() over (
        partition by visitor_id, session_number
        order by event_at_utc asc nulls last, web_event_id asc nulls last
    ) = 1

),

session_totals as (

    select
        visitor_id,
        session_number,
        max(anonymous_id) as anonymous_id,
        min(event_at_utc) as session_started_at_utc,
        max(event_at_utc) as session_ended_at_utc,
        cast(count(*) as bigint) as event_count,
        cast(sum(case when event_type = 'page' then 1 else 0 end) as bigint) as page_view_count,
        cast(sum(case when event_type = 'track' then 1 else 0 end) as bigint) as track_count,
        cast(sum(case when event_type = 'identify' then 1 else 0 end) as bigint) as identify_count,
        cast(count(distinct user_id) as bigint) as distinct_user_count,
        max(_loaded_at) as last_loaded_at
    from events_numbered
    group by visitor_id, session_number

),

final as (

    select
        md5({{ dbt.concat(["session_totals.visitor_id", "'|'", "session_first_events.first_event_id"]) }})
            as session_id,
        session_totals.visitor_id,
        session_totals.anonymous_id,
        session_users.user_id,
        session_users.identified_at_utc,
        session_totals.distinct_user_count,
        cast(session_totals.session_number as bigint) as session_number,
        session_totals.session_started_at_utc,
        session_totals.session_ended_at_utc,
        cast({{ dbt.datediff('session_totals.session_started_at_utc', 'session_totals.session_ended_at_utc', 'second') }} as bigint)
            as duration_seconds,
        session_totals.event_count,
        session_totals.page_view_count,
        session_totals.track_count,
        session_totals.identify_count,
        session_first_events.first_event_id,
        session_first_events.landing_page_url,
        session_first_events.landing_page_path,
        session_first_events.referrer,
        session_first_events.campaign_source,
        session_first_events.campaign_medium,
        session_first_events.campaign_name,
        session_totals.last_loaded_at
    from session_totals
    inner join session_first_events
        on session_totals.visitor_id = session_first_events.visitor_id
        and session_totals.session_number = session_first_events.session_number
    left join session_users
        on session_totals.visitor_id = session_users.visitor_id
        and session_totals.session_number = session_users.session_number

)

select * from final
