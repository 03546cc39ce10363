{#-
    Every value a customer's records offer for a profile field: one row per record and origin
    (a place in the record: an order's customer object, its billing address, ...), with the
    customer the record belongs to (marts.identity_map) and when the value was observed.
    Survivorship (int_customer_profiles_survived) picks one value per field and customer by
    the rules of seeds/survivorship_rules.csv. Emails are the normalised addresses and phones
    E.164: a value that did not normalise is no candidate. Blank text counts as empty.

    Web identify traits carry one `name`: split at the first space into first and last name
    (the generator and most shops send "First Last"); a name without a space gives neither.

    A table (its tests took 28 s at 1,000,000 people as a view, each recomputing it).
-#}
{{ config(materialized='table') }}
{%- set text = dbt.type_string() -%}
{%- set profile_columns = [
    ('first_name', text), ('last_name', text), ('email', text), ('phone', text),
    ('country', text), ('lifecycle_stage', text), ('company', text), ('date_of_birth', 'date'),
    ('address1', text), ('address2', text), ('city', text), ('region', text), ('postal_code', text),
] -%}
{%- set traits_name = clean_text('traits_name') -%}
{%- set name_space = dbt.position("' '", traits_name) -%}
{%- set candidates = [
    {
        'source': 'contacts', 'origin': 'contact', 'relation': 'contacts',
        'record_id': 'contact_id', 'observed_at': 'updated_at_utc',
        'values': {
            'first_name': 'first_name', 'last_name': 'last_name', 'email': 'email_normalized',
            'phone': 'phone_e164', 'country': 'country', 'lifecycle_stage': 'lifecycle_stage',
            'company': 'company', 'date_of_birth': 'date_of_birth', 'address1': 'address1',
            'address2': 'address2', 'city': 'city', 'region': 'state', 'postal_code': 'postal_code',
        },
    },
    {
        'source': 'orders', 'origin': 'customer', 'relation': 'orders',
        'record_id': 'order_id', 'observed_at': 'created_at_utc',
        'values': {
            'first_name': 'customer_first_name', 'last_name': 'customer_last_name',
            'email': 'customer_email_normalized', 'phone': 'customer_phone_e164',
        },
    },
    {
        'source': 'orders', 'origin': 'order', 'relation': 'orders',
        'record_id': 'order_id', 'observed_at': 'created_at_utc',
        'values': {'email': 'email_normalized', 'phone': 'phone_e164'},
    },
    {
        'source': 'orders', 'origin': 'billing_address', 'relation': 'orders',
        'record_id': 'order_id', 'observed_at': 'created_at_utc',
        'values': {
            'first_name': 'billing_first_name', 'last_name': 'billing_last_name',
            'country': 'upper(billing_country_code)', 'address1': 'billing_address1',
            'address2': 'billing_address2', 'city': 'billing_city', 'region': 'billing_province',
            'postal_code': 'billing_zip',
        },
    },
    {
        'source': 'orders', 'origin': 'shipping_address', 'relation': 'orders',
        'record_id': 'order_id', 'observed_at': 'created_at_utc',
        'values': {
            'first_name': 'shipping_first_name', 'last_name': 'shipping_last_name',
            'country': 'upper(shipping_country_code)', 'address1': 'shipping_address1',
            'address2': 'shipping_address2', 'city': 'shipping_city', 'region': 'shipping_province',
            'postal_code': 'shipping_zip',
        },
    },
    {
        'source': 'web', 'origin': 'identify_traits', 'relation': 'identify_events',
        'record_id': 'web_event_id', 'observed_at': 'event_at_utc',
        'values': {
            'first_name': 'case when ' ~ name_space ~ ' > 1 then substr(' ~ traits_name ~ ', 1, ' ~ name_space ~ ' - 1) end',
            'last_name': 'case when ' ~ name_space ~ ' > 1 then substr(' ~ traits_name ~ ', ' ~ name_space ~ ' + 1) end',
            'email': 'traits_email_normalized', 'phone': 'traits_phone_e164',
        },
    },
    {
        'source': 'email', 'origin': 'recipient', 'relation': 'email_events',
        'record_id': 'email_event_id', 'observed_at': 'event_at_utc',
        'values': {'email': 'email_normalized'},
    },
    {
        'source': 'calls', 'origin': 'caller', 'relation': 'calls',
        'record_id': 'call_id', 'observed_at': 'started_at_utc',
        'values': {'phone': 'customer_number_e164', 'country': 'country'},
    },
] -%}

with

identity_map as (

    select source, source_record_id, record_key, customer_id
    from {{ ref('identity_map') }}

),

contacts as (

    select * from {{ ref('stg_contacts__contacts') }}

),

orders as (

    select * from {{ ref('stg_orders__orders') }}

),

identify_events as (

    select *
    from {{ ref('fct_web_events') }}
    where traits_email_normalized is not null
        or traits_phone_e164 is not null
        or traits_name is not null

),

email_events as (

    select * from {{ ref('fct_email_events') }}
    where email_normalized is not null

),

calls as (

    select * from {{ ref('fct_calls') }}

),

candidates as (

    {% for candidate in candidates %}
    select
        cast('{{ candidate.source }}' as {{ text }}) as source,
        cast('{{ candidate.origin }}' as {{ text }}) as origin,
        cast({{ candidate.record_id }} as {{ text }}) as source_record_id,
        cast({{ candidate.observed_at }} as {{ dbt.type_timestamp() }}) as observed_at,
        {%- for column, data_type in profile_columns %}
        {%- set expression = candidate['values'].get(column) %}
        {%- if expression is none %}
        cast(null as {{ data_type }}) as {{ column }}{{ ',' if not loop.last }}
        {%- elif data_type == text %}
        cast({{ clean_text(expression) }} as {{ data_type }}) as {{ column }}{{ ',' if not loop.last }}
        {%- else %}
        cast({{ expression }} as {{ data_type }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endif %}
        {%- endfor %}
    from {{ candidate.relation }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        identity_map.customer_id,
        identity_map.record_key,
        candidates.source,
        candidates.origin,
        candidates.source_record_id,
        candidates.observed_at
        {%- for column, data_type in profile_columns %},
        candidates.{{ column }}
        {%- endfor %}
    from candidates
    inner join identity_map
        on candidates.source = identity_map.source
        and candidates.source_record_id = identity_map.source_record_id

)

select * from final
