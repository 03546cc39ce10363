{#-
    Web sessions: a visitor's events with no more than `session_timeout_minutes` (30) between
    one and the next. A visitor is the browser (anonymousId), else the user (userId alone).
    When the visitor logs in during a session (any event of the session carries a userId, the
    identify first of all), the whole session belongs to that user, from its first event.

    Incremental, per visitor. A run re-checks every visitor with an event loaded after the
    last run's newest load time (the watermark). A visitor whose stored sessions hold as many
    events as the visitor has events loaded up to the watermark (events are immutable, so the
    same ones) is right up to its first event loaded since: that event falls in, or after, one
    stored session (P) and cannot change any session before P, which all ended more than the
    timeout before P began. The visitor's events from P's start on are sessionised again and
    numbered on from the sessions kept. A visitor whose stored sessions miss an event, or whose
    new event is earlier than its first stored session, is rebuilt whole. Strategy
    replace_from (macros/incremental.sql) then replaces each rebuilt visitor's stored sessions
    from the first rebuilt one on. Late and out-of-order events thus merge, split or re-own
    sessions of any age, exactly, sessions that stopped existing are deleted, and a visitor's
    sessions of last year are not rewritten because of an event today.

    Visitors without a new event are checked as a whole, by one count: the events stored
    sessions hold of them must be the events loaded up to the watermark. Their counts are
    those of all visitors minus those of the re-checked ones, which the run counts anyway
    (first, into a scratch table). When they differ, an event reached fct_web_events with a
    load time the last run had passed (a load it did not see, fct_web_events rebuilt) or one
    left it, of any age: then every visitor is re-checked as above, one by one. A shortfall
    cancelled exactly by as many events gone from other visitors would hide; nothing else can.
    A visitor all of whose events are gone keeps its stored sessions (a rebuild has no event of
    it to write), so later runs check one by one until a --full-refresh.
    A window of load days re-checked every visitor of the last three days' loads, which after
    a first load of history was every visitor (9.9 s of a one-new-day build at 1,000,000
    people).

    It reads the events from fct_web_events, the table the run has just brought up to date,
    not from the stg_web__events view: finding the visitors to rebuild and reading their
    history then scans stored columns, instead of extracting every event's JSON again.
-#}
{{
    config(
        materialized='incremental',
        unique_key='visitor_id',
        incremental_strategy=session_rebuild_strategy(),
        replace_from_column='session_started_at_utc',
        on_schema_change='append_new_columns',
        post_hook="{{ identity_scratch_drop(['rechecked']) }}",
    )
}}

{%- set timeout_minutes = var('session_timeout_minutes', 30) | int -%}
{%- set watermark = loaded_at_watermark('last_loaded_at') -%}

with

web_events as {{ cte_inlined() }} (

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
{%- set rechecked_sql -%}
with

web_events as (

    select visitor_id, event_at_utc, _loaded_at
    from {{ ref('fct_web_events') }}
    where event_at_utc is not null

),

{{ web_sessions_rechecked_sql('web_events', watermark, all_visitors=false) }}

select * from rechecked_events
{%- endset -%}
{#- a unit test's `this` is its fixture (text): every visitor is checked one by one -#}
{%- set check_all = true -%}
{%- if execute and this is not string -%}
    {%- set scratch = identity_components_scratch('rechecked') -%}
    {% do identity_components_create(scratch, rechecked_sql) %}
    {#- visitors without a new event: their stored events are those loaded up to the watermark -#}
    {%- set check_all = not sql_holds(
        '(select count(*) from ' ~ ref('fct_web_events') ~ ' where event_at_utc is not null'
        ~ ' and _loaded_at <= ' ~ watermark ~ ')'
        ~ ' - (select coalesce(sum(known_event_count), 0) from ' ~ scratch ~ ')'
        ~ ' = (select coalesce(sum(event_count), 0) from ' ~ this ~ ')'
        ~ ' - (select coalesce(sum(stored_event_count), 0) from ' ~ scratch ~ ')'
    ) -%}
{%- endif -%}
{% if check_all -%}
{{ web_sessions_rechecked_sql('web_events', watermark, all_visitors=true) }},
{%- else -%}
rechecked_events as (

    select visitor_id, earliest_new_event_at_utc, known_event_count, stored_event_count
    from {{ identity_components_scratch('rechecked') }}

),
{%- endif %}

visitors_to_rebuild as (

    -- Stored sessions that hold every event loaded up to the last run's watermark are right
    -- up to the first new event: rebuilt from there (none: the visitor is left alone). Stored
    -- sessions that miss one (a load the last run did not see) are rebuilt whole (NULL).
    select
        rechecked_events.visitor_id,
        case
            when rechecked_events.stored_event_count = rechecked_events.known_event_count
                then rechecked_events.earliest_new_event_at_utc
        end as rebuild_at_or_before_utc
    from rechecked_events
    where rechecked_events.earliest_new_event_at_utc is not null
        or rechecked_events.stored_event_count <> rechecked_events.known_event_count

),

rebuild_points as (

    -- P: the newest stored session that starts at or before the point to rebuild from.
    -- Sessions before P stay; P and everything after it is rebuilt.
    select
        visitors_to_rebuild.visitor_id,
        max(stored.session_started_at_utc) as rebuild_from_utc,
        cast(greatest(count(stored.session_started_at_utc) - 1, 0) as bigint) as kept_session_count
    from visitors_to_rebuild
    left join {{ this }} as stored
        on visitors_to_rebuild.visitor_id = stored.visitor_id
        and stored.session_started_at_utc <= visitors_to_rebuild.rebuild_at_or_before_utc
    group by visitors_to_rebuild.visitor_id

),

events_to_sessionise as (

    select
        web_events.*,
        rebuild_points.kept_session_count
    from web_events
    inner join rebuild_points
        on web_events.visitor_id = rebuild_points.visitor_id
    where rebuild_points.rebuild_from_utc is null
        or web_events.event_at_utc >= rebuild_points.rebuild_from_utc

),
{% else %}
events_to_sessionise as (

    select
        *,
        cast(0 as bigint) as kept_session_count
    from web_events

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
        max(_loaded_at) as last_loaded_at,
        max(kept_session_count) as kept_session_count
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
        cast(session_totals.kept_session_count + session_totals.session_number as bigint)
            as session_number,
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
