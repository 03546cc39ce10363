with

source as (

    select * from {{ source('raw', 'web_events') }}

),

final as (

    select
        cast(message_id as {{ dbt.type_string() }}) as web_event_id,
        lower(trim(type)) as event_type,
        {{ clean_text('event') }} as event_name,
        event_at as event_at_utc,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('user_id') }} as user_id,
        -- the visitor sessions are built for: the browser, else the logged-in user
        coalesce(
            {{ clean_text('anonymous_id') }},
            {{ dbt.concat(["'user:'", clean_text('user_id')]) }}
        ) as visitor_id,
        {{ json_text('context', '$.page.url') }} as page_url,
        {{ json_text('context', '$.page.path') }} as page_path,
        nullif({{ json_text('context', '$.page.referrer') }}, '') as page_referrer,
        {{ json_text('context', '$.page.title') }} as page_title,
        {{ json_text('context', '$.campaign.source') }} as campaign_source,
        {{ json_text('context', '$.campaign.medium') }} as campaign_medium,
        {{ json_text('context', '$.campaign.name') }} as campaign_name,
        {{ json_text('context', '$.userAgent') }} as user_agent,
        {{ json_text('context', '$.ip') }} as ip,
        {{ json_text('traits', '$.email') }} as traits_email,
        traits_email_normalized,
        {{ json_text('traits', '$.phone') }} as traits_phone,
        traits_phone_e164,
        {{ json_text('traits', '$.name') }} as traits_name,
        cast(properties as {{ dbt.type_string() }}) as properties_json,
        _file_name,
        _row_number,
        _loaded_at
    from source

)

select * from final
