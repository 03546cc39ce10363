{#-
    Every identifier on every loaded record, at the record's current version: one row per
    (record, identifier), and one row with a NULL identifier for a record that carries none (a
    call from an unparseable number, a guest order without email or phone), so that every
    record of every source is here.

    Identifier types: email (normalised by ingestion), phone (E.164), anonymous_id (the web
    cookie), shop_customer_id (web userId, orders customer.id) and crm_contact_id. The record's
    person name, where it has one, is kept as two folded tokens for merge protection.

    Phones of order addresses are not normalised by ingestion: they are derived here from the
    written number: '+...' and '00...' notations are international already; a national notation
    takes the E.164 that ingestion gave the same digits in the same country on another record
    (contacts, calls, order phones), and is left out when there is none.

    Incremental per source: a run re-extracts the records whose current version was loaded after
    the newest _loaded_at of that source already here, replacing all their rows (delete+insert
    on record_key), so a contact or order whose newer version changed its email loses the old one.
    The strategy (replace_logged, macros/incremental.sql) first copies the (record, identifier)
    pairs it replaces into int_identifiers_extracted__replaced, stamped with the run, and
    _extracted_at says which run wrote a row: int_identifiers_screened redoes only the
    identifiers that a run added or took away.

    record_shop_customer_id is the record's shop customer id (a record carries at most one) on
    each of its rows: int_identifiers_screened counts the shop accounts on an identifier's
    records from the identifier's rows alone, without reading the 39 M record keys (1,000,000
    people) to join each record to its shop id. A table written before this column is
    re-extracted whole, once.
-#}
{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='replace_logged',
        replaced_log_columns=['record_key', 'identifier_key'],
        on_schema_change='append_new_columns',
    )
}}

{%- set string = dbt.type_string() -%}
{#- a table without record_shop_customer_id (written by an older crm360): every record is
    extracted again, so that no row keeps it NULL -#}
{%- set since_loaded = is_incremental() and this_has_columns(['record_shop_customer_id']) -%}

with

contacts as (

    select
        'contacts' as source,
        contact_id as source_record_id,
        {{ identity_name_token('first_name') }} as name_first,
        {{ identity_name_token('last_name') }} as name_last,
        created_at_utc as first_seen_at,
        updated_at_utc as last_seen_at,
        email_normalized as email_1,
        cast(null as {{ string }}) as email_2,
        phone_e164 as phone_1,
        cast(null as {{ string }}) as phone_2,
        cast(null as {{ string }}) as phone_3,
        cast(null as {{ string }}) as phone_4,
        cast(null as {{ string }}) as anonymous_id,
        cast(null as {{ string }}) as shop_customer_id,
        contact_id as crm_contact_id,
        _loaded_at
    from {{ ref('stg_contacts__contacts') }}
    {{ identity_loaded_since('contacts') if since_loaded }}

),

email_events as (

    select
        'email' as source,
        email_event_id as source_record_id,
        cast(null as {{ string }}) as name_first,
        cast(null as {{ string }}) as name_last,
        event_at_utc as first_seen_at,
        event_at_utc as last_seen_at,
        email_normalized as email_1,
        cast(null as {{ string }}) as email_2,
        cast(null as {{ string }}) as phone_1,
        cast(null as {{ string }}) as phone_2,
        cast(null as {{ string }}) as phone_3,
        cast(null as {{ string }}) as phone_4,
        cast(null as {{ string }}) as anonymous_id,
        cast(null as {{ string }}) as shop_customer_id,
        cast(null as {{ string }}) as crm_contact_id,
        _loaded_at
    from {{ ref('stg_email__events') }}
    {{ identity_loaded_since('email') if since_loaded }}

),

calls as (

    select
        'calls' as source,
        call_id as source_record_id,
        cast(null as {{ string }}) as name_first,
        cast(null as {{ string }}) as name_last,
        started_at_utc as first_seen_at,
        started_at_utc as last_seen_at,
        cast(null as {{ string }}) as email_1,
        cast(null as {{ string }}) as email_2,
        customer_number_e164 as phone_1,
        cast(null as {{ string }}) as phone_2,
        cast(null as {{ string }}) as phone_3,
        cast(null as {{ string }}) as phone_4,
        cast(null as {{ string }}) as anonymous_id,
        cast(null as {{ string }}) as shop_customer_id,
        cast(null as {{ string }}) as crm_contact_id,
        _loaded_at
    from {{ ref('stg_calls__calls') }}
    {{ identity_loaded_since('calls') if since_loaded }}

),

web_events as (

    select
        'web' as source,
        web_event_id as source_record_id,
        -- traits.name is one string: its first word, and the rest
        {{ identity_name_token("split_part(trim(traits_name), ' ', 1)") }} as name_first,
        {{ identity_name_token(
            "substr(trim(traits_name), length(split_part(trim(traits_name), ' ', 1)) + 1)"
        ) }} as name_last,
        event_at_utc as first_seen_at,
        event_at_utc as last_seen_at,
        traits_email_normalized as email_1,
        cast(null as {{ string }}) as email_2,
        traits_phone_e164 as phone_1,
        cast(null as {{ string }}) as phone_2,
        cast(null as {{ string }}) as phone_3,
        cast(null as {{ string }}) as phone_4,
        anonymous_id,
        user_id as shop_customer_id,
        cast(null as {{ string }}) as crm_contact_id,
        _loaded_at
    from {{ ref('stg_web__events') }}
    {{ identity_loaded_since('web') if since_loaded }}

),

-- National notations of a number, learnt from the numbers ingestion parsed (with a country).
phone_notations as (

    select
        {{ identity_phone_digits('phone') }} as phone_digits,
        country,
        phone_e164,
        'contacts' as source,
        _loaded_at
    from {{ ref('stg_contacts__contact_versions') }}
    where phone_e164 is not null

    union all

    select
        {{ identity_phone_digits('customer_number') }} as phone_digits,
        country,
        customer_number_e164 as phone_e164,
        'calls' as source,
        _loaded_at
    from {{ ref('stg_calls__calls') }}
    where customer_number_e164 is not null

    union all

    select
        {{ identity_phone_digits('phone') }} as phone_digits,
        upper(coalesce(billing_country_code, shipping_country_code)) as country,
        phone_e164,
        'orders' as source,
        _loaded_at
    from {{ ref('stg_orders__orders') }}
    where phone_e164 is not null

    union all

    select
        {{ identity_phone_digits('customer_phone') }} as phone_digits,
        upper(coalesce(billing_country_code, shipping_country_code)) as country,
        customer_phone_e164 as phone_e164,
        'orders' as source,
        _loaded_at
    from {{ ref('stg_orders__orders') }}
    where customer_phone_e164 is not null

),

phone_lookup as (

    select
        phone_digits,
        country,
        min(phone_e164) as phone_e164
    from phone_notations
    where phone_digits is not null and country is not null
    group by phone_digits, country
    having count(distinct phone_e164) = 1

),

{% if since_loaded -%}
-- notations that records loaded since the last run brought: the lookup may have changed for
-- them (a number now known, or now ambiguous). The old version of a changed order is no
-- notation any more, which this does not see: a rare number that only it made ambiguous stays
-- unresolved until a full rebuild.
loaded_through as (

    select source, max(_loaded_at) as loaded_at
    from {{ this }}
    group by source

),

new_notations as (

    select distinct phone_notations.phone_digits, phone_notations.country
    from phone_notations
    left join loaded_through
        on phone_notations.source = loaded_through.source
    where phone_notations.phone_digits is not null
        and phone_notations.country is not null
        and (loaded_through.loaded_at is null or phone_notations._loaded_at > loaded_through.loaded_at)

),

-- orders whose written address phones take their E.164 from those notations: re-extracted
relooked_orders as (

    select orders.order_id
    from {{ ref('stg_orders__orders') }} as orders
    inner join new_notations
        on new_notations.country = upper(coalesce(orders.billing_country_code, orders.shipping_country_code))
        and new_notations.phone_digits = {{ identity_phone_digits('orders.billing_phone') }}

    union

    select orders.order_id
    from {{ ref('stg_orders__orders') }} as orders
    inner join new_notations
        on new_notations.country = upper(coalesce(orders.shipping_country_code, orders.billing_country_code))
        and new_notations.phone_digits = {{ identity_phone_digits('orders.shipping_phone') }}

),

{% endif -%}
orders_current as (

    select * from {{ ref('stg_orders__orders') }}
    {{ identity_loaded_since('orders') if since_loaded }}
    {%- if since_loaded %}
        or order_id in (select order_id from relooked_orders)
    {%- endif %}

),

address_phones as (

    select
        order_id,
        address,
        digits,
        country,
        case
            when digits like '+%' then digits
            when digits like '00%' then {{ dbt.concat(["'+'", "substr(digits, 3)"]) }}
        end as international
    from (
        select
            order_id,
            'billing' as address,
            {{ identity_phone_digits('billing_phone') }} as digits,
            upper(coalesce(billing_country_code, shipping_country_code)) as country
        from orders_current
        where billing_phone is not null

        union all

        select
            order_id,
            'shipping' as address,
            {{ identity_phone_digits('shipping_phone') }} as digits,
            upper(coalesce(shipping_country_code, billing_country_code)) as country
        from orders_current
        where shipping_phone is not null
    ) as written

),

address_phones_e164 as (

    select
        address_phones.order_id,
        max(case when address_phones.address = 'billing'
            then coalesce(address_phones.international, phone_lookup.phone_e164) end) as billing_phone_e164,
        max(case when address_phones.address = 'shipping'
            then coalesce(address_phones.international, phone_lookup.phone_e164) end) as shipping_phone_e164
    from address_phones
    left join phone_lookup
        on address_phones.digits = phone_lookup.phone_digits
        and address_phones.country = phone_lookup.country
    group by address_phones.order_id

),

orders as (

    select
        'orders' as source,
        orders_current.order_id as source_record_id,
        {{ identity_name_token('coalesce(orders_current.customer_first_name, orders_current.billing_first_name, orders_current.shipping_first_name)') }}
            as name_first,
        {{ identity_name_token('coalesce(orders_current.customer_last_name, orders_current.billing_last_name, orders_current.shipping_last_name)') }}
            as name_last,
        orders_current.created_at_utc as first_seen_at,
        orders_current.version_at_utc as last_seen_at,
        orders_current.email_normalized as email_1,
        orders_current.customer_email_normalized as email_2,
        orders_current.phone_e164 as phone_1,
        orders_current.customer_phone_e164 as phone_2,
        address_phones_e164.billing_phone_e164 as phone_3,
        address_phones_e164.shipping_phone_e164 as phone_4,
        cast(null as {{ string }}) as anonymous_id,
        orders_current.customer_id as shop_customer_id,
        cast(null as {{ string }}) as crm_contact_id,
        orders_current._loaded_at
    from orders_current
    left join address_phones_e164
        on orders_current.order_id = address_phones_e164.order_id

),

records as (

    select * from contacts
    union all
    select * from email_events
    union all
    select * from calls
    union all
    select * from web_events
    union all
    select * from orders

),

valid as (

    select
        source,
        source_record_id,
        name_first,
        name_last,
        first_seen_at,
        last_seen_at,
        case when email_1 like '%_@_%' then email_1 end as email_1,
        case when email_2 like '%_@_%' then email_2 end as email_2,
        case when phone_1 like '+%' then phone_1 end as phone_1,
        case when phone_2 like '+%' then phone_2 end as phone_2,
        case when length(phone_3) between 8 and 16 then phone_3 end as phone_3,
        case when length(phone_4) between 8 and 16 then phone_4 end as phone_4,
        anonymous_id,
        shop_customer_id,
        crm_contact_id,
        _loaded_at
    from records

),

keyed as (

    select
        {{ identity_record_key('source', 'source_record_id') }} as record_key,
        source,
        source_record_id,
        name_first,
        name_last,
        first_seen_at,
        last_seen_at,
        email_1,
        -- one row per distinct identifier of the record
        case when email_2 <> coalesce(email_1, '') then email_2 end as email_2,
        phone_1,
        case when phone_2 <> coalesce(phone_1, '') then phone_2 end as phone_2,
        case when phone_3 not in (coalesce(phone_1, ''), coalesce(phone_2, '')) then phone_3 end as phone_3,
        case when phone_4 not in (coalesce(phone_1, ''), coalesce(phone_2, ''), coalesce(phone_3, ''))
            then phone_4 end as phone_4,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('shop_customer_id') }} as shop_customer_id,
        {{ clean_text('crm_contact_id') }} as crm_contact_id,
        _loaded_at
    from valid

),

{%- set identifier_columns = [
    ('email', 'email_1'), ('email', 'email_2'),
    ('phone', 'phone_1'), ('phone', 'phone_2'), ('phone', 'phone_3'), ('phone', 'phone_4'),
    ('anonymous_id', 'anonymous_id'), ('shop_customer_id', 'shop_customer_id'),
    ('crm_contact_id', 'crm_contact_id'),
] %}

unpivoted as (

    {% for identifier_type, column in identifier_columns %}
    select
        record_key, source, source_record_id,
        cast('{{ identifier_type }}' as {{ string }}) as identifier_type,
        {{ column }} as identifier_value,
        shop_customer_id as record_shop_customer_id,
        name_first, name_last, first_seen_at, last_seen_at, _loaded_at
    from keyed
    where {{ column }} is not null
    union all
    {% endfor %}
    -- a record without any identifier is kept, with a NULL one
    select
        record_key, source, source_record_id,
        cast(null as {{ string }}) as identifier_type,
        cast(null as {{ string }}) as identifier_value,
        shop_customer_id as record_shop_customer_id,
        name_first, name_last, first_seen_at, last_seen_at, _loaded_at
    from keyed
    where coalesce(
        {%- for _, column in identifier_columns %}{{ column }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ) is null

),

final as (

    select
        {{ dbt.concat([
            "record_key", "'|'", "coalesce(identifier_type, '')", "':'", "coalesce(identifier_value, '')"
        ]) }} as record_identifier_key,
        record_key,
        source,
        source_record_id,
        identifier_type,
        identifier_value,
        {{ identity_identifier_key('identifier_type', 'identifier_value') }} as identifier_key,
        record_shop_customer_id,
        name_first,
        name_last,
        first_seen_at,
        last_seen_at,
        _loaded_at,
        {{ identity_run_timestamp() }} as _extracted_at
    from unpivoted

)

select * from final
