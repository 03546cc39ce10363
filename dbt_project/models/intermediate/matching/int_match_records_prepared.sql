{#- One row per candidate record of probabilistic matching: every CRM contact at its current
    version and every order at its newest version, with names, address, postcode and date of
    birth normalised so that Splink compares like with like. Portable SQL only (lower, trim,
    translate, replace, least/greatest, dbt.concat): the same model builds on Spark.

    Normalising a name or address: lower case; Latin diacritics folded with one translate()
    (Žalgirio -> zalgirio, Geißler -> geissler); punctuation dropped; inner spaces removed for
    addresses and postcodes (spelling of the gaps differs more than the text). Scripts without
    case (Hangul, Han, Hebrew, Kana) pass through unchanged: they are compared as written. -#}

{#- Incremental, per record: a run prepares again the contacts and orders whose current version
    was loaded since the newest _loaded_at here, and replaces their rows (strategy replace_keys
    on record_key; a record whose new version has no name any more leaves a placeholder, NULL
    source, that only deletes its row). name_place_shared looks across records, so the records
    sharing a full name and street address with one of those, before or after the change, are
    written again with the flag counted anew. Everything is redone when this model's code or
    seeds/nicknames.csv changed (_settings_hash), or the table predates these columns. A full
    rebuild gives the same rows. -#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='replace_keys',
        placeholder_column='source',
        on_schema_change='append_new_columns',
    )
}}

{%- set fold_from = 'àáâãäåāăąçćčĉċďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįıĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšţťŧùúûüũūŭůűųŵýÿŷźżž' -%}
{%- set fold_to = 'aaaaaaaaacccccddeeeeeeeeegggghhiiiiiiiiijklllllnnnnooooooooorrrsssstttuuuuuuuuuuwyyyzzz' -%}

{#- `@` stands for the column. A name part: folded, spaces and punctuation dropped (o'brien =
    obrien, jean-luc = jeanluc). An address line or postcode: the same, more punctuation. -#}
{%- set folded = "translate(replace(lower(trim(@)), 'ß', 'ss'), '" ~ fold_from ~ "', '" ~ fold_to ~ "')" -%}
{%- set name_norm = "nullif(translate(" ~ folded ~ ", ' .,''’-_', ''), '')" -%}
{%- set compact_norm = "nullif(translate(" ~ folded ~ ", ' .,''’-_#/()', ''), '')" -%}

{#- full: a first build or --full-refresh; redo_all: every record, replacing the stored rows;
    changed: the records loaded since, and their name-and-address neighbours -#}
{%- set mode = 'full' -%}
{#- what the rows depend on besides the data: this model's code and the nickname seed -#}
{%- set settings_hash = settings_hash_sql(
    model.raw_code, ref('nicknames'), dbt.concat(['nickname', "'='", 'first_name']),
    'nickname, first_name'
) -%}
{%- if is_incremental() -%}
    {%- set mode = 'redo_all' -%}
    {%- if this is string -%}
        {#- a unit test: `this` is its fixture -#}
        {%- set mode = 'changed' -%}
    {%- elif execute and this_has_columns(['_loaded_at', '_settings_hash'])
            and stored_settings_match(settings_hash) -%}
        {%- set mode = 'changed' -%}
    {%- endif -%}
{%- endif -%}
{#- The record's match profile: everything int_record_matches_scored compares or blocks on
    (its PROFILE_COLUMNS, in this order), hashed. Records with one profile (a customer's orders
    from one address) score alike against any record, so Splink scores each profile once. Each
    part is '=' and the value, or '!' for NULL; parts are separated by '|'. -#}
{%- set profile_columns = [
    'first_name_norm', 'last_name_norm', 'first_name_canonical', 'full_name_key',
    'first_name_is_cased', 'last_name_is_cased', 'address_norm', 'city_norm', 'postcode_key',
    'address_key', 'date_of_birth', 'name_place_shared',
] -%}
{%- set columns = [
    'record_key', 'source', 'source_record_id', 'first_name_norm', 'last_name_norm',
    'first_name_canonical', 'full_name_key', 'first_name_is_cased', 'last_name_is_cased',
    'address_norm', 'city_norm', 'postcode_norm', 'postcode_key', 'address_key', 'country',
    'date_of_birth', 'email_normalized', '_loaded_at',
] -%}

with

contacts as (

    select * from {{ ref('stg_contacts__contacts') }}
    {%- if mode == 'changed' %}
    where _loaded_at > {{ loaded_at_watermark('_loaded_at') }}
    {%- endif %}

),

orders as (

    select * from {{ ref('stg_orders__orders') }}
    {%- if mode == 'changed' %}
    where _loaded_at > {{ loaded_at_watermark('_loaded_at') }}
    {%- endif %}

),

nicknames as (

    select * from {{ ref('nicknames') }}

),

contact_records as (

    select
        'contacts' as source,
        contact_id as source_record_id,
        first_name,
        last_name,
        address1,
        city,
        postal_code,
        country,
        cast(date_of_birth as {{ dbt.type_string() }}) as date_of_birth,
        email_normalized,
        _loaded_at
    from contacts

),

{#- An order is one person's name and address: the billing address, else the shipping
    address, else the customer object (guest checkouts have no customer object). -#}
order_records as (

    select
        'orders' as source,
        order_id as source_record_id,
        coalesce(
            {{ clean_text('billing_first_name') }},
            {{ clean_text('shipping_first_name') }},
            {{ clean_text('customer_first_name') }}
        ) as first_name,
        coalesce(
            {{ clean_text('billing_last_name') }},
            {{ clean_text('shipping_last_name') }},
            {{ clean_text('customer_last_name') }}
        ) as last_name,
        coalesce({{ clean_text('billing_address1') }}, {{ clean_text('shipping_address1') }}) as address1,
        coalesce({{ clean_text('billing_city') }}, {{ clean_text('shipping_city') }}) as city,
        coalesce({{ clean_text('billing_zip') }}, {{ clean_text('shipping_zip') }}) as postal_code,
        upper(coalesce({{ clean_text('billing_country_code') }}, {{ clean_text('shipping_country_code') }}))
            as country,
        cast(null as {{ dbt.type_string() }}) as date_of_birth,
        coalesce(email_normalized, customer_email_normalized) as email_normalized,
        _loaded_at
    from orders

),

unioned as (

    select * from contact_records
    union all
    select * from order_records

),

normalised as (

    select
        source,
        source_record_id,
        {{ name_norm | replace('@', 'first_name') }} as first_name_norm,
        {{ name_norm | replace('@', 'last_name') }} as last_name_norm,
        {{ compact_norm | replace('@', 'address1') }} as address_norm,
        nullif(translate({{ folded | replace('@', 'city') }}, ' .,''’-', ''), '') as city_norm,
        {{ compact_norm | replace('@', 'postal_code') }} as postcode_norm,
        nullif(upper(trim(country)), '') as country,
        nullif(trim(date_of_birth), '') as date_of_birth,
        email_normalized,
        -- a script with upper and lower case (Latin, Greek, Cyrillic) vs one without (Hangul,
        -- Han, Hebrew, Kana): names in different scripts cannot be compared letter by letter
        upper(first_name) <> lower(first_name) as first_name_is_cased,
        upper(last_name) <> lower(last_name) as last_name_is_cased,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at
    from unioned

),

keyed as (

    select
        {{ identity_record_key('normalised.source', 'normalised.source_record_id') }} as record_key,
        normalised.source,
        normalised.source_record_id,
        normalised.first_name_norm,
        normalised.last_name_norm,
        coalesce(nicknames.first_name, normalised.first_name_norm) as first_name_canonical,
        -- order-insensitive full name: swapped first and last names give the same key
        case
            when normalised.first_name_norm is not null and normalised.last_name_norm is not null
                then {{ dbt.concat([
                    "least(normalised.first_name_norm, normalised.last_name_norm)", "' '",
                    "greatest(normalised.first_name_norm, normalised.last_name_norm)"
                ]) }}
        end as full_name_key,
        normalised.first_name_is_cased,
        normalised.last_name_is_cased,
        normalised.address_norm,
        normalised.city_norm,
        normalised.postcode_norm,
        -- postcodes are only comparable within a country (US and DE both use 5 digits)
        case
            when normalised.postcode_norm is not null
                then {{ dbt.concat(["coalesce(normalised.country, '')", "':'", "normalised.postcode_norm"]) }}
        end as postcode_key,
        -- one street address: the street line within its postcode
        case
            when normalised.address_norm is not null and normalised.postcode_norm is not null
                then {{ dbt.concat([
                    "coalesce(normalised.country, '')", "':'", "normalised.postcode_norm", "':'",
                    "normalised.address_norm"
                ]) }}
        end as address_key,
        normalised.country,
        normalised.date_of_birth,
        -- not compared (identifiers are the deterministic graph's job): it only sizes the prior
        normalised.email_normalized,
        normalised._loaded_at
    from normalised
    left join nicknames
        on normalised.first_name_norm = nicknames.nickname
    where normalised.first_name_norm is not null or normalised.last_name_norm is not null

),

{#- Two people known by one name at one street address: the same full name and street address
    with two different dates of birth (a parent and child of the same name, namesakes in one
    household). A record with that name there cannot be told from the other by name and
    address alone. -#}
{% if mode == 'full' -%}
records as (

    select * from keyed

),

{%- else -%}
-- the records this run prepares again: loaded since (redo_all: every record, stored or not)
changed_keys as (

    select {{ identity_record_key('source', 'source_record_id') }} as record_key
    from unioned
    {%- if mode == 'redo_all' %}

    union

    select record_key from {{ this }}
    {%- endif %}

),

-- every record as it now stands: the stored rows of the others, and the changed ones anew
records as (

    {% if mode == 'changed' -%}
    select {{ columns | join(', ') }}
    from {{ this }}
    where record_key not in (select record_key from changed_keys)

    union all

    {% endif -%}
    select {{ columns | join(', ') }}
    from keyed

),

-- the name-and-address groups a changed record joined or left
affected_places as (

    select full_name_key, address_key
    from keyed
    where full_name_key is not null and address_key is not null

    union

    select full_name_key, address_key
    from {{ this }}
    where record_key in (select record_key from changed_keys)
        and full_name_key is not null and address_key is not null

),

{%- endif %}

shared_name_places as (

    select
        records.full_name_key,
        records.address_key
    from records
    {%- if mode != 'full' %}
    inner join affected_places
        on records.full_name_key = affected_places.full_name_key
        and records.address_key = affected_places.address_key
    {%- endif %}
    where records.full_name_key is not null and records.address_key is not null
        and records.date_of_birth is not null
    group by records.full_name_key, records.address_key
    having count(distinct records.date_of_birth) >= 2

),

final as (

    select
        {%- for column in columns if column != '_loaded_at' %}
        records.{{ column }},
        {%- endfor %}
        shared_name_places.full_name_key is not null as name_place_shared,
        {%- set parts = [] -%}
        {%- for column in profile_columns -%}
            {%- set value = 'shared_name_places.full_name_key is not null' if column == 'name_place_shared' else 'records.' ~ column -%}
            {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
            {%- do parts.append("coalesce(" ~ dbt.concat(["'='", "cast(" ~ value ~ " as " ~ dbt.type_string() ~ ")"]) ~ ", '!')") -%}
        {%- endfor %}
        {{ dbt.hash(dbt.concat(parts)) }} as profile_key,
        records._loaded_at,
        {{ settings_hash }} as _settings_hash
    from records
    left join shared_name_places
        on records.full_name_key = shared_name_places.full_name_key
        and records.address_key = shared_name_places.address_key
    {%- if mode != 'full' %}
    left join affected_places
        on records.full_name_key = affected_places.full_name_key
        and records.address_key = affected_places.address_key
    where records.record_key in (select record_key from changed_keys)
        or affected_places.full_name_key is not null

    union all

    -- a changed record that has no row any more (no name left): a placeholder deletes its row
    select
        {%- for column in columns if column != '_loaded_at' %}
        {{ 'changed_keys.record_key' if column == 'record_key' else 'null' }} as {{ column }},
        {%- endfor %}
        null as name_place_shared,
        null as profile_key,
        null as _loaded_at,
        null as _settings_hash
    from changed_keys
    where changed_keys.record_key not in (select record_key from keyed)
    {%- endif %}

)

select * from final
