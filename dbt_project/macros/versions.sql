{#- The newest version of each record of a versioned export (orders): latest version time, then
    the later file and row. One definition for every model that needs "the current order". -#}
{% macro newest_versions(relation, key='id', version_at='version_at_utc') %}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ key }}
        order by
            {{ version_at }} desc nulls last,
            _file_name desc nulls last,
            _row_number desc nulls last
    ) = 1
{% endmacro %}
