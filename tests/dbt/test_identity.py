"""Identity resolution against the generator's ground truth (issue 3).

Reads the warehouse of the shared `pipeline` fixture (1,500 people, 14 days, `crm360 run` twice)
and, for the stable-id test, runs one more day on copies of it. Pairwise metrics are contingency
counts in DuckDB: with n records of one (person, customer) cell, C(n, 2) = n(n-1)/2 pairs.

Recall ceiling: a record can only be attributed to its person through the identifiers it
carries. For each person, take their loaded records and join two of them when they carry the
same identifier value (normalised email, E.164 phone, web anonymousId, shop customer id, CRM
contact id) -- using only values actually present in that person's own records -- and find the
connected parts (label propagation in DuckDB). The ceiling is the number of same-person pairs
inside those parts: pairs no shared identifier connects (a guest order with a one-off email, a
cookie that never logged in) can only be found by probabilistic matching, and pairs connected
only through an identifier that merge protection blocks (a household landline) are beyond a
precise resolver. Recall is asserted against that ceiling, not against all same-person pairs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.runner import dbt_build
from tests.pipeline import crm360

# What each source's records carry, from staging: (record key SQL, identifier expressions).
_IDENTIFIERS = {
    "stg_contacts__contacts": (
        "'contacts:' || contact_id",
        ["'email:' || email_normalized", "'phone:' || phone_e164", "'crm:' || contact_id"],
    ),
    "stg_email__events": ("'email:' || email_event_id", ["'email:' || email_normalized"]),
    "stg_calls__calls": ("'calls:' || call_id", ["'phone:' || customer_number_e164"]),
    "stg_web__events": (
        "'web:' || web_event_id",
        [
            "'anon:' || anonymous_id",
            "'shop:' || user_id",
            "'email:' || traits_email_normalized",
            "'phone:' || traits_phone_e164",
        ],
    ),
    "stg_orders__orders": (
        "'orders:' || order_id",
        [
            "'email:' || email_normalized",
            "'email:' || customer_email_normalized",
            "'phone:' || phone_e164",
            "'phone:' || customer_phone_e164",
            "'shop:' || customer_id",
        ],
    ),
}


def _connect_with_truth(warehouse: Path, landing: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the warehouse attached (read-only) and the truth as tables."""
    con = duckdb.connect()
    con.execute(f"attach '{warehouse}' as wh (read_only)")
    truth = landing / "_truth"
    # A record's truth: its person; placeholder records (no person) are each their own.
    con.execute(f"""
        create table truth as
        select distinct
            source || ':' || source_record_id as record_key,
            coalesce(nullif(person_id, ''), 'none:' || source || ':' || source_record_id)
                as person
        from read_csv('{truth}/records.csv.gz', all_varchar = true)
        where expected = 'loaded'
    """)
    con.execute(f"""
        create table people as
        select * from read_csv('{truth}/people.csv.gz', all_varchar = true)
    """)
    return con


def _pairs(con: duckdb.DuckDBPyConnection, table: str, *columns: str) -> int:
    """Sum of C(n, 2) over the cells of `table` grouped by `columns`."""
    group = ", ".join(columns)
    return con.execute(
        f"select coalesce(sum(n * (n - 1) / 2), 0) from "
        f"(select count(*) as n from {table} group by {group})"
    ).fetchone()[0]


def _reachable_parts(con: duckdb.DuckDBPyConnection) -> None:
    """Table `reach` (record_key, part): each person's records joined through identifier
    values present in them, by min-label propagation with pointer jumping."""
    selects = []
    for model, (key, identifiers) in _IDENTIFIERS.items():
        for identifier in identifiers:
            selects.append(
                f"select {key} as record_key, {identifier} as identifier "
                f"from wh.staging.{model} where {identifier} is not null"
            )
    con.execute(f"""
        create table person_identifiers as
        select distinct truth.person, ids.record_key, ids.identifier
        from ({" union all ".join(selects)}) as ids
        inner join truth on ids.record_key = truth.record_key
    """)
    con.execute("""
        create table person_edges as
        select distinct pi.record_key as a, hubs.hub as b
        from person_identifiers as pi
        inner join (
            select person, identifier, min(record_key) as hub
            from person_identifiers group by person, identifier
        ) as hubs using (person, identifier)
        where pi.record_key <> hubs.hub
    """)
    con.execute("create table reach as select record_key, record_key as part from truth")
    for _ in range(64):
        con.execute("""
            create or replace table hooked as
            select record_key, min(part) as part from (
                select record_key, part from reach
                union all
                select e.a, r.part from person_edges e join reach r on e.b = r.record_key
                union all
                select e.b, r.part from person_edges e join reach r on e.a = r.record_key
            ) group by record_key
        """)
        con.execute("""
            create or replace table hooked as
            select h.record_key, coalesce(p.part, h.part) as part
            from hooked h left join hooked p on h.part = p.record_key
        """)
        changed = con.execute(
            "select count(*) from hooked join reach using (record_key) "
            "where hooked.part <> reach.part"
        ).fetchone()[0]
        con.execute("create or replace table reach as select * from hooked")
        if changed == 0:
            return
    raise AssertionError("ceiling label propagation did not converge")


@pytest.fixture(scope="module")
def metrics(pipeline) -> dict:
    con = _connect_with_truth(pipeline["warehouse"], pipeline["landing"])
    _reachable_parts(con)
    con.execute("""
        create table labelled as
        select truth.record_key, truth.person, reach.part, map.customer_id
        from truth
        inner join wh.marts.identity_map as map on truth.record_key = map.record_key
        inner join reach on truth.record_key = reach.record_key
    """)
    out = {
        "records": con.execute("select count(*) from truth").fetchone()[0],
        "labelled": con.execute("select count(*) from labelled").fetchone()[0],
        "true_pairs": _pairs(con, "labelled", "person"),
        "predicted_pairs": _pairs(con, "labelled", "customer_id"),
        "correct_pairs": _pairs(con, "labelled", "person", "customer_id"),
        "ceiling_pairs": _pairs(con, "labelled", "person", "part"),
    }
    con.close()
    return out


def test_every_raw_record_in_identity_map_exactly_once(pipeline):
    con = duckdb.connect(str(pipeline["warehouse"]), read_only=True)
    raw_keys = """
        select distinct 'contacts' as source, cast(contact_id as varchar) as id from raw.contacts
        union all select distinct 'email', cast(sg_event_id as varchar) from raw.email_events
        union all select distinct 'calls', cast(call_id as varchar) from raw.calls
        union all select distinct 'web', cast(message_id as varchar) from raw.web_events
        union all select distinct 'orders', cast(id as varchar) from raw.orders
    """
    raw_count = con.execute(f"select count(*) from ({raw_keys})").fetchone()[0]
    missing = con.execute(f"""
        select count(*) from ({raw_keys}) as r
        left join marts.identity_map as m on m.source = r.source and m.source_record_id = r.id
        where m.record_key is null
    """).fetchone()[0]
    duplicated = con.execute("""
        select count(*) from (
            select source, source_record_id from marts.identity_map
            group by all having count(*) > 1
        )
    """).fetchone()[0]
    mapped = con.execute("select count(*) from marts.identity_map").fetchone()[0]
    con.close()
    assert raw_count > 1_000
    assert (missing, duplicated, mapped) == (0, 0, raw_count)


def test_every_loaded_truth_record_is_mapped(metrics):
    assert metrics["labelled"] == metrics["records"]


def test_pairwise_precision(metrics):
    precision = metrics["correct_pairs"] / metrics["predicted_pairs"]
    assert precision >= 0.99, metrics


def test_pairwise_recall_reaches_the_identifier_ceiling(metrics):
    recall = metrics["correct_pairs"] / metrics["true_pairs"]
    ceiling = metrics["ceiling_pairs"] / metrics["true_pairs"]
    # The resolver also gets pairs beyond the ceiling (probabilistic matches of contacts and
    # orders) and loses a few inside it (identifiers blocked by merge protection), so the ratio
    # can exceed 1; measured 0.9999-1.0001 on generated data.
    assert ceiling < 0.99, "the data has no records that identifiers cannot reach"
    assert recall >= 0.97 * ceiling, {**metrics, "recall": recall, "ceiling": ceiling}


def test_shared_inboxes_and_household_lines_do_not_fuse_people(pipeline):
    con = _connect_with_truth(pipeline["warehouse"], pipeline["landing"])
    con.execute("""
        create table person_customers as
        select distinct truth.person, map.customer_id
        from truth
        inner join wh.marts.identity_map as map on truth.record_key = map.record_key
    """)
    for group in ("household_id", "company_inbox"):
        fused = con.execute(f"""
            select count(*) from (
                select pc.customer_id, p.{group}
                from person_customers as pc
                inner join people as p on pc.person = p.person_id
                where p.{group} <> ''
                group by pc.customer_id, p.{group}
                having count(distinct pc.person) > 1
            )
        """).fetchone()[0]
        assert fused == 0, f"{fused} customers mix people of one {group}"
    # not vacuous: inboxes that several colleagues' records carry exist, and are shown on each
    # of their profiles as blocked links
    shared_inboxes = con.execute("""
        select count(*) from wh.marts.customer_identifiers as ci
        inner join (
            select company_inbox from people where company_inbox <> ''
            group by company_inbox
        ) as inboxes on ci.identifier_value = inboxes.company_inbox
        where ci.is_blocked_as_link
    """).fetchone()[0]
    assert shared_inboxes >= 2
    con.close()


def test_second_run_gives_identical_customer_ids(pipeline):
    def ids(path: Path) -> set[tuple]:
        with duckdb.connect(str(path), read_only=True) as con:
            return set(
                con.execute(
                    "select record_key, customer_id, assigned_at from marts.identity_map"
                ).fetchall()
            )

    first, second = ids(pipeline["after_first"]), ids(pipeline["warehouse"])
    assert first and first == second


def _next_day(pipeline: dict, root: Path) -> Path:
    """The session pipeline's warehouse (copied) after a `crm360 run` of one more day of the
    same generated world."""
    landing, warehouse = root / "landing", root / "crm360.duckdb"
    shutil.copytree(pipeline["landing"], landing)
    shutil.copy(pipeline["warehouse"], warehouse)
    env = {"DAGSTER_HOME": str(root / "dagster_home")}
    (root / "dagster_home").mkdir()
    generated = crm360(
        "generate", "--out", str(landing), "--people", str(pipeline["people"]),
        "--days", str(pipeline["days"] + 1), "--seed", str(pipeline["seed"]), env_extra=env,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    # compact_dead_share=0: the run's end compacts every table that the day left deleted rows in
    ran = crm360(
        "run", "--landing", str(landing), "--warehouse", str(warehouse),
        "--var", "compact_dead_share=0", env_extra=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-8000:] + ran.stderr[-4000:]
    return warehouse


# Made in the background as soon as the session's pipeline is built (conftest.py).
AFTER_PIPELINE = {"next_day": _next_day}


@pytest.fixture(scope="module")
def next_day(background) -> Path:
    return background["next_day"].result()


def test_a_new_day_changes_only_ids_that_merge_or_split(pipeline, next_day, tmp_path):
    warehouse = next_day

    con = duckdb.connect()
    con.execute(f"attach '{pipeline['warehouse']}' as old (read_only)")
    con.execute(f"attach '{warehouse}' as new (read_only)")
    # Compaction: no model's table keeps a deleted row (the logs of replaced rows, pruned by
    # their readers, are no models), and every table kept its definition (types, the NOT NULL
    # of enforced contracts). customer_360, below, shows that the day replaced rows.
    tables = con.execute("""
        select schema_name, table_name, sql, estimated_size from duckdb_tables()
        where database_name = 'new' and schema_name in ('staging', 'intermediate', 'marts')
            and not table_name like '%\\_\\_replaced' escape '\\'
    """).fetchall()
    dead = {
        f"{schema}.{table}": stored - live
        for schema, table, _, stored in tables
        for (live,) in [con.execute(f"select count(*) from new.{schema}.{table}").fetchone()]
        if stored != live
    }
    assert dead == {}
    assert {f"{s}.{t}": sql for s, t, sql, _ in tables} == dict(
        con.execute("""
            select schema_name || '.' || table_name, sql from duckdb_tables()
            where database_name = 'old' and schema_name in ('staging', 'intermediate', 'marts')
                and not table_name like '%\\_\\_replaced' escape '\\'
        """).fetchall()
    )
    new_records = con.execute("""
        select count(*) from new.marts.identity_map as n
        left join old.marts.identity_map as o using (record_key)
        where o.record_key is null
    """).fetchone()[0]
    assert new_records > 0
    run_at = con.execute("select max(assigned_at) from new.marts.identity_map").fetchone()[0]
    # Every record whose id changed moved from an id that history says merged or split into
    # the record's new id, in this run.
    unexplained = con.execute(
        """
        select o.customer_id, n.customer_id, count(*)
        from old.marts.identity_map as o
        inner join new.marts.identity_map as n using (record_key)
        left join new.marts.customer_id_history as h
            on h.customer_id = o.customer_id
            and h.related_customer_id = n.customer_id
            and h.event_type in ('merged', 'split')
            and h.recorded_at = ?
        where o.customer_id <> n.customer_id and h.customer_id is null
        group by all
        """,
        [run_at],
    ).fetchall()
    assert unexplained == []
    # ... and every merge or split history records in this run moved that many records.
    misrecorded = con.execute(
        """
        with moved as (
            select o.customer_id as old_id, n.customer_id as new_id, count(*) as records
            from old.marts.identity_map as o
            inner join new.marts.identity_map as n using (record_key)
            where o.customer_id <> n.customer_id
            group by all
        )
        select h.customer_id, h.related_customer_id, h.records_affected, moved.records
        from new.marts.customer_id_history as h
        left join moved on moved.old_id = h.customer_id and moved.new_id = h.related_customer_id
        where h.recorded_at = ? and h.event_type in ('merged', 'split')
            and moved.records is distinct from h.records_affected
        """,
        [run_at],
    ).fetchall()
    assert misrecorded == []
    # Ids of people who neither merged nor split are unchanged: no id of the old map vanished
    # without a merged event.
    vanished = con.execute(
        """
        select count(*) from (select distinct customer_id from old.marts.identity_map) as o
        where o.customer_id not in (select customer_id from new.marts.identity_map)
            and o.customer_id not in (
                select customer_id from new.marts.customer_id_history
                where event_type = 'merged' and recorded_at = ?
            )
        """,
        [run_at],
    ).fetchone()[0]
    assert vanished == 0

    # Web sessions after the incremental day equal a full rebuild of them; the day's visitors
    # include some with sessions from before it (which the run kept or rebuilt from).
    kept, rechecked = con.execute("""
        select
            count(*) filter (where n.last_loaded_at <= (select max(last_loaded_at)
                from old.intermediate.int_web_sessions_built)),
            count(*) filter (where n.last_loaded_at > (select max(last_loaded_at)
                from old.intermediate.int_web_sessions_built))
        from new.intermediate.int_web_sessions_built as n
        where n.visitor_id in (
            select visitor_id from new.intermediate.int_web_sessions_built
            group by visitor_id having max(last_loaded_at) > (select max(last_loaded_at)
                from old.intermediate.int_web_sessions_built)
        )
    """).fetchone()
    assert kept > 0 and rechecked > 0
    # Profile candidates and survivorship redid some customers, not all of them.
    redone, candidates_total = con.execute("""
        select count(distinct customer_id) filter (where _built_at > (select max(_built_at)
                   from old.intermediate.int_profile_candidates_collected)),
               count(distinct customer_id)
        from new.intermediate.int_profile_candidates_collected
    """).fetchone()
    assert 0 < redone < candidates_total / 2, (redone, candidates_total)
    survived_redone = con.execute("""
        select count(*) from new.intermediate.int_customer_profiles_survived
        where candidates_built_at > (select max(candidates_built_at)
            from old.intermediate.int_customer_profiles_survived)
    """).fetchone()[0]
    assert 0 < survived_redone < candidates_total / 2
    # customer_360 recomputed the customers the day touched; the others only moved to the new
    # as-of date (checked against a full rebuild below)
    recomputed, customers, as_of_dates = con.execute("""
        select count(*) filter (where _built_at > (select max(_built_at)
                   from old.marts.customer_360)),
               count(*), count(distinct as_of_date)
        from new.marts.customer_360
    """).fetchone()
    assert 0 < recomputed < customers / 2 and as_of_dates == 1, (recomputed, customers)
    # The incremental graph redid part of each step, not all of it: merge protection the
    # identifiers the day's records added or took away; the anchors of the records the day
    # wrote or whose identifiers flipped; the edges touching those; the components they touch.
    for model, marker in (
        ("int_identifiers_screened", "_extracted_through"),
        ("int_identity_records_anchored", "_extracted_through"),
        ("int_identity_edges_built", "_changed_at"),
        ("int_identity_components_resolved", "_edges_through"),
    ):
        redone, total = con.execute(f"""
            select count(*) filter (where {marker} > (select max({marker})
                       from old.intermediate.{model})),
                   count(*)
            from new.intermediate.{model}
        """).fetchone()
        assert 0 < redone < total / 4, (model, redone, total)
    con.close()
    # ... and each of these incremental models equals a full rebuild of it (run timestamps
    # aside: they say when a row was written)
    compared = {
        "int_identifiers_extracted": ("* exclude (_extracted_at)", "record_identifier_key"),
        "int_identifiers_screened": (
            "* exclude (_extracted_through, _settings_hash, _link_status_at, _link_flipped_at)",
            "identifier_key",
        ),
        "int_identity_records_anchored": (
            "* exclude (_extracted_through, _screened_through, _anchored_at)",
            "record_key",
        ),
        "int_identity_edges_built": ("* exclude (_changed_at)", "edge_key"),
        "int_identity_components_resolved": ("* exclude (_edges_through)", "node"),
        "int_identity_records_resolved": ("* exclude (_resolved_at)", "record_key"),
        "int_web_sessions_built": ("*", "session_id"),
        "int_profile_candidates_collected": ("* exclude (_built_at)", "record_key, origin"),
        "int_customer_profiles_survived": (
            "* exclude (candidates_built_at, _survived_at)",
            "customer_id",
        ),
        "int_match_records_prepared": ("*", "record_key"),
        "customer_360": ("* exclude (_built_at)", "customer_id"),
        "customer_identifiers": ("* exclude (_built_at)", "customer_identifier_id"),
        "customer_touchpoints": ("* exclude (_built_at)", "record_key"),
        "stg_orders__orders": ("*", "order_id"),
    }
    schemas = {
        "customer_360": "marts",
        "customer_identifiers": "marts",
        "customer_touchpoints": "marts",
        "stg_orders__orders": "staging",
    }
    queries = {
        model: f"select {columns} from {schemas.get(model, 'intermediate')}.{model} "
        f"order by {order}"
        for model, (columns, order) in compared.items()
    }
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        incremental = {model: conn.execute(sql).fetchall() for model, sql in queries.items()}
    rebuilt = tmp_path / "rebuilt" / warehouse.name  # the name: see dbt_build
    rebuilt.parent.mkdir()
    shutil.copyfile(warehouse, rebuilt)
    dbt_build(rebuilt, tmp_path / "target", "--select", *compared, "--full-refresh", command="run")
    with duckdb.connect(str(rebuilt), read_only=True) as conn:
        for model, sql in queries.items():
            rows = conn.execute(sql).fetchall()
            assert len(rows) == len(incremental[model]), model
            assert rows == incremental[model], model
