{#- Tests scoped to the rows written since they last passed.

    A test of a big incremental table would re-read all of it on every run, though a run
    rewrites a small part. Such a test names the rows it checks in its `where` config with two
    placeholders:
      __tests_passed_at__  when this test last passed (the start of that dbt invocation), and
      __relation__         the tested table,
    e.g. `where: "_built_at > __tests_passed_at__"` (the rows written since; `_built_at` is the
    start of the invocation that wrote a row) or, for `unique`, `where: "record_key in (select
    record_key from __relation__ where _built_at > __tests_passed_at__)"` (every row sharing a
    key with a row written since). Rows written by an invocation whose tests failed or did not
    run stay in scope until the test passes.

    The whole table is tested when the test never passed here, when its definition or the tested
    model's code changed since it last passed (a view's old rows may read differently now), on
    `--full-refresh`, and when var `tests_scope` is `all` (`crm360 run --var tests_scope=all`).
    A scoped test trusts that rows it checked before did not change: a relationships test does
    not see an old row whose parent a later run deleted. The new-day tests compare every
    incremental model with a full rebuild for that; run with tests_scope=all to check whole
    tables again.

    Passes are kept in audit.dbt_tests_passed (one row per test: its id, when it last passed and
    a hash of its definition and of the tested model's code then), created by on-run-start and
    written by on-run-end (dbt_project.yml). -#}

{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__tests_passed_at__' in where -%}
        {%- set passed_at = tests_passed_at() -%}
        {%- if passed_at is none -%}
            {{ return(relation) }}
        {%- endif -%}
        {%- set where = where | replace('__tests_passed_at__', passed_at)
            | replace('__relation__', relation | string) -%}
    {%- endif -%}
    {%- if where -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}


{% macro tests_passed_relation() -%}
    {{ return(api.Relation.create(database=target.database, schema='audit', identifier='dbt_tests_passed')) }}
{%- endmacro %}


{#- When the test being compiled last passed, as a timestamp literal; none when the whole table
    is to be tested. -#}
{% macro tests_passed_at() -%}
    {%- if not execute or var('tests_scope', 'changed') == 'all' or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set passes = tests_passed_relation() -%}
    {%- if load_relation(passes) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select cast(max(passed_run_started_at) as " ~ dbt.type_string() ~ ") from " ~ passes
        ~ " where test_id = '" ~ model.unique_id ~ "' and definition_hash = '"
        ~ test_definition_hash(model.unique_id) ~ "'").columns[0].values()[0] -%}
    {%- if found is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return("cast('" ~ found ~ "' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}


{#- What a pass depends on besides the rows: the test's arguments and config, and the code of
    the model it tests (from the manifest, the same while compiling a test and at the run's end). -#}
{% macro test_definition_hash(test_id) -%}
    {%- set test = graph.nodes[test_id] -%}
    {%- set tested = graph.nodes.get(test.attached_node) if test.attached_node else none -%}
    {{ return(local_md5(tojson([
        test.test_metadata, test.config.where, test.config.severity,
        tested.checksum if tested else none,
    ]))) }}
{%- endmacro %}


{#- on-run-start -#}
{% macro tests_passed_create() -%}
    {%- set passes = tests_passed_relation() -%}
    {%- do adapter.create_schema(passes) -%}
    create table if not exists {{ passes }} (
        test_id {{ dbt.type_string() }},
        passed_run_started_at {{ dbt.type_timestamp() }},
        definition_hash {{ dbt.type_string() }}
    )
{%- endmacro %}


{#- on-run-end: the tests that passed in this invocation, stamped with its start -#}
{% macro tests_passed_record(results) -%}
    {%- if execute -%}
        {%- set passed = [] -%}
        {%- for result in results
                if result.node.resource_type == 'test' and result.status == 'pass' -%}
            {%- do passed.append("('" ~ result.node.unique_id ~ "', '"
                ~ test_definition_hash(result.node.unique_id) ~ "')") -%}
        {%- endfor -%}
        {%- if passed -%}
            {%- set passes = tests_passed_relation() -%}
            {%- call statement('tests_passed_record') -%}
                delete from {{ passes }} where test_id in (
                    select test_id
                    from (values {{ passed | join(', ') }}) as passed (test_id, definition_hash)
                );
                insert into {{ passes }} (test_id, passed_run_started_at, definition_hash)
                select test_id, {{ identity_run_timestamp() }}, definition_hash
                from (values {{ passed | join(', ') }}) as passed (test_id, definition_hash);
            {%- endcall -%}
            {%- do adapter.commit() -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
