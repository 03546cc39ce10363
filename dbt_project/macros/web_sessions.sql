{#- CTEs of int_web_sessions_built: rechecked_visitors, the visitors a run re-checks (those with
    an event in `events` loaded after `watermark`, or every visitor of `events` with
    all_visitors), and rechecked_events, one row each: its earliest event loaded since, how
    many of its events were loaded up to the watermark, and how many events its stored
    sessions hold. -#}
{% macro web_sessions_rechecked_sql(events, watermark, all_visitors) -%}
rechecked_visitors as (

    select distinct visitor_id
    from {{ events }}
    {%- if not all_visitors %}
    where _loaded_at > {{ watermark }}
    {%- endif %}

),

event_counts as (

    select
        {{ events }}.visitor_id,
        min(case when {{ events }}._loaded_at > {{ watermark }}
            then {{ events }}.event_at_utc end) as earliest_new_event_at_utc,
        count(case when {{ events }}._loaded_at <= {{ watermark }}
            then 1 end) as known_event_count
    from {{ events }}
    {%- if not all_visitors %}
    inner join rechecked_visitors
        on {{ events }}.visitor_id = rechecked_visitors.visitor_id
    {%- endif %}
    group by {{ events }}.visitor_id

),

stored_counts as (

    select
        stored.visitor_id,
        sum(stored.event_count) as stored_event_count
    from {{ this }} as stored
    inner join rechecked_visitors
        on stored.visitor_id = rechecked_visitors.visitor_id
    group by stored.visitor_id

),

rechecked_events as (

    select
        event_counts.visitor_id,
        event_counts.earliest_new_event_at_utc,
        event_counts.known_event_count,
        coalesce(stored_counts.stored_event_count, 0) as stored_event_count
    from event_counts
    left join stored_counts
        on event_counts.visitor_id = stored_counts.visitor_id

)
{%- endmacro %}
