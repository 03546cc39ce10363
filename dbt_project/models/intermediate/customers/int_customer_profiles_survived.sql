{{ config(materialized='table') }}

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

with

candidates as (

    select * from {{ ref('int_profile_candidates_collected') }}

),

rules as (

    select field, source, origin, trust_rank
    from {{ ref('survivorship_rules') }}

),

blocked_identifiers as (

    select customer_id, identifier_type, identifier_value
    from {{ ref('customer_identifiers') }}
    where is_blocked_as_link
        and identifier_type in ('{{ identifier_fields | join("', '") }}')

),

customers as (

    select distinct customer_id
    from candidates

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
        {%- endfor %}
    from customers
    {%- for field in fields %}
    left join {{ field }}_winners
        on customers.customer_id = {{ field }}_winners.customer_id
    {%- endfor %}

)

select * from final
