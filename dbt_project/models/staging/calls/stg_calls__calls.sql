with

source as (

    select * from {{ source('raw', 'calls') }}

),

typed as (

    select
        cast(call_id as {{ dbt.type_string() }}) as call_id,
        lower({{ clean_text('direction') }}) as direction,
        {{ clean_text('customer_number') }} as customer_number,
        customer_number_e164,
        upper({{ clean_text('country') }}) as country,
        {{ clean_text('agent_id') }} as agent_id,
        lower({{ clean_text('queue') }}) as queue,
        started_at_utc,
        answered_at_utc,
        ended_at_utc,
        lower({{ clean_text('disposition') }}) as disposition,
        try_cast(trim(csat) as integer) as csat_parsed,
        _file_name,
        _row_number,
        _loaded_at
    from source

),

final as (

    select
        call_id,
        direction,
        customer_number,
        customer_number_e164,
        country,
        agent_id,
        queue,
        started_at_utc,
        answered_at_utc,
        ended_at_utc,
        answered_at_utc is not null as is_answered,
        case
            when answered_at_utc >= started_at_utc
                then {{ dbt.datediff('started_at_utc', 'answered_at_utc', 'second') }}
        end as wait_seconds,
        case
            when ended_at_utc >= answered_at_utc
                then {{ dbt.datediff('answered_at_utc', 'ended_at_utc', 'second') }}
        end as talk_seconds,
        disposition,
        case when csat_parsed between 1 and 5 then csat_parsed end as csat,
        _file_name,
        _row_number,
        _loaded_at
    from typed

)

select * from final
