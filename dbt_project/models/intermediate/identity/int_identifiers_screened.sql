{#-
    Merge protection: one row per identifier value, with how many records and distinct people
    carry it and whether it may link records (is_blocked_as_link).

    An identifier is blocked as a link when its value is in var identity_blocked_values, or when
    the named entities carrying it (CRM contacts, shop customers, named guest orders) are more
    distinct people than var identity_link_limits[type].max_people. Two entities are one person
    when a name of one is a name of the other: first and last name each equal or a typo
    (levenshtein distance <= identity_name_typo_distance, both of 4+ letters), either way round;
    an entity's names are all the names on its records. Two entities that share two or more
    identifiers are one person too, whatever their names. People = entities that are one person with
    no other entity of the identifier, plus one for all the others (an approximation of name
    clusters that is exact for the groups seen in practice: one person with a few duplicate
    contacts, or colleagues/relatives who each bring one). It is blocked too when the records
    carrying it hold more distinct shop customer ids than identity_link_limits[type]
    .max_shop_customers (two shop accounts ordering with one landline, two accounts logging in
    from one browser).
-#}
{{ config(materialized='table') }}

{%- set limits = var('identity_link_limits', {}) -%}
{%- set blocked_values = var('identity_blocked_values', []) -%}
{%- set typo_distance = var('identity_name_typo_distance', 2) | int -%}
{%- set name_sources = var('identity_name_sources', ['contacts', 'orders']) -%}

with

-- only the columns used below: the CTE is read four times, and carrying every column of 38
-- million rows (1M people) through it took 40% of the model's time
extracted as (

    select record_key, identifier_key, identifier_type, identifier_value, first_seen_at, last_seen_at
    from {{ ref('int_identifiers_extracted') }}
    where identifier_type is not null

),

named_rows as (

    select
        record_key,
        source,
        identifier_type,
        identifier_value,
        name_first,
        name_last
    from {{ ref('int_identifiers_extracted') }}
    where (name_first is not null or name_last is not null)
        and source in ('{{ name_sources | join("', '") }}')

),

-- the entity a named record speaks for: its CRM contact, else its shop customer, else itself
record_entities as (

    select
        record_key,
        coalesce(
            max(case when identifier_type = 'crm_contact_id' then {{ dbt.concat(["'crm:'", "identifier_value"]) }} end),
            max(case when identifier_type = 'shop_customer_id' then {{ dbt.concat(["'shop:'", "identifier_value"]) }} end),
            max({{ dbt.concat(["'record:'", "record_key"]) }})
        ) as entity_key,
        max(name_first) as name_first,
        max(name_last) as name_last
    from named_rows
    group by record_key

),

entity_names as (

    select distinct
        entity_key,
        coalesce(name_first, '') as name_first,
        coalesce(name_last, '') as name_last
    from record_entities

),

identifier_entities as (

    select distinct
        extracted.identifier_key,
        record_entities.entity_key
    from extracted
    inner join record_entities
        on extracted.record_key = record_entities.record_key

),

shared_identifiers as (

    select identifier_key
    from identifier_entities
    group by identifier_key
    having count(*) > 1

),

entity_pairs as (

    select
        left_entities.identifier_key,
        left_entities.entity_key as entity_l,
        right_entities.entity_key as entity_r
    from identifier_entities as left_entities
    inner join shared_identifiers
        on left_entities.identifier_key = shared_identifiers.identifier_key
    inner join identifier_entities as right_entities
        on left_entities.identifier_key = right_entities.identifier_key
        and left_entities.entity_key < right_entities.entity_key

),

-- two entities that share two or more identifiers (an email and a phone) are one person
-- whatever their names say (a romanised duplicate contact): colleagues share an inbox, relatives
-- a landline, not both
corroborated_pairs as (

    select entity_l, entity_r
    from entity_pairs
    group by entity_l, entity_r
    having count(*) >= 2

),

-- one person: a name of one entity is a name of the other, first and last name each equal or
-- a typo, either way round (swapped first and last names)
same_person_pairs as (

    select
        entity_pairs.identifier_key,
        entity_pairs.entity_l,
        entity_pairs.entity_r
    from entity_pairs
    inner join entity_names as names_l
        on entity_pairs.entity_l = names_l.entity_key
    inner join entity_names as names_r
        on entity_pairs.entity_r = names_r.entity_key
    where (
            {{ identity_name_tokens_match('names_l.name_first', 'names_r.name_first', typo_distance) }}
            and {{ identity_name_tokens_match('names_l.name_last', 'names_r.name_last', typo_distance) }}
        )
        or (
            {{ identity_name_tokens_match('names_l.name_first', 'names_r.name_last', typo_distance) }}
            and {{ identity_name_tokens_match('names_l.name_last', 'names_r.name_first', typo_distance) }}
        )

    union

    select
        entity_pairs.identifier_key,
        entity_pairs.entity_l,
        entity_pairs.entity_r
    from entity_pairs
    inner join corroborated_pairs
        on entity_pairs.entity_l = corroborated_pairs.entity_l
        and entity_pairs.entity_r = corroborated_pairs.entity_r

),

entities_with_partner as (

    select identifier_key, entity_l as entity_key from same_person_pairs
    union
    select identifier_key, entity_r as entity_key from same_person_pairs

),

people as (

    select
        identifier_entities.identifier_key,
        count(*) as entity_count,
        sum(case when entities_with_partner.entity_key is null then 1 else 0 end)
        + max(case when entities_with_partner.entity_key is not null then 1 else 0 end)
            as people_count
    from identifier_entities
    left join entities_with_partner
        on identifier_entities.identifier_key = entities_with_partner.identifier_key
        and identifier_entities.entity_key = entities_with_partner.entity_key
    group by identifier_entities.identifier_key

),

identifiers as (

    select
        identifier_key,
        identifier_type,
        identifier_value,
        -- a record carries an identifier once (int_identifiers_extracted.record_identifier_key
        -- is unique, a test that blocks this model), so its rows count distinct records
        count(*) as record_count,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from extracted
    group by identifier_key, identifier_type, identifier_value

),

-- distinct shop customer accounts on the records that carry each identifier
identifier_shop_customers as (

    select
        extracted.identifier_key,
        count(distinct shop_ids.identifier_value) as shop_customer_count
    from extracted
    inner join extracted as shop_ids
        on extracted.record_key = shop_ids.record_key
    where shop_ids.identifier_type = 'shop_customer_id'
        and extracted.identifier_type <> 'shop_customer_id'
    group by extracted.identifier_key

),

screened as (

    select
        identifiers.identifier_key,
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.record_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        coalesce(people.entity_count, 0) as entity_count,
        coalesce(people.people_count, 0) as people_count,
        case identifiers.identifier_type
            {%- for identifier_type, limit in limits.items() %}
            when '{{ identifier_type }}' then {{ limit.get('max_people', 'null') }}
            {%- endfor %}
        end as max_people,
        coalesce(identifier_shop_customers.shop_customer_count, 0) as shop_customer_count,
        case identifiers.identifier_type
            {%- for identifier_type, limit in limits.items() %}
            when '{{ identifier_type }}' then {{ limit.get('max_shop_customers', 'null') }}
            {%- endfor %}
        end as max_shop_customers,
        {% if blocked_values | length > 0 -%}
        identifiers.identifier_value in (
            {%- for value in blocked_values %}'{{ value | string | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor -%}
        )
        {%- else -%}
        false
        {%- endif %} as is_blocked_value
    from identifiers
    left join people
        on identifiers.identifier_key = people.identifier_key
    left join identifier_shop_customers
        on identifiers.identifier_key = identifier_shop_customers.identifier_key

),

final as (

    select
        identifier_key,
        identifier_type,
        identifier_value,
        record_count,
        first_seen_at,
        last_seen_at,
        entity_count,
        people_count,
        max_people,
        shop_customer_count,
        max_shop_customers,
        is_blocked_value,
        is_blocked_value
        or coalesce(people_count > max_people, false)
        or coalesce(shop_customer_count > max_shop_customers, false) as is_blocked_as_link,
        case
            when is_blocked_value then 'blocked_value'
            when people_count > max_people then 'too_many_people'
            when shop_customer_count > max_shop_customers then 'too_many_shop_customers'
        end as block_reason
    from screened

)

select * from final
