{#- Typed values from text as written in exports. Portable SQL: try_cast, substr, length. -#}

{#- A date from ISO 'YYYY-MM-DD' or basic 'YYYYMMDD'; NULL for anything else. -#}
{% macro parse_iso_date(text_expr) -%}
    case
        when length(trim({{ text_expr }})) = 10
            and substr(trim({{ text_expr }}), 5, 1) = '-'
            and substr(trim({{ text_expr }}), 8, 1) = '-'
            then try_cast(trim({{ text_expr }}) as date)
        when length(trim({{ text_expr }})) = 8
            and try_cast(trim({{ text_expr }}) as bigint) is not null
            then try_cast(
                {{ dbt.concat([
                    "substr(trim(" ~ text_expr ~ "), 1, 4)", "'-'",
                    "substr(trim(" ~ text_expr ~ "), 5, 2)", "'-'",
                    "substr(trim(" ~ text_expr ~ "), 7, 2)"
                ]) }} as date
            )
    end
{%- endmacro %}

{#- true/false/yes/no/1/0 (any case, t/f/y/n too) as a boolean; NULL for anything else. -#}
{% macro parse_boolean(text_expr) -%}
    case
        when lower(trim({{ text_expr }})) in ('true', 't', 'yes', 'y', '1') then true
        when lower(trim({{ text_expr }})) in ('false', 'f', 'no', 'n', '0') then false
    end
{%- endmacro %}

{#- A money amount from a decimal string, DECIMAL(18,2); NULL when not a number. -#}
{% macro parse_money(text_expr) -%}
    try_cast(trim({{ text_expr }}) as decimal(18, 2))
{%- endmacro %}

{#- Empty or blank text as NULL, otherwise trimmed. -#}
{% macro clean_text(text_expr) -%}
    nullif(trim({{ text_expr }}), '')
{%- endmacro %}

{#- An ISO 8601 text with any UTC offset as a naive UTC timestamp; NULL when unparseable
    (ingestion's *_utc columns use the same rule). -#}
{% macro iso_timestamp_to_utc(text_expr) -%}
    {{ return(adapter.dispatch('iso_timestamp_to_utc', 'crm360')(text_expr)) }}
{%- endmacro %}

{% macro default__iso_timestamp_to_utc(text_expr) -%}
    (try_cast({{ text_expr }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__iso_timestamp_to_utc(text_expr) -%}
    (try_cast({{ text_expr }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{% macro spark__iso_timestamp_to_utc(text_expr) -%}
    {#- Spark reads the offset and keeps the instant; the session time zone must be UTC. -#}
    try_cast({{ text_expr }} as timestamp)
{%- endmacro %}
