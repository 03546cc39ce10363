{#- Compaction of the incremental models' tables that this dbt invocation wrote, run at its end
    (on-run-end in dbt_project.yml, given the invocation's results).

    The incremental models replace rows by delete + insert, and dbt's DuckDB connections do not
    vacuum deletes at checkpoints (max_vacuum_tasks: 0 in profiles.yml): a deleted row stays in
    its row group, skipped by every scan, until the table is compacted here. A table is
    rewritten whole, in one transaction, once the share of its stored rows that are deleted
    reaches var `compact_dead_share` (default 0.2; 0 compacts every table with a dead row, 1
    never). Its definition (column types, NOT NULL of enforced contracts) is kept: the copy is
    created from the table's own DDL. Each compaction is logged with the rows it dropped.

    A table whose key columns (config `uncompressed_columns`) are still stored compressed (one
    created before crm360 stored them uncompressed, macros/key_columns.sql) is rewritten here
    once, with them uncompressed.

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
                {%- set keys = node.config.get('uncompressed_columns') or [] -%}
                {%- set compressed = compressed_key_columns(table_ddl(relation), keys) if keys else [] -%}
                {%- if compressed or (stored > live and (stored - live) >= threshold * stored) -%}
                    {%- do compact_table(relation, stored - live, stored, compressed) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Rewrites `relation` without its deleted rows, and with the columns `uncompress` stored
    uncompressed: a copy made from the table's DDL, filled, then swapped in for the table, in one
    transaction (the statement's, committed here). -#}
{% macro compact_table(relation, dead, stored, uncompress=[]) -%}
    {%- set copy = relation.incorporate(path={'identifier': relation.identifier ~ '__compacted'}) -%}
    {%- set create = uncompressed_ddl(relation, uncompress, copy) -%}
    {%- if create is none -%}
        {%- do log('compaction of ' ~ relation ~ ' skipped: its DDL does not name it as expected', info=true) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set started = modules.datetime.datetime.now() -%}
    {%- call statement('compact_' ~ relation.identifier) -%}
        drop table if exists {{ copy }};
        {{ create }};
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
