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
{#-
    Incremental: a run redoes only the identifiers that changed since the run that last wrote
    here (the newest _extracted_through):
      - identifiers that int_identifiers_extracted gave a record since (new records, new
        versions of contacts and orders) or took from one (the pairs its strategy logged in
        int_identifiers_extracted__replaced: a contact whose new version dropped an email);
      - identifiers whose entity or people count changed. Only a changed record changes an
        entity: its names, its identifiers, which entity it belongs to. So the counts are
        recomputed for the candidate identifiers only: the touched ones and every identifier of
        the records that may belong to a changed record's entity (now or before: a record that
        lost its CRM contact id names the old contact among the touched identifiers). Each is
        counted over all of its entities, with all of their records (names and identifiers).
        Recomputing the entities of every named record instead made the model take 9.0 s,
        not 4.2 s, in a one-new-day run at 1,000,000 people.
    The counts of those identifiers are recomputed over all their records; an identifier no
    record carries any more loses its row (strategy replace_keys, placeholder identifier_type).
    Everything is redone when the vars or this model's code changed (_settings_hash), when
    int_identifiers_extracted was rebuilt whole, or when this table predates these columns.
    A full rebuild gives the same rows. int_identity_edges_built, which reads the log too,
    deletes the log rows both have taken in.
    _link_status_at is the run at which is_blocked_as_link took its current value (the
    identifier's first run, or the run it flipped); _link_flipped_at the run it last flipped
    or the table was rebuilt whole (NULL: neither since the identifier's first run), after
    which int_identity_records_anchored redoes the records that carry it.
    An identifier's first run needs no such look: every record carrying it was written since,
    and finding the carriers of the day's 7,300 new identifiers among int_identifiers_extracted's
    39 M rows took 3 s of the anchoring query at 1,000,000 people.
-#}
{{
    config(
        materialized='incremental',
        unique_key='identifier_key',
        incremental_strategy='replace_keys',
        placeholder_column='identifier_type',
        on_schema_change='append_new_columns',
        pre_hook="{{ replaced_log_create(ref('int_identifiers_extracted'), ['record_key', 'identifier_key']) }}",
    )
}}

{%- set limits = var('identity_link_limits', {}) -%}
{%- set blocked_values = var('identity_blocked_values', []) -%}
{%- set typo_distance = var('identity_name_typo_distance', 2) | int -%}
{%- set name_sources = var('identity_name_sources', ['contacts', 'orders']) -%}
{%- set settings_hash = local_md5(tojson([limits, blocked_values, typo_distance, name_sources, model.raw_code])) -%}
{%- set extracted_relation = ref('int_identifiers_extracted') -%}
{#- the entity a named record speaks for, over its rows: its CRM contact, else its shop customer
    (their identifier keys), else itself -#}
{%- set entity_key -%}
coalesce(
            max(case when identifier_type = 'crm_contact_id' then identifier_key end),
            max(case when identifier_type = 'shop_customer_id' then identifier_key end),
            max({{ dbt.concat(["'record:'", "record_key"]) }})
        )
{%- endset -%}
{#- full: a first build or --full-refresh; redo_all: everything, replacing the stored rows;
    changed: the identifiers that changed (see above) -#}
{%- set mode = 'full' -%}
{#- whether the stored rows say when each identifier's link status last changed -#}
{%- set has_status = false -%}
{#- whether they say when it last flipped -#}
{%- set has_flipped = false -%}
{%- if is_incremental() -%}
    {%- set mode = 'redo_all' -%}
    {%- set has_status = this_has_columns(['_link_status_at']) -%}
    {%- set has_flipped = this_has_columns(['_link_flipped_at']) -%}
    {#- a table from before _link_flipped_at is redone once, each row's flip time its status time -#}
    {%- if execute and this_has_columns(['_extracted_through', '_settings_hash', '_link_status_at', '_link_flipped_at']) -%}
        {%- if sql_holds(
            upstream_followed_since(extracted_relation, '_extracted_at', '_extracted_through')
            ~ ' and (select max(_settings_hash) from ' ~ this ~ ") = '" ~ settings_hash ~ "'"
        ) -%}
            {%- set mode = 'changed' -%}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}
{%- set columns = [
    'identifier_type', 'identifier_value', 'record_count', 'first_seen_at', 'last_seen_at',
    'entity_count', 'people_count', 'max_people', 'shop_customer_count', 'max_shop_customers',
    'is_blocked_value', 'is_blocked_as_link', 'block_reason', '_extracted_through', '_settings_hash',
] -%}

with

{% if mode == 'changed' -%}
-- the (record, identifier) pairs int_identifiers_extracted wrote or took away since this
-- table's newest run
changed_rows as (

    select record_key, identifier_key
    from {{ extracted_relation }}
    where _extracted_at > (select max(_extracted_through) from {{ this }})

    union all

    select record_key, identifier_key
    from {{ replaced_log_relation(extracted_relation) }}
    where _replaced_at > (select max(_extracted_through) from {{ this }})

),

changed_records as (

    select distinct record_key from changed_rows

),

-- identifiers a record got or lost
touched as (

    select distinct identifier_key from changed_rows where identifier_key is not null

),

{% endif -%}
named_rows as (

    select
        record_key,
        source,
        identifier_key,
        identifier_type,
        identifier_value,
        name_first,
        name_last
    from {{ extracted_relation }}
    where (name_first is not null or name_last is not null)
        and source in ('{{ name_sources | join("', '") }}')

),

{% if mode == 'changed' -%}
-- the entities a changed record belongs to, or belonged to before its change
changed_entities as (

    select identifier_key as entity_key
    from touched
    where identifier_key like 'crm_contact_id:%'
        or identifier_key like 'shop_customer_id:%'

    union

    select {{ dbt.concat(["'record:'", "record_key"]) }}
    from changed_records

),

-- candidate identifiers: the touched ones, and all identifiers of the named records that carry
-- a changed entity's key or changed themselves (a superset of the changed entities' records)
candidates as (

    select identifier_key from touched

    union

    select identifier_key
    from named_rows
    where identifier_type is not null
        and record_key in (
            select record_key
            from named_rows
            where identifier_key in (select entity_key from changed_entities)
            union
            select record_key from changed_records
        )

),

-- the named records that carry a candidate, and their entities
candidate_records as (

    select record_key
    from named_rows
    where identifier_key in (select identifier_key from candidates)

),

candidate_entities as (

    select
        {{ entity_key }} as entity_key
    from named_rows
    where record_key in (select record_key from candidate_records)
    group by record_key

),

-- every named row of every record of those entities (and of a few more records that carry their
-- keys but belong to another entity: harmless, only the candidates' counts are kept)
entity_rows as (

    select *
    from named_rows
    where record_key in (
        select record_key
        from named_rows
        where identifier_key in (select entity_key from candidate_entities)
        union
        select record_key from candidate_records
    )

),

{% else -%}
entity_rows as (

    select * from named_rows

),

{% endif -%}
-- each named record's entity, and its name
record_entities as (

    select
        record_key,
        {{ entity_key }} as entity_key,
        max(name_first) as name_first,
        max(name_last) as name_last
    from entity_rows
    group by record_key

),

entity_names as (

    select distinct
        entity_key,
        coalesce(name_first, '') as name_first,
        coalesce(name_last, '') as name_last
    from record_entities

),

-- a record's name is on each of its rows, so the rows of the named records are all of theirs
identifier_entities as (

    select distinct
        entity_rows.identifier_key,
        record_entities.entity_key
    from entity_rows
    inner join record_entities
        on entity_rows.record_key = record_entities.record_key
    where entity_rows.identifier_type is not null

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

{% if mode == 'changed' -%}
-- ... and those whose entities or people changed (a new name, a newly shared identifier)
affected as (

    select identifier_key from touched

    union

    select people.identifier_key
    from people
    left join {{ this }} as stored
        on people.identifier_key = stored.identifier_key
    where people.identifier_key in (select identifier_key from candidates)
        and (stored.identifier_key is null
            or stored.entity_count <> people.entity_count
            or stored.people_count <> people.people_count)

),

{% endif -%}
-- only the columns used below: carrying every column of 38 million rows (1M people) through
-- the CTE took 40% of the model's time. Not record_key: each row names its record's shop
-- customer id (record_shop_customer_id), so the shop accounts are counted without joining the
-- rows to their records (the record keys were 1.4 GB of the 3.6 GB this scan read at 1M).
extracted as (

    select
        identifier_key,
        identifier_type,
        identifier_value,
        record_shop_customer_id,
        first_seen_at,
        last_seen_at
    from {{ extracted_relation }}
    where identifier_type is not null
    {%- if mode == 'changed' %}
        and identifier_key in (select identifier_key from affected)
    {%- endif %}

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

-- distinct shop customer accounts on the records that carry each identifier (a shop customer
-- id itself has none: it is the account)
identifier_shop_customers as (

    select
        identifier_key,
        count(distinct record_shop_customer_id) as shop_customer_count
    from extracted
    where identifier_type <> 'shop_customer_id'
        and record_shop_customer_id is not null
    group by identifier_key

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
        end as block_reason,
        (select max(_extracted_at) from {{ extracted_relation }}) as _extracted_through,
        '{{ settings_hash }}' as _settings_hash
    from screened

)
{%- if mode == 'full' %}

select
    *,
    {{ identity_run_timestamp() }} as _link_status_at,
    -- rebuilt whole (a first build, --full-refresh): any status may have flipped
    {{ identity_run_timestamp() }} as _link_flipped_at
from final
{%- else %},

-- the identifiers whose stored rows this run replaces: a key without a row of final (no
-- record carries it any more) is a placeholder that only deletes
replaced as (

    {% if mode == 'changed' -%}
    select identifier_key from affected
    {%- else -%}
    select identifier_key from final
    union
    select identifier_key from {{ this }}
    {%- endif %}

)

select
    replaced.identifier_key,
    {%- for column in columns %}
    final.{{ column }},
    {%- endfor %}
    {%- if has_status %}
    -- a status that did not change keeps its time (also when everything is redone: the
    -- records downstream need no new look)
    case
        when final.is_blocked_as_link = stored.is_blocked_as_link then stored._link_status_at
        else {{ identity_run_timestamp() }}
    end as _link_status_at,
    -- a first run is no flip; a status kept keeps its flip time (a table from before this
    -- column: its status time, which may have been one)
    case
        when stored.identifier_key is null then cast(null as timestamp)
        when final.is_blocked_as_link = stored.is_blocked_as_link
            then stored.{{ '_link_flipped_at' if has_flipped else '_link_status_at' }}
        else {{ identity_run_timestamp() }}
    end as _link_flipped_at
    {%- else %}
    {{ identity_run_timestamp() }} as _link_status_at,
    {{ identity_run_timestamp() }} as _link_flipped_at
    {%- endif %}
from replaced
left join final
    on replaced.identifier_key = final.identifier_key
{%- if has_status %}
left join {{ this }} as stored
    on replaced.identifier_key = stored.identifier_key
{%- endif %}
{%- endif %}
