{#-
    Whether each customer of customer_360 may be contacted on each channel, and if not, why.

    Email: the surviving address (customer_360.email) is suppressed when the customer, or
    anyone else, ever asked not to get email at that address or the address cannot take it.
    The reasons, the first that applies: no_email (no address); opted_out (a CRM contact of the
    customer, or any CRM contact with this address, has email_opt_out); unsubscribed (an
    unsubscribe event of the customer or to this address); hard_bounced (a permanent bounce,
    same); spam_report (a spam report, same). Checking the address as well as the person keeps
    a shared or re-used address suppressed for everyone who has it.

    Phone: reachable with a surviving E.164 number (customer_360.phone); the sources carry no
    phone consent, so the one reason is no_phone.
-#}
{#- A table, not a view: customer_segments and seven data tests read it, and as a view each of them
    evaluated it again (16 s of one day's tests at 1M people). -#}
{{ config(materialized='table') }}
{%- set text = dbt.type_string() -%}

with

customers as (

    select
        customer_id,
        email,
        phone,
        email_opt_out,
        is_unsubscribed,
        has_hard_bounced,
        has_spam_report
    from {{ ref('customer_360') }}

),

address_events as (

    select
        email_normalized as email,
        max(case when event_type = 'unsubscribe' then 1 else 0 end) = 1 as is_unsubscribed,
        max(case when is_hard_bounce then 1 else 0 end) = 1 as has_hard_bounced,
        max(case when event_type = 'spamreport' then 1 else 0 end) = 1 as has_spam_report
    from {{ ref('fct_email_events') }}
    where email_normalized is not null
    group by email_normalized

),

address_opt_outs as (

    select distinct email_normalized as email
    from {{ ref('stg_contacts__contacts') }}
    where email_opt_out
        and email_normalized is not null

),

screened as (

    select
        customers.customer_id,
        customers.email,
        customers.phone,
        case
            when customers.email is null then 'no_email'
            when customers.email_opt_out or address_opt_outs.email is not null then 'opted_out'
            when customers.is_unsubscribed or coalesce(address_events.is_unsubscribed, false)
                then 'unsubscribed'
            when customers.has_hard_bounced or coalesce(address_events.has_hard_bounced, false)
                then 'hard_bounced'
            when customers.has_spam_report or coalesce(address_events.has_spam_report, false)
                then 'spam_report'
        end as email_suppression_reason,
        case
            when customers.phone is null then 'no_phone'
        end as phone_suppression_reason
    from customers
    left join address_events
        on customers.email = address_events.email
    left join address_opt_outs
        on customers.email = address_opt_outs.email

),

final as (

    select
        cast(customer_id as {{ text }}) as customer_id,
        email_suppression_reason is null as is_email_reachable,
        cast(email_suppression_reason as {{ text }}) as email_suppression_reason,
        phone_suppression_reason is null as is_phone_reachable,
        cast(phone_suppression_reason as {{ text }}) as phone_suppression_reason
    from screened

)

select * from final
