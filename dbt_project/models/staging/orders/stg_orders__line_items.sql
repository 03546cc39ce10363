{#- The line items of each order's current version, one row per item. -#}
with

source as (

    select * from {{ source('raw', 'orders') }}

),

current_versions as (

    {{ newest_versions('source') }}

),

line_items as (

    {{ unnest_json_array('current_versions', 'line_items', ['id as order_id', 'currency']) }}

),

typed as (

    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        element_index as line_number,
        {{ json_text('element', '$.product_id') }} as product_id,
        {{ json_text('element', '$.sku') }} as sku,
        {{ json_text('element', '$.title') }} as title,
        try_cast({{ json_text('element', '$.quantity') }} as integer) as quantity,
        {{ parse_money(json_text('element', '$.price')) }} as price,
        upper(trim(currency)) as currency
    from line_items

),

final as (

    select
        {{ dbt.concat(["order_id", "'-'", "cast(line_number as " ~ dbt.type_string() ~ ")"]) }}
            as order_line_id,
        order_id,
        line_number,
        product_id,
        sku,
        title,
        quantity,
        price,
        -- widened first: an absurd quantity times price must give NULL, not fail the build
        try_cast(quantity * cast(price as decimal(38, 2)) as decimal(18, 2)) as line_total,
        currency
    from typed

)

select * from final
