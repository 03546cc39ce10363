{#- One row per contact: its current version (newest updated_at, then the later file and row). -#}
with

contact_versions as (

    select * from {{ ref('stg_contacts__contact_versions') }}

),

final as (

    select
        contact_id,
        first_name,
        last_name,
        email,
        email_normalized,
        phone,
        phone_e164,
        company,
        address1,
        address2,
        city,
        state,
        postal_code,
        country,
        date_of_birth_raw,
        date_of_birth,
        lifecycle_stage,
        email_opt_out,
        created_at_utc,
        updated_at_utc,
        _file_name,
        _row_number,
        _loaded_at
    from contact_versions
    where is_current

)

select * from final
