{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='replace_keys',
        placeholder_column='candidates_built_at',
        on_schema_change='append_new_columns',
        pre_hook="{{ replaced_log_create(ref('int_profile_candidates_collected'), ['customer_id']) }}",
        post_hook="{{ replaced_log_prune(ref('int_profile_candidates_collected'), 'candidates_built_at') }}",
    )
}}

{#-
    Survivorship: one row per customer with the winning value of every profile field, and the
    record it came from. For each field, among the customer's candidates that
    seeds/survivorship_rules.csv lists for it (int_profile_candidates_collected):
      1. a non-empty value beats an empty one (empty candidates are never picked);
      2. then the lowest trust_rank of the rule (1 = most trusted);
      3. then the most recent observation (observed_at, newest first);
      4. then the smallest record_key, then origin (a fixed tiebreaker: the same data always
         gives the same answer).
    The postal address survives as one block (address1, address2, city, region, postal code
    from the same record, so a street never pairs with another record's city); a candidate
    without a street line is empty for it. Every other field survives on its own.

    Incremental, per customer: a run redoes the customers with candidates written since the
    newest candidates_built_at here (int_profile_candidates_collected writes the rows of every
    record that changed), those whose candidates it replaced since (it logs their customers:
    a customer that lost a record to a merge, or all of them, when its row goes through a
    placeholder with NULL candidates_built_at; not found by reading every customer of its 17 M
    rows, 2 s at 1,000,000 people), and those
    whose email and phone identifiers blocked as links changed (blocked_identifiers: a shared
    inbox found, or one no longer shared). A full rebuild gives the same rows.
-#}
{%- set fields = {
    'first_name': ['first_name'],
    'last_name': ['last_name'],
    'email': ['email'],
    'phone': ['phone'],
    'country': ['country'],
    'lifecycle_stage': ['lifecycle_stage'],
    'company': ['company'],
    'date_of_birth': ['date_of_birth'],
    'address': ['address1', 'address2', 'city', 'region', 'postal_code'],
} -%}
{#- Fields that are identifiers of identity resolution (customer_identifiers.identifier_type). -#}
{%- set identifier_fields = ['email', 'phone'] -%}
{%- set placeholder_values = var('identity_blocked_values', []) -%}

{%- set incremental = is_incremental() -%}
{#- a table built before these columns existed: every customer is redone, once -#}
{%- set watermarked = incremental and this_has_columns(['candidates_built_at', 'blocked_identifiers']) -%}
{#- candidates rebuilt whole since (a --full-refresh of that model alone) logged no customers:
    every customer is redone, so that one left without candidates still loses its row -#}
{%- if watermarked and execute and this is not string -%}
    {%- set watermarked = sql_holds(upstream_followed_since(
        ref('int_profile_candidates_collected'), '_built_at', 'candidates_built_at')) -%}
{%- endif -%}

with

all_blocked_identifiers as (

    select customer_id, identifier_type, identifier_value
    from {{ ref('customer_identifiers') }}
    where is_blocked_as_link
        and identifier_type in ('{{ identifier_fields | join("', '") }}')

),

-- the customer's blocked email and phone values, in one text: what survivorship depends on
blocked_fingerprints as (

    select
        customer_id,
        {{ dbt.listagg(dbt.concat(['identifier_type', "':'", 'identifier_value']), "','",
            "order by identifier_type, identifier_value") }} as blocked_identifiers
    from all_blocked_identifiers
    group by customer_id

),

{% if incremental %}
changed_customers as (

    {% if watermarked -%}
    select customer_id
    from {{ ref('int_profile_candidates_collected') }}
    where _built_at > {{ loaded_at_watermark('candidates_built_at') }}

    union

    {% if this is string -%}
    -- a unit test: `this` is its fixture and no log exists; the customers without candidates
    -- stand for the ones it would hold
    select customer_id
    from {{ this }}
    where customer_id not in (
        select customer_id from {{ ref('int_profile_candidates_collected') }}
    )
    {%- else -%}
    select customer_id
    from {{ replaced_log_relation(ref('int_profile_candidates_collected')) }}
    where _replaced_at > {{ loaded_at_watermark('candidates_built_at') }}
    {%- endif %}

    union

    select coalesce(current_blocked.customer_id, stored_blocked.customer_id)
    from blocked_fingerprints as current_blocked
    full outer join (
        select customer_id, blocked_identifiers
        from {{ this }}
        where blocked_identifiers is not null
    ) as stored_blocked
        on current_blocked.customer_id = stored_blocked.customer_id
    where current_blocked.customer_id is null
        or stored_blocked.customer_id is null
        or current_blocked.blocked_identifiers <> stored_blocked.blocked_identifiers
    {%- else %}
    select customer_id from {{ this }}

    union

    select customer_id from {{ ref('int_profile_candidates_collected') }}
    {%- endif %}

),

{% endif %}
candidates as (

    select * from {{ ref('int_profile_candidates_collected') }}
    {% if incremental %}
    where customer_id in (select customer_id from changed_customers)
    {% endif %}

),

rules as (

    select field, source, origin, trust_rank
    from {{ ref('survivorship_rules') }}

),

blocked_identifiers as (

    select * from all_blocked_identifiers
    {% if incremental %}
    where customer_id in (select customer_id from changed_customers)
    {% endif %}

),

customers as (

    select
        customer_id,
        max(_built_at) as candidates_built_at
    from candidates
    group by customer_id

),

{% for field, columns in fields.items() %}
{{ field }}_winners as (

    select
        candidates.customer_id,
        {%- for column in columns %}
        candidates.{{ column }},
        {%- endfor %}
        candidates.record_key as {{ field }}_record_key,
        candidates.origin as {{ field }}_origin
    from candidates
    inner join rules
        on rules.field = '{{ field }}'
        and candidates.source = rules.source
        and candidates.origin = rules.origin
    {%- if field in identifier_fields %}
    left join blocked_identifiers
        on candidates.customer_id = blocked_identifiers.customer_id
        and blocked_identifiers.identifier_type = '{{ field }}'
        and candidates.{{ columns[0] }} = blocked_identifiers.identifier_value
    {%- endif %}
    where candidates.{{ columns[0] }} is not null
    {%- if field in identifier_fields and placeholder_values %}
        and candidates.{{ columns[0] }} not in (
            {%- for value in placeholder_values %}'{{ value | lower | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor -%}
        )
    {%- endif %}
    qualify row_number() over (
        partition by candidates.customer_id
        order by
            {%- if field in identifier_fields %}
            case when blocked_identifiers.customer_id is null then 0 else 1 end asc nulls last,
            {%- endif %}
            rules.trust_rank asc nulls last,
            candidates.observed_at desc nulls last,
            candidates.record_key asc nulls last,
            candidates.origin asc nulls last
    ) = 1

),

{% endfor %}
final as (

    select
        customers.customer_id
        {%- for field, columns in fields.items() %}
        {%- for column in columns %},
        {{ field }}_winners.{{ column }}
        {%- endfor %},
        {{ field }}_winners.{{ field }}_record_key,
        {{ field }}_winners.{{ field }}_origin
        {%- endfor %},
        cast(blocked_fingerprints.blocked_identifiers as {{ dbt.type_string() }})
            as blocked_identifiers,
        cast(customers.candidates_built_at as timestamp) as candidates_built_at,
        {{ identity_run_timestamp() }} as _survived_at
    from customers
    {%- for field in fields %}
    left join {{ field }}_winners
        on customers.customer_id = {{ field }}_winners.customer_id
    {%- endfor %}
    left join blocked_fingerprints
        on customers.customer_id = blocked_fingerprints.customer_id

    {% if incremental %}
    union all

    -- a changed customer with no candidate any more: a placeholder, so that its row goes
    select
        changed_customers.customer_id
        {%- for field, columns in fields.items() %}
        {%- for column in columns %},
        cast(null as {{ 'date' if column == 'date_of_birth' else dbt.type_string() }}) as {{ column }}
        {%- endfor %},
        cast(null as {{ dbt.type_string() }}) as {{ field }}_record_key,
        cast(null as {{ dbt.type_string() }}) as {{ field }}_origin
        {%- endfor %},
        cast(null as {{ dbt.type_string() }}) as blocked_identifiers,
        cast(null as timestamp) as candidates_built_at,
        cast(null as timestamp) as _survived_at
    from changed_customers
    where changed_customers.customer_id not in (select customer_id from customers)
    {% endif %}

)

select * from final
