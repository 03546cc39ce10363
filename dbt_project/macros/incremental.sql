{#- Incremental strategy of the event facts: rows are replaced by unique key. DuckDB has no
    MERGE in dbt-duckdb's materialisation, so delete+insert; Spark (Delta/Iceberg) merges. -#}
{% macro event_incremental_strategy() -%}
    {{ return(adapter.dispatch('event_incremental_strategy', 'crm360')()) }}
{%- endmacro %}

{% macro default__event_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro duckdb__event_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__event_incremental_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}


{#- The newest ingestion load time already in this model's table, for "only new rows" filters.
    ingestion's _loaded_at only grows, so rows loaded after it are exactly the unseen ones. -#}
{% macro loaded_at_watermark(column='_loaded_at') -%}
    (select coalesce(max({{ column }}), cast('1900-01-01 00:00:00' as timestamp)) from {{ this }})
{%- endmacro %}


{#- Incremental strategy of models that rebuild every row of a changed key (a visitor's sessions):
    the rows of the key are all replaced, so rows that no longer exist disappear. delete+insert
    does exactly that on DuckDB. Spark's merge cannot delete unmatched rows, so Spark needs
    insert_overwrite over a partition of the key (see the report on issue 3): not written yet. -#}
{% macro visitor_rebuild_strategy() -%}
    {{ return(adapter.dispatch('visitor_rebuild_strategy', 'crm360')()) }}
{%- endmacro %}

{% macro default__visitor_rebuild_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro duckdb__visitor_rebuild_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}


{#- Incremental strategy "replace_keys": every row of each key in the batch is replaced, and a
    key whose batch row is only a placeholder (NULL in the model's row id, placeholder_column)
    loses all its rows. For models grouped by a key whose rows can all disappear (a customer
    merged into another no longer has identifiers of its own): delete+insert alone would leave
    such a key's old rows, since a key with no rows in the batch is not deleted.
    DuckDB: delete, then insert the real rows, in the run's transaction. Spark needs
    insert_overwrite over a partition of the key, as visitor_rebuild_strategy: not written yet. -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {{ return(adapter.dispatch('replace_keys_sql', 'crm360')(arg_dict)) }}
{%- endmacro %}

{% macro default__replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set placeholder = config.get('placeholder_column') -%}
    {%- if not key or key is not string or not placeholder -%}
        {{ exceptions.raise_compiler_error("replace_keys needs one unique_key column and config placeholder_column") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ key }} in (select {{ key }} from {{ source }});

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
    where {{ placeholder }} is not null
{%- endmacro %}
