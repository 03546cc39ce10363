{#- Key columns stored uncompressed (DuckDB).

    The key columns an incremental run looks rows up by (config `uncompressed_columns`, set for
    the whole project in dbt_project.yml) are stored uncompressed in the incremental models'
    tables: DuckDB compresses text with a dictionary and FSST (DICT_FSST), and a semi join into
    the table decompresses every key to hash it. At 1,000,000 people looking up 150,000
    record_keys among identity_map's 26.5 M took 0.80 s compressed and 0.26 s not, and writing
    the column took less time too; the three columns took 2.0 GB instead of 1.0 GB. In three
    runs, the one-new-day build took 12.4% to 13.6% of the full build's time instead of 16.8%;
    the warehouse's data grew from 20 to 29.8 GiB. Measured again with little of the warehouse
    in the page cache (a day build right after copying the 31.7 GB file): with every
    key compressed, the full build took 1,314 s instead of 1,034 s and the day build 172.3 s
    instead of 143.5 s, although it read 10.6 GB from disk instead of 26 GB: the lookups'
    decompression costs more than the reading it saves.

    A table gets `USING COMPRESSION Uncompressed` on those columns when it is created (its first
    build, a --full-refresh): the create below. A table from an older warehouse, created
    without, is rewritten once at the run's end (macros/maintenance.sql). The rows later runs
    insert keep it. Other adapters store their tables as they do. -#}

{#- dbt-duckdb's create_table_as, but a table that an incremental model creates (its own, and
    the scratch tables it builds) is created from its own DDL with its key columns uncompressed,
    then filled: the DDL DuckDB writes for the model's columns (and its contract's NOT NULLs)
    with no row, edited, run again. -#}
{% macro duckdb__create_table_as(temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none) -%}
    {%- set keys = config.get('uncompressed_columns') or [] -%}
    {%- if temporary or language != 'sql' or not keys or config.get('materialized') != 'incremental'
            or partitioned_by or sorted_by or not execute -%}
        {{- return(dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, partitioned_by, sorted_by)) -}}
    {%- endif -%}
    {%- set empty = 'select * from (\n' ~ compiled_code ~ '\n) as model_subq where 1 = 0' -%}
    {%- call statement('create_empty_' ~ relation.identifier) -%}
        {{ dbt.duckdb__create_table_as(false, relation, empty, language) }}
    {%- endcall -%}
    {%- set ddl = uncompressed_ddl(relation, keys) -%}
    {%- if ddl is none -%}
        {%- do exceptions.raise_compiler_error('the DDL of ' ~ relation ~ ' does not name it as expected') -%}
    {%- endif -%}
    drop table {{ relation }};
    {{ ddl }};
    {% if config.get('contract').enforced -%}
    insert into {{ relation }} {{ get_column_names() }} (
        {{ get_select_subquery(compiled_code) }}
    );
    {%- else -%}
    insert into {{ relation }}
    select * from (
        {{ compiled_code }}
    ) as model_subq;
    {%- endif %}
{%- endmacro %}

{#- Those of `columns` that the table DDL `ddl` declares as text stored compressed (without USING
    COMPRESSION Uncompressed). -#}
{% macro compressed_key_columns(ddl, columns) -%}
    {%- set compressed = [] -%}
    {%- for column in columns
            if modules.re.search(key_column_pattern(column) ~ '(?! USING COMPRESSION Uncompressed)', ddl) -%}
        {%- do compressed.append(column) -%}
    {%- endfor -%}
    {{ return(compressed) }}
{%- endmacro %}

{#- The CREATE TABLE statement of `relation`, from its DDL, with those of `columns` that are
    text stored uncompressed; `copy` names the table it creates (default: `relation`). None when
    the DDL does not start as expected. -#}
{% macro uncompressed_ddl(relation, columns, copy=none) -%}
    {%- set ddl = table_ddl(relation) -%}
    {%- set patterns = [] -%}
    {%- for column in compressed_key_columns(ddl, columns) -%}
        {%- do patterns.append(key_column_pattern(column)) -%}
    {%- endfor -%}
    {%- if patterns -%}
        {%- set ddl = modules.re.sub(
            '(' ~ patterns | join('|') ~ ')', '\\1 USING COMPRESSION Uncompressed', ddl) -%}
    {%- endif -%}
    {%- set head = 'CREATE TABLE ' ~ relation.schema ~ '.' ~ relation.identifier ~ '(' -%}
    {%- if not ddl.startswith(head) -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return('CREATE TABLE ' ~ (copy or relation) ~ '(' ~ ddl[head | length:].rstrip().rstrip(';')) }}
{%- endmacro %}

{#- A column's name and type in a table's DDL (the name quoted when it is a keyword, like
    "source"), after the opening parenthesis or a comma. -#}
{% macro key_column_pattern(column) -%}
    {{- return('(?:(?<=\\()|(?<=, ))"?' ~ modules.re.escape(column) ~ '"? VARCHAR\\b') -}}
{%- endmacro %}

{% macro table_ddl(relation) -%}
    {{ return(run_query(
        "select sql from duckdb_tables() where database_name = '" ~ relation.database
        ~ "' and schema_name = '" ~ relation.schema ~ "' and table_name = '"
        ~ relation.identifier ~ "'").columns[0].values()[0]) }}
{%- endmacro %}
