{#- The folder's schema (staging, intermediate, marts) is used as written, not prefixed with the
    target schema: analysts and the Dagster translator see the same names on every target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
