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


{#- Whether the model's own table already has all these columns: an incremental model whose
    watermark columns were added later recomputes everything once when they are missing. In a
    unit test `this` is its fixture (a string), given with the columns. -#}
{% macro this_has_columns(names) -%}
    {%- if this is string -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- for name in names if name | lower not in existing -%}
        {{ return(false) }}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}


{#- Incremental strategy of the web sessions: each rebuilt visitor's sessions are replaced from
    the first one the batch rebuilt on (replace_from below); sessions before it stay. Spark
    needs the same delete and insert on Delta or Iceberg tables: not tested there yet. -#}
{% macro session_rebuild_strategy() -%}
    {{ return(adapter.dispatch('session_rebuild_strategy', 'crm360')()) }}
{%- endmacro %}

{% macro default__session_rebuild_strategy() -%}
    {{ return('replace_from') }}
{%- endmacro %}


{#- Incremental strategy "replace_from": for each key in the batch, the stored rows whose
    replace_from_column is at or after the batch's earliest value of it for that key are
    deleted, then the batch is inserted. For models that rebuild the tail of a key's history
    (a visitor's sessions from the one a new event falls in): the rows before it are kept
    without being rewritten, and rows of the tail that no longer exist disappear. A batch that
    rebuilds a key's whole history starts at or before its first stored row, so all of them
    go. -#}
{% macro get_incremental_replace_from_sql(arg_dict) -%}
    {{ return(adapter.dispatch('replace_from_sql', 'crm360')(arg_dict)) }}
{%- endmacro %}

{% macro default__replace_from_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set column = config.get('replace_from_column') -%}
    {%- if not key or key is not string or not column -%}
        {{ exceptions.raise_compiler_error("replace_from needs one unique_key column and config replace_from_column") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as stored
    where exists (
        select 1
        from (
            select {{ key }} as replaced_key, min({{ column }}) as replaced_from
            from {{ source }}
            group by {{ key }}
        ) as batch
        where batch.replaced_key = stored.{{ key }}
            and stored.{{ column }} >= batch.replaced_from
    );

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
{%- endmacro %}


{#- Incremental strategy "replace_keys": every row of each key in the batch is replaced, and a
    key whose batch row is only a placeholder (NULL in the model's row id, placeholder_column)
    loses all its rows. For models grouped by a key whose rows can all disappear (a customer
    merged into another no longer has identifiers of its own): delete+insert alone would leave
    such a key's old rows, since a key with no rows in the batch is not deleted.
    DuckDB: delete, then insert the real rows, in the run's transaction. Spark needs
    insert_overwrite over a partition of the key: not written yet. -#}
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


{#- Incremental strategy "replace_logged": delete+insert on unique_key, which first copies the
    stored rows it is about to replace (config replaced_log_columns of them, and the time of the
    replacing run as _replaced_at) into the table <model>__replaced. For a model whose consumer
    works incrementally and must know what a run took away as well as what it added: the
    identifiers a contact's new version no longer carries (int_identifiers_extracted, read by
    int_identifiers_screened and int_identity_edges_built), the edges of the identity graph that
    are gone (int_identity_edges_built, read by int_identity_components_resolved), the customers
    that lost profile candidates (int_profile_candidates_collected, read by
    int_customer_profiles_survived). The readers
    delete the log rows they have all taken in (replaced_log_prune,
    identity_extracted_log_prune). With config placeholder_column, a batch row whose
    placeholder_column is NULL only deletes (and logs) the stored row of its key, as in
    replace_keys. Stored rows with a NULL key go too: they were written before the key column
    existed (appended by on_schema_change), when the model recomputes everything. DuckDB: in the
    run's transaction. Spark needs the same on Delta or Iceberg tables: not tested there yet. -#}
{% macro get_incremental_replace_logged_sql(arg_dict) -%}
    {{ return(adapter.dispatch('replace_logged_sql', 'crm360')(arg_dict)) }}
{%- endmacro %}

{#- The settings of strategy replace_logged, checked. -#}
{% macro replace_logged_settings(arg_dict) -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set logged = config.get('replaced_log_columns') -%}
    {%- if not key or key is not string or not logged -%}
        {{ exceptions.raise_compiler_error("replace_logged needs one unique_key column and config replaced_log_columns") }}
    {%- endif -%}
    {{ return({
        'target': arg_dict['target_relation'],
        'source': arg_dict['temp_relation'],
        'key': key,
        'logged': logged,
        'placeholder': config.get('placeholder_column'),
        'log': replaced_log_relation(arg_dict['target_relation']),
        'columns': get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')),
    }) }}
{%- endmacro %}

{% macro default__replace_logged_sql(arg_dict) -%}
    {%- set settings = replace_logged_settings(arg_dict) -%}
    {%- set target, source, key = settings.target, settings.source, settings.key -%}
    {%- set logged, placeholder, log = settings.logged, settings.placeholder, settings.log -%}
    {%- set columns = settings.columns -%}
    {{ replaced_log_create(target, logged) }};

    insert into {{ log }} ({{ logged | join(', ') }}, _replaced_at)
    select {{ logged | join(', ') }}, {{ identity_run_timestamp() }}
    from {{ target }}
    where {{ key }} in (select {{ key }} from {{ source }})
        or {{ key }} is null;

    delete from {{ target }}
    where {{ key }} in (select {{ key }} from {{ source }})
        or {{ key }} is null;

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
    {%- if placeholder %}
    where {{ placeholder }} is not null
    {%- endif %}
{%- endmacro %}


{#- DuckDB: the stored rows to replace are found once, by their row ids (a scan of the key
    column for the log and another for the delete took 0.6 s more of int_identifiers_extracted's
    39 M rows at 1,000,000 people). -#}
{% macro duckdb__replace_logged_sql(arg_dict) -%}
    {%- set settings = replace_logged_settings(arg_dict) -%}
    {%- set target, source, key = settings.target, settings.source, settings.key -%}
    {%- set logged, placeholder, log = settings.logged, settings.placeholder, settings.log -%}
    {%- set columns = settings.columns -%}
    {%- set replaced = target.identifier ~ '__replacing' -%}
    {{ replaced_log_create(target, logged) }};

    create or replace temporary table {{ replaced }} as
    select rowid as replaced_row_id, {{ logged | join(', ') }}
    from {{ target }}
    where {{ key }} in (select {{ key }} from {{ source }})
        or {{ key }} is null;

    insert into {{ log }} ({{ logged | join(', ') }}, _replaced_at)
    select {{ logged | join(', ') }}, {{ identity_run_timestamp() }}
    from {{ replaced }};

    delete from {{ target }}
    where rowid in (select replaced_row_id from {{ replaced }});

    drop table {{ replaced }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }}
    {%- if placeholder %}
    where {{ placeholder }} is not null
    {%- endif %}
{%- endmacro %}


{#- The table in which strategy replace_logged keeps the rows it replaced, next to the model. -#}
{% macro replaced_log_relation(model_relation) -%}
    {{ return(api.Relation.create(
        database=model_relation.database,
        schema=model_relation.schema,
        identifier=model_relation.identifier ~ '__replaced',
        type='table'
    )) }}
{%- endmacro %}


{#- The log of strategy replace_logged, created empty when it does not exist yet: by the strategy,
    and by a pre-hook of the model that reads it (the logged model's first build, a table, makes
    none). -#}
{% macro replaced_log_create(logged_model, columns) -%}
    create table if not exists {{ replaced_log_relation(logged_model) }} as
    select {{ columns | join(', ') }}, cast(null as timestamp) as _replaced_at
    from {{ logged_model }}
    where 1 = 0
{%- endmacro %}


{#- post-hook of the model that consumes the log of strategy replace_logged: the log rows up to
    the newest run of the logged model it has taken in (its watermark column) are done with. -#}
{% macro replaced_log_prune(logged_model, watermark_column) -%}
    delete from {{ replaced_log_relation(logged_model) }}
    where _replaced_at <= (select max({{ watermark_column }}) from {{ this }})
{%- endmacro %}


{#- post-hook of int_identity_records_resolved, the last of the three readers of the log of
    int_identifiers_extracted: int_identifiers_screened (watermark _extracted_through),
    int_identity_edges_built (its last run, _changed_at) and this model (_resolved_at); a row
    all three have taken in is done with. -#}
{% macro identity_extracted_log_prune() -%}
    delete from {{ replaced_log_relation(ref('int_identifiers_extracted')) }}
    where _replaced_at <= (select max(_resolved_at) from {{ this }})
        and _replaced_at <= (select max(_changed_at) from {{ ref('int_identity_edges_built') }})
        and _replaced_at <= (select max(_extracted_through) from {{ ref('int_identifiers_screened') }})
{%- endmacro %}


{#- The customers whose records moved since the newest `watermark_column` of this model's table
    (identity_map.assigned_at: new records, merges and splits), both the customer a record
    joined and the one it left: a union of selects of customer_id, for the changed customers
    of the models that are incremental per customer. -#}
{% macro customers_moved_since(identity_map, watermark_column='customer_assigned_at') -%}
    select customer_id
    from {{ identity_map }}
    where assigned_at > {{ loaded_at_watermark(watermark_column) }}

    union

    select previous_customer_id
    from {{ identity_map }}
    where assigned_at > {{ loaded_at_watermark(watermark_column) }}
        and previous_customer_id is not null
{%- endmacro %}


{#- Every customer, for a model per customer whose table predates its watermark columns: those
    it holds (so that a customer gone since loses its rows) and those of identity_map. -#}
{% macro customers_all(identity_map) -%}
    select customer_id from {{ this }}

    union

    select customer_id from {{ identity_map }}
{%- endmacro %}


{#- SQL, true when an incremental model may go on from its table: it holds a watermark
    (`watermark_column`, the newest `upstream_column` of `upstream` it has taken in), and
    `upstream` was not rebuilt whole since (its oldest row is not newer than that watermark). -#}
{% macro upstream_followed_since(upstream, upstream_column, watermark_column) -%}
    (select max({{ watermark_column }}) from {{ this }}) is not null
    and (select min({{ upstream_column }}) from {{ upstream }})
        <= (select max({{ watermark_column }}) from {{ this }})
{%- endmacro %}


{#- post-hook of customer_360: the as-of date is the same for every customer (var
    customer_360_as_of_date, else the date of the newest touchpoint), so when it moves, the
    rows an incremental run did not recompute get it and their days_since_last_touch again. The
    date is read before the statement is written: a literal, no subquery in the UPDATE (Delta
    on Spark takes none there). Rows already on it are left alone. -#}
{% macro customer_360_as_of_refresh() -%}
    {%- set as_of_var = var('customer_360_as_of_date', none) -%}
    {%- set as_of = 'cast(null as date)' -%}
    {%- if as_of_var -%}
        {%- set as_of = "cast('" ~ as_of_var ~ "' as date)" -%}
    {%- elif execute -%}
        {%- set newest = run_query(
            'select cast(cast(max(touchpoint_at) as date) as ' ~ dbt.type_string() ~ ') from '
            ~ ref('customer_touchpoints')
        ).columns[0].values()[0] -%}
        {%- if newest -%}
            {%- set as_of = "cast('" ~ newest ~ "' as date)" -%}
        {%- endif -%}
    {%- endif -%}
    update {{ this }}
    set as_of_date = {{ as_of }},
        days_since_last_touch = cast(
            {{ dbt.datediff('cast(last_seen_at as date)', as_of, 'day') }} as integer
        )
    where as_of_date is distinct from {{ as_of }}
{%- endmacro %}


{#- Between a CTE's name and its body (`name as {{ cte_inlined() }} (...)`): the CTE is inlined
    into each select that reads it, with that select's filters pushed into the scan. DuckDB
    materialises a CTE read more than once, all its rows, before any reader's filter: a CTE over
    a whole source table read by an incremental run's two filters cost tens of seconds at 1M
    people. Spark always inlines, and knows no such keyword. -#}
{% macro cte_inlined() -%}
    {{ return(adapter.dispatch('cte_inlined', 'crm360')()) }}
{%- endmacro %}

{% macro default__cte_inlined() -%}
{%- endmacro %}

{% macro duckdb__cte_inlined() -%}
    not materialized
{%- endmacro %}


{#- Whether the SQL boolean `condition` holds now: run while the model compiles, so that the
    model can choose how much to redo (false when it is NULL). -#}
{% macro sql_holds(condition) -%}
    {{ return(run_query('select ' ~ condition).columns[0].values()[0] or false) }}
{%- endmacro %}


{#- SQL for the md5 of what a model's rows depend on besides its input rows: `fixed` (the
    model's code and the vars it reads, as text) and a seed's rows (`seed_value` of each, in
    `seed_order`). Stored in each row as _settings_hash; an incremental run that finds another
    value stored redoes everything. -#}
{% macro settings_hash_sql(fixed, seed, seed_value, seed_order) -%}
    md5({{ dbt.concat([
        "'" ~ local_md5(fixed) ~ "'",
        "coalesce((select " ~ dbt.listagg(seed_value, "','", 'order by ' ~ seed_order)
            ~ " from " ~ seed ~ "), '')",
    ]) }})
{%- endmacro %}


{#- Whether this model's stored rows were written under `settings_hash` (settings_hash_sql). -#}
{% macro stored_settings_match(settings_hash) -%}
    {{ return(sql_holds('(select max(_settings_hash) from ' ~ this ~ ') = ' ~ settings_hash)) }}
{%- endmacro %}


{#- Whether an incremental run of a staging model that recomputes records from all of their
    versions may take only the records loaded since (versions_of_reloaded): its stored rows have
    _loaded_at and were written under `settings_hash`. Always in a unit test of an incremental
    run, where `this` is the test's fixture. -#}
{% macro reloaded_only(settings_hash) -%}
    {%- if not is_incremental() -%}
        {{ return(false) }}
    {%- elif this is string -%}
        {{ return(true) }}
    {%- elif execute and this_has_columns(['_loaded_at', '_settings_hash']) -%}
        {{ return(stored_settings_match(settings_hash)) }}
    {%- endif -%}
    {{ return(false) }}
{%- endmacro %}
