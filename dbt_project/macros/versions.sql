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


{#- A filter of `relation` (versions keyed by `key`: raw, or a staging table of them): every
    version of the records that got a version loaded since the newest _loaded_at of this
    model's table. For staging models that recompute a record from all of its versions. -#}
{% macro versions_of_reloaded(relation, key='id') %}
    where {{ key }} in (
        select {{ key }}
        from {{ relation }}
        where _loaded_at > {{ loaded_at_watermark('_loaded_at') }}
    )
{% endmacro %}
