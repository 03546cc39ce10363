{#-
    The call centre as each customer lives it: one row per customer and queue they called or
    were called in (fct_calls, customer from identity_map).

    - calls, inbound_calls, answered_calls, abandoned_calls (inbound, never answered);
      total and average wait over answered calls; resolved_calls (answered, disposition
      resolved) and resolution rate over answered calls; average CSAT (1-5) of rated calls.
    - repeat_calls: calls that came within var service_repeat_call_days (7) days after the
      customer's previous call in the same queue (the first call did not settle it).
    - A call is a poor experience when it was inbound and never answered, or answered and not
      resolved, or rated var service_poor_csat_max (2) or lower.
    - is_experience_worsening: the customer's calls in this queue in the last var
      service_recent_days (30) days up to customer_360.as_of_date have a larger share of poor
      experiences than their earlier calls in it (at least one call in each period).
      customer_is_experience_worsening applies the same rule to all the customer's calls, every
      queue together (one value per customer, repeated on each of their rows).
-#}
{%- set repeat_days = var('service_repeat_call_days', 7) | int -%}
{%- set recent_days = var('service_recent_days', 30) | int -%}
{%- set poor_csat_max = var('service_poor_csat_max', 2) | int -%}
{%- set text = dbt.type_string() -%}

with

as_of as (

    select max(as_of_date) as as_of_date
    from {{ ref('customer_360') }}

),

calls as (

    select
        identity_map.customer_id,
        calls.call_id,
        coalesce(calls.queue, '(none)') as queue,
        calls.direction,
        calls.started_at_utc,
        coalesce(calls.is_answered, false) as is_answered,
        calls.wait_seconds,
        calls.disposition,
        calls.csat
    from {{ ref('fct_calls') }} as calls
    inner join {{ ref('identity_map') }} as identity_map
        on identity_map.source = 'calls'
        and calls.call_id = identity_map.source_record_id
    where calls.started_at_utc is not null

),

flagged as (

    select
        calls.*,
        case
            when calls.is_answered and calls.disposition = 'resolved' then 1 else 0
        end as is_resolved,
        case
            when calls.direction = 'inbound' and not calls.is_answered then 1
            when calls.is_answered and coalesce(calls.disposition, '') <> 'resolved' then 1
            when calls.csat <= {{ poor_csat_max }} then 1
            else 0
        end as is_poor,
        case
            when cast(calls.started_at_utc as date)
                > {{ dbt.dateadd('day', -recent_days, 'as_of.as_of_date') }} then 1
            else 0
        end as is_recent,
        lag(calls.started_at_utc) over (
            partition by calls.customer_id, calls.queue
            order by calls.started_at_utc asc nulls last, calls.call_id asc nulls last
        ) as previous_call_at
    from calls
    cross join as_of

),

per_queue as (

    select
        customer_id,
        queue,
        count(*) as calls,
        sum(case when direction = 'inbound' then 1 else 0 end) as inbound_calls,
        sum(case when is_answered then 1 else 0 end) as answered_calls,
        sum(case when direction = 'inbound' and not is_answered then 1 else 0 end)
            as abandoned_calls,
        sum(case when is_answered then wait_seconds end) as total_wait_seconds,
        avg(case when is_answered then cast(wait_seconds as double) end) as average_wait_seconds,
        sum(is_resolved) as resolved_calls,
        sum(
            case
                when previous_call_at is not null
                    and started_at_utc <= {{ dbt.dateadd('day', repeat_days, 'previous_call_at') }}
                    then 1
                else 0
            end
        ) as repeat_calls,
        count(csat) as csat_responses,
        avg(cast(csat as double)) as average_csat,
        sum(is_poor) as poor_calls,
        sum(is_recent) as recent_calls,
        sum(is_poor * is_recent) as recent_poor_calls,
        min(started_at_utc) as first_call_at,
        max(started_at_utc) as last_call_at
    from flagged
    group by customer_id, queue

),

per_customer as (

    select
        customer_id,
        sum(is_recent) as recent_calls,
        sum(is_poor * is_recent) as recent_poor_calls,
        count(*) - sum(is_recent) as earlier_calls,
        sum(is_poor) - sum(is_poor * is_recent) as earlier_poor_calls
    from flagged
    group by customer_id

),

trended as (

    select
        per_queue.*,
        per_queue.calls - per_queue.recent_calls as earlier_calls,
        per_queue.poor_calls - per_queue.recent_poor_calls as earlier_poor_calls
    from per_queue

),

final as (

    select
        cast(trended.customer_id as {{ text }}) as customer_id,
        cast(trended.queue as {{ text }}) as queue,
        cast(trended.calls as bigint) as calls,
        cast(trended.inbound_calls as bigint) as inbound_calls,
        cast(trended.answered_calls as bigint) as answered_calls,
        cast(trended.abandoned_calls as bigint) as abandoned_calls,
        cast(trended.total_wait_seconds as bigint) as total_wait_seconds,
        cast(trended.average_wait_seconds as double) as average_wait_seconds,
        cast(trended.resolved_calls as bigint) as resolved_calls,
        cast(
            case
                when trended.answered_calls > 0
                    then cast(trended.resolved_calls as double) / trended.answered_calls
            end as double
        ) as resolution_rate,
        cast(trended.repeat_calls as bigint) as repeat_calls,
        cast(trended.csat_responses as bigint) as csat_responses,
        cast(trended.average_csat as double) as average_csat,
        cast(trended.poor_calls as bigint) as poor_experience_calls,
        cast(trended.recent_calls as bigint) as recent_calls,
        cast(
            case
                when trended.recent_calls > 0
                    then cast(trended.recent_poor_calls as double) / trended.recent_calls
            end as double
        ) as recent_poor_experience_share,
        cast(
            case
                when trended.earlier_calls > 0
                    then cast(trended.earlier_poor_calls as double) / trended.earlier_calls
            end as double
        ) as earlier_poor_experience_share,
        -- recent share > earlier share, multiplied out (no division by zero)
        case
            when trended.recent_calls > 0
                and trended.earlier_calls > 0
                and trended.recent_poor_calls * trended.earlier_calls
                    > trended.earlier_poor_calls * trended.recent_calls
                then true
            else false
        end as is_experience_worsening,
        case
            when per_customer.recent_calls > 0
                and per_customer.earlier_calls > 0
                and per_customer.recent_poor_calls * per_customer.earlier_calls
                    > per_customer.earlier_poor_calls * per_customer.recent_calls
                then true
            else false
        end as customer_is_experience_worsening,
        trended.first_call_at,
        trended.last_call_at
    from trended
    inner join per_customer
        on trended.customer_id = per_customer.customer_id

)

select * from final
