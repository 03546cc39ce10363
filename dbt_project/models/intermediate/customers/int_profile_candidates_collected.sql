{#-
    Every value a customer's records offer for a profile field: one row per record and origin
    (a place in the record: an order's customer object, its billing address, ...), with the
    customer the record belongs to (marts.identity_map) and when the value was observed.
    Survivorship (int_customer_profiles_survived) picks one value per field and customer by
    the rules of seeds/survivorship_rules.csv. Emails are the normalised addresses and phones
    E.164: a value that did not normalise is no candidate. Blank text counts as empty.

    Web identify traits carry one `name`: split at the first space into first and last name
    (the generator and most shops send "First Last"); a name without a space gives neither.

    Incremental, per record: a run writes the rows of the records customer_touchpoints rewrote
    since this table's last run, and only theirs. customer_touchpoints (which runs before this
    model) rewrites every record loaded or re-keyed since its own last run, with its customer
    and identity_map.assigned_at: new records, records whose current version was loaded since
    (a contact's new version, a changed order: their values change) and records that changed
    customer (merges and splits). Their rows are replaced by record_key (strategy
    replace_logged, macros/incremental.sql), and a record that no longer offers any value loses
    its rows through a placeholder row (NULL origin) that is never inserted. The customers of
    the rows replaced are logged in int_profile_candidates_collected__replaced, for
    int_customer_profiles_survived: a customer that lost a record to a merge (or lost all of
    them) is redone there, as is every customer of a row written. The other records of a
    customer are not read again (at 1,000,000 people a new day's 160,000 records touched
    customers holding 2 M records, all of which were rewritten when a customer's rows were
    replaced whole). A full rebuild gives the same rows.
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='replace_logged',
        replaced_log_columns=['customer_id'],
        placeholder_column='origin',
        on_schema_change='append_new_columns',
    )
}}
{%- set incremental = is_incremental() -%}
{#- a table built before these columns existed: every customer is recomputed, once -#}
{%- set watermarked = incremental and this_has_columns(['customer_assigned_at', '_built_at']) -%}
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

-- depends_on: {{ ref('customer_touchpoints') }}
with

contacts as {{ cte_inlined() }} (

    select * from {{ ref('stg_contacts__contacts') }}

),

orders as {{ cte_inlined() }} (

    select * from {{ ref('stg_orders__orders') }}

),

identify_events as {{ cte_inlined() }} (

    select *
    from {{ ref('fct_web_events') }}
    where traits_email_normalized is not null
        or traits_phone_e164 is not null
        or traits_name is not null

),

email_events as {{ cte_inlined() }} (

    select * from {{ ref('fct_email_events') }}
    where email_normalized is not null

),

calls as {{ cte_inlined() }} (

    select * from {{ ref('fct_calls') }}

),

-- the records to write, with their customer: every record, or those customer_touchpoints
-- rewrote since this table's last run (the newest rows of its table)
identity_map as (

    {% if watermarked -%}
    select source, source_record_id, record_key, customer_id, customer_assigned_at as assigned_at
    from {{ ref('customer_touchpoints') }}
    where _built_at > {{ loaded_at_watermark('_built_at') }}
    {%- else -%}
    select source, source_record_id, record_key, customer_id, assigned_at
    from {{ ref('identity_map') }}
    {%- endif %}

),

candidates as (

    {% for candidate in candidates %}
    select
        identity_map.customer_id,
        identity_map.record_key,
        cast('{{ candidate.source }}' as {{ text }}) as source,
        cast('{{ candidate.origin }}' as {{ text }}) as origin,
        identity_map.source_record_id,
        cast({{ candidate.observed_at }} as {{ dbt.type_timestamp() }}) as observed_at,
        identity_map.assigned_at as customer_assigned_at,
        cast({{ candidate.relation }}._loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
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
    -- joined before the values are cleaned: a run cleans only its customers' records
    inner join identity_map
        on identity_map.source = '{{ candidate.source }}'
        and identity_map.source_record_id = cast({{ candidate.relation }}.{{ candidate.record_id }} as {{ text }})
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        customer_id,
        record_key,
        source,
        origin,
        source_record_id,
        observed_at
        {%- for column, data_type in profile_columns %},
        {{ column }}
        {%- endfor %},
        cast(customer_assigned_at as timestamp) as customer_assigned_at,
        _loaded_at,
        -- the run that wrote the row: int_customer_profiles_survived redoes these customers
        {{ identity_run_timestamp() }} as _built_at
    from candidates

    {% if incremental %}
    union all

    -- a written record that offers no value any more: a placeholder, so that its old rows go
    select
        identity_map.customer_id,
        identity_map.record_key,
        cast(null as {{ text }}) as source,
        cast(null as {{ text }}) as origin,
        cast(null as {{ text }}) as source_record_id,
        cast(null as {{ dbt.type_timestamp() }}) as observed_at
        {%- for column, data_type in profile_columns %},
        cast(null as {{ data_type }}) as {{ column }}
        {%- endfor %},
        cast(null as timestamp) as customer_assigned_at,
        cast(null as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(null as timestamp) as _built_at
    from identity_map
    where identity_map.record_key not in (select record_key from candidates)
    {% endif %}

)

select * from final
