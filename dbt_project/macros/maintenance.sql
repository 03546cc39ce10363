{#- Compaction of the incremental models' tables that this dbt invocation wrote, run at its end
    (on-run-end in dbt_project.yml, given the invocation's results).

    The incremental models replace rows by delete + insert, and dbt's DuckDB connections do not
    vacuum deletes at checkpoints (max_vacuum_tasks: 0 in profiles.yml): a deleted row stays in
    its row group, skipped by every scan, until the table is compacted here. A table is
    rewritten whole, in one transaction, once the share of its stored rows that are deleted
    reaches var `compact_dead_share` (default 0.2; 0 compacts every table with a dead row, 1
    never). Its definition (column types, NOT NULL of enforced contracts) is kept: the copy is
    created from the table's own DDL. Each compaction is logged with the rows it dropped.

    The key columns an incremental run looks rows up by (config `uncompressed_columns`, set for
    the whole project in dbt_project.yml) are stored uncompressed: DuckDB compresses text with
    a dictionary and FSST (DICT_FSST), and a semi join into the table decompresses every key to
    hash it. At 1,000,000 people looking up 150,000 record_keys among identity_map's 26.5 M took
    0.80 s compressed and 0.26 s not, and writing the column took less time too; the three
    columns took 2.0 GB instead of 1.0 GB. A table whose DDL does not say so yet (its first
    build, a --full-refresh, a warehouse from before) is rewritten here once, with `USING
    COMPRESSION Uncompressed` on those columns; the rows later runs insert keep it.

    Other adapters compact by their own means (Delta's OPTIMIZE), and this does nothing there. -#}
{% macro compact_tables(results) -%}
    {{ return(adapter.dispatch('compact_tables', 'crm360')(results)) }}
{%- endmacro %}

{% macro default__compact_tables(results) -%}
{%- endmacro %}

{% macro duckdb__compact_tables(results) -%}
    {%- set threshold = var('compact_dead_share', 0.2) | float -%}
    {%- if execute and threshold < 1 -%}
        {%- for result in results
                if result.node.resource_type == 'model'
                and result.node.config.materialized == 'incremental' -%}
            {%- set node = result.node -%}
            {%- set relation = adapter.get_relation(node.database, node.schema, node.alias) -%}
            {%- if relation is not none -%}
                {%- set sizes = run_query(
                    "select (select estimated_size from duckdb_tables()"
                    ~ " where database_name = '" ~ relation.database ~ "'"
                    ~ " and schema_name = '" ~ relation.schema ~ "'"
                    ~ " and table_name = '" ~ relation.identifier ~ "') as stored,"
                    ~ " (select count(*) from " ~ relation ~ ") as live") -%}
                {%- set stored = sizes.columns[0].values()[0] or 0 -%}
                {%- set live = sizes.columns[1].values()[0] or 0 -%}
                {%- set compressed = compressed_key_columns(relation, node.config.get('uncompressed_columns') or []) -%}
                {%- if compressed or (stored > live and (stored - live) >= threshold * stored) -%}
                    {%- do compact_table(relation, stored - live, stored, compressed) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- The columns of `relation` among `columns` that are text stored compressed: their DDL does not
    say USING COMPRESSION Uncompressed. -#}
{% macro compressed_key_columns(relation, columns) -%}
    {%- set ddl = table_ddl(relation) if columns else '' -%}
    {%- set compressed = [] -%}
    {%- for column in columns
            if modules.re.search(key_column_pattern(column) ~ '(?! USING COMPRESSION Uncompressed)', ddl) -%}
        {%- do compressed.append(column) -%}
    {%- endfor -%}
    {{ return(compressed) }}
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

{#- Rewrites `relation` without its deleted rows, and with the columns `uncompress` stored
    uncompressed: a copy made from the table's DDL, filled, then swapped in for the table, in one
    transaction (the statement's, committed here). -#}
{% macro compact_table(relation, dead, stored, uncompress=[]) -%}
    {%- set ddl = table_ddl(relation) -%}
    {%- if uncompress -%}
        {%- set patterns = [] -%}
        {%- for column in uncompress -%}
            {%- do patterns.append(key_column_pattern(column)) -%}
        {%- endfor -%}
        {%- set ddl = modules.re.sub(
            '(' ~ patterns | join('|') ~ ')', '\\1 USING COMPRESSION Uncompressed', ddl) -%}
    {%- endif -%}
    {%- set copy = relation.incorporate(path={'identifier': relation.identifier ~ '__compacted'}) -%}
    {%- set head = 'CREATE TABLE ' ~ relation.schema ~ '.' ~ relation.identifier ~ '(' -%}
    {%- if not ddl.startswith(head) -%}
        {%- do log('compaction of ' ~ relation ~ ' skipped: its DDL does not start with ' ~ head, info=true) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set started = modules.datetime.datetime.now() -%}
    {%- call statement('compact_' ~ relation.identifier) -%}
        drop table if exists {{ copy }};
        {{ 'CREATE TABLE ' ~ copy ~ '(' ~ ddl[head | length:] }};
        insert into {{ copy }} select * from {{ relation }};
        drop table {{ relation }};
        alter table {{ copy }} rename to {{ adapter.quote(relation.identifier) }};
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {%- set done = [] -%}
    {%- if dead > 0 -%}
        {%- do done.append(dead ~ ' deleted of ' ~ stored ~ ' stored rows dropped') -%}
    {%- endif -%}
    {%- if uncompress -%}
        {%- do done.append(uncompress | join(', ') ~ ' stored uncompressed') -%}
    {%- endif -%}
    {%- do log('compacted ' ~ relation ~ ': ' ~ done | join('; ') ~ ' in '
        ~ ((modules.datetime.datetime.now() - started).total_seconds() | round(1)) ~ ' s', info=true) -%}
{%- endmacro %}
