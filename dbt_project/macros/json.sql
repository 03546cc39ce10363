{#- JSON access, the SQL that differs most between engines. Paths are JSONPath ('$.a.b', '$[0]'). -#}

{#- The scalar at `path` of a JSON text/value, as text (NULL when absent, JSON null, or not a scalar). -#}
{% macro json_text(json_expr, path) -%}
    {{ return(adapter.dispatch('json_text', 'crm360')(json_expr, path)) }}
{%- endmacro %}

{% macro default__json_text(json_expr, path) -%}
    json_extract_string({{ json_expr }}, '{{ path }}')
{%- endmacro %}

{% macro duckdb__json_text(json_expr, path) -%}
    json_extract_string({{ json_expr }}, '{{ path }}')
{%- endmacro %}

{% macro spark__json_text(json_expr, path) -%}
    get_json_object({{ json_expr }}, '{{ path }}')
{%- endmacro %}


{#- The value at `path` as JSON text (objects and lists stay JSON). -#}
{% macro json_value(json_expr, path) -%}
    {{ return(adapter.dispatch('json_value', 'crm360')(json_expr, path)) }}
{%- endmacro %}

{% macro default__json_value(json_expr, path) -%}
    cast(json_extract({{ json_expr }}, '{{ path }}') as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__json_value(json_expr, path) -%}
    cast(json_extract({{ json_expr }}, '{{ path }}') as {{ dbt.type_string() }})
{%- endmacro %}

{% macro spark__json_value(json_expr, path) -%}
    get_json_object({{ json_expr }}, '{{ path }}')
{%- endmacro %}


{#- True when the JSON value is a list. -#}
{% macro json_is_array(json_expr) -%}
    {{ return(adapter.dispatch('json_is_array', 'crm360')(json_expr)) }}
{%- endmacro %}

{% macro default__json_is_array(json_expr) -%}
    (substr(trim(cast({{ json_expr }} as {{ dbt.type_string() }})), 1, 1) = '[')
{%- endmacro %}

{% macro duckdb__json_is_array(json_expr) -%}
    (json_type({{ json_expr }}) = 'ARRAY')
{%- endmacro %}


{#- One row per element of the JSON list in `json_column` of `relation` (a ref or a CTE name),
    with `columns` carried along, `element_index` (1-based, the position in the list) and
    `element` (the element as JSON text). Rows whose list is NULL or empty yield nothing. -#}
{% macro unnest_json_array(relation, json_column, columns) -%}
    {{ return(adapter.dispatch('unnest_json_array', 'crm360')(relation, json_column, columns)) }}
{%- endmacro %}

{% macro default__unnest_json_array(relation, json_column, columns) -%}
    {{ exceptions.raise_compiler_error("unnest_json_array has no implementation for " ~ target.type) }}
{%- endmacro %}

{% macro duckdb__unnest_json_array(relation, json_column, columns) -%}
    select
        {% for column in columns %}{{ column }},
        {% endfor %}cast(unnest(range(1, len(elements) + 1)) as integer) as element_index,
        cast(unnest(elements) as {{ dbt.type_string() }}) as element
    from (
        select
            *,
            cast(json({{ json_column }}) as json[]) as elements
        from {{ relation }}
        where json_type({{ json_column }}) = 'ARRAY'
    ) as with_elements
{%- endmacro %}

{% macro spark__unnest_json_array(relation, json_column, columns) -%}
    {#- array<string> keeps each element's JSON text, objects included. -#}
    select
        {% for column in columns %}{{ column }},
        {% endfor %}cast(exploded.pos + 1 as int) as element_index,
        exploded.element as element
    from {{ relation }}
    lateral view posexplode(from_json({{ json_column }}, 'array<string>')) exploded as pos, element
{%- endmacro %}
