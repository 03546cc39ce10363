with

source as (

    select * from {{ source('raw', 'email_events') }}

),

final as (

    select
        cast(sg_event_id as {{ dbt.type_string() }}) as email_event_id,
        {{ clean_text('sg_message_id') }} as message_id,
        lower(trim(event)) as event_type,
        event_at as event_at_utc,
        {{ clean_text('email') }} as email,
        email_normalized,
        -- SendGrid sends one category as a string and several as a list: always a JSON list
        -- here, and the first one is the campaign.
        case
            when category is null then null
            when {{ json_is_array('category') }} then cast(category as {{ dbt.type_string() }})
            else {{ dbt.concat(["'['", "cast(category as " ~ dbt.type_string() ~ ")", "']'"]) }}
        end as categories_json,
        case
            when {{ json_is_array('category') }} then {{ json_text('category', '$[0]') }}
            else {{ json_text('category', '$') }}
        end as campaign_name,
        {{ clean_text('url') }} as url,
        {{ clean_text('reason') }} as bounce_reason,
        lower({{ clean_text('type') }}) as bounce_type,
        coalesce(lower(trim(event)) = 'bounce' and lower(trim(type)) = 'bounce', false)
            as is_hard_bounce,
        {{ clean_text('useragent') }} as user_agent,
        {{ clean_text('ip') }} as ip,
        _file_name,
        _row_number,
        _loaded_at
    from source

)

select * from final
