{#- Compaction of the incremental models' tables that this dbt invocation wrote, run at its end
    (on-run-end in dbt_project.yml, given the invocation's results).

    The incremental models replace rows by delete + insert, and dbt's DuckDB connections do not
    vacuum deletes at checkpoints (max_vacuum_tasks: 0 in profiles.yml): a deleted row stays in
    its row group, skipped by every scan, until the table is compacted here. A table is
    rewritten whole, in one transaction, once the share of its stored rows that are deleted
    reaches var `compact_dead_share` (default 0.2; 0 compacts every table with a dead row, 1
    never). Its definition (column types, NOT NULL of enforced contracts) is kept: the copy is
    created from the table's own DDL. Each compaction is logged with the rows it dropped.

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
                {%- if stored > live and (stored - live) >= threshold * stored -%}
                    {%- do compact_table(relation, stored - live, stored) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Rewrites `relation` without its deleted rows: a copy made from the table's DDL, filled, then
    swapped in for the table, in one transaction (the statement's, committed here). -#}
{% macro compact_table(relation, dead, stored) -%}
    {%- set ddl = run_query(
        "select sql from duckdb_tables() where database_name = '" ~ relation.database
        ~ "' and schema_name = '" ~ relation.schema ~ "' and table_name = '"
        ~ relation.identifier ~ "'").columns[0].values()[0] -%}
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
    {%- do log('compacted ' ~ relation ~ ': ' ~ dead ~ ' deleted of ' ~ stored ~ ' stored rows dropped in '
        ~ ((modules.datetime.datetime.now() - started).total_seconds() | round(1)) ~ ' s', info=true) -%}
{%- endmacro %}
