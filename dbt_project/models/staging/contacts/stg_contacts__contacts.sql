{#- One row per contact: its current version (newest updated_at, then the later file and row).

    A table, not a view like the other staging models, as stg_orders__orders: as a view every
    model and test that read it took the current versions out of all 1.5 M of them again
    (six models and their tests, at 1,000,000 people).

    Incremental: a run takes again the contacts with a version loaded since the newest
    _loaded_at here, from all their versions, and replaces their rows (unique key contact_id).
    Everything is taken again when this model's or stg_contacts__contact_versions's code
    changed (_settings_hash), or the table predates that column. A full rebuild gives the same
    rows. -#}
{{
    config(
        materialized='incremental',
        unique_key='contact_id',
        incremental_strategy=event_incremental_strategy(),
        on_schema_change='append_new_columns',
    )
}}
{%- set versions = ref('stg_contacts__contact_versions') -%}
{#- what the rows depend on besides the contacts: the code that types and ranks them -#}
{%- set versions_node = (graph.get('nodes') or {}).get('model.' ~ project_name ~ '.stg_contacts__contact_versions') if execute else none -%}
{%- set versions_code = versions_node.raw_code if versions_node else '' -%}
{%- set settings_hash = "'" ~ local_md5(model.raw_code ~ versions_code) ~ "'" -%}
{%- set changed_only = reloaded_only(settings_hash) %}

with

contact_versions as (

    select * from {{ versions }}
    {%- if changed_only %}
    -- every version of the contacts that got a version since the last run
    {{ versions_of_reloaded(versions, 'contact_id') }}
    {%- endif %}

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
        _loaded_at,
        {{ settings_hash }} as _settings_hash
    from contact_versions
    where is_current

)

select * from final
