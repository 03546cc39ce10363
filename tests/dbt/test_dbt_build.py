"""dbt build of crm360 on a real DuckDB warehouse loaded by the real ingestion code.

Two deliveries of a hand-written landing folder (tests/dbt/landing_fixture.py): the first
builds everything from scratch, the second is an incremental run that must add only the new
rows, keep every event once, and re-form the web sessions a late event touches. The numbers
asserted are computed by hand in the comments.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ingestion.loader import load_source
from ingestion.sources import SOURCES
from ingestion.warehouse import connect, ensure_schema
from tests.dbt.landing_fixture import CONTACTS_HEADER, DAY_1, DAY_2, write_landing
from tests.dbt.runner import dbt_build


def load_landing(warehouse: Path, landing: Path, files: dict[str, str]) -> None:
    write_landing(landing, files)
    with connect(warehouse) as conn:
        ensure_schema(conn)
        for source in SOURCES:
            load_source(conn, source, landing)


def copied(warehouse: Path, folder: Path) -> Path:
    """A copy of ``warehouse`` in ``folder`` (made), under the same name: see dbt_build."""
    folder.mkdir()
    return shutil.copyfile(warehouse, folder / warehouse.name)


def damaged_copy(warehouse: Path, folder: Path, *statements: str) -> Path:
    """A copy of ``warehouse`` in ``folder``, under the same name, with ``statements`` run on it."""
    copy = shutil.copyfile(warehouse, folder / warehouse.name)
    with duckdb.connect(str(copy)) as conn:
        for statement in statements:
            conn.execute(statement)
    return copy


def dbt_test(warehouse: Path, target_path: Path, *args: str) -> tuple[int, str]:
    """`dbt test` with ``args`` on ``warehouse``, failing or not: its exit code, and its output
    without the terminal colours."""
    done = dbt_build(warehouse, target_path, *args, command="test", check=False)
    return done.returncode, re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)


def rebuilt_whole(warehouse: Path, target_path: Path, model: str, sql: str) -> list[tuple]:
    """``sql`` on a copy of ``warehouse`` whose ``model`` was rebuilt with --full-refresh: what
    an incremental run of the model must equal."""
    rebuilt = copied(warehouse, warehouse.parent / "rebuilt")
    dbt_build(rebuilt, target_path, "--select", model, "--full-refresh", command="run")
    return query(rebuilt, sql)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql).fetchall()


SESSIONS_SQL = (
    "select visitor_id, first_event_id, user_id, event_count "
    "from intermediate.int_web_sessions_built order by visitor_id, session_number"
)


@dataclass(frozen=True)
class Built:
    """The warehouse after both runs, and what the first run left behind."""

    path: Path
    first_loaded_at: object
    first_sessions: list[tuple]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("dbt")
    path = root / "crm360.duckdb"
    load_landing(path, root / "landing", DAY_1)
    dbt_build(path, root / "target")
    first_loaded_at = query(path, "select max(_loaded_at) from marts.fct_calls")[0][0]
    first_sessions = query(path, SESSIONS_SQL)
    # Mark every row the first run wrote: a row the second run rewrites loses its mark.
    with duckdb.connect(str(path)) as conn:
        conn.execute("update marts.fct_calls set queue = '(first run)'")
        conn.execute("update intermediate.int_web_sessions_built set referrer = '(first run)'")
    load_landing(path, root / "landing", DAY_2)
    dbt_build(path, root / "target")
    return Built(path, first_loaded_at, first_sessions)


@pytest.fixture(scope="module")
def warehouse(built: Built) -> Path:
    return built.path


def test_contacts_newest_updated_at_wins(warehouse: Path) -> None:
    rows = query(
        warehouse,
        "select contact_id, first_name, lifecycle_stage, email_opt_out, date_of_birth, "
        "email_normalized, address1 from staging.stg_contacts__contacts order by contact_id",
    )
    # C-1001: day 2 re-sent it with an older updated_at (00:59Z < 01:00Z): day 1's version stays.
    # C-1002: day 2's version is newer: opt-out 'no', new street. C-1003: 'unknown' birth date.
    assert [r[:4] for r in rows] == [
        ("C-1001", "서연", "customer", False),
        ("C-1002", "John", "customer", False),
        ("C-1003", "Test", "other", None),
    ]
    assert str(rows[0][4]) == "1990-03-14" and str(rows[1][4]) == "1985-11-07"
    assert rows[2][4] is None
    assert rows[0][5] == "seoyeon.kim@example.com" and rows[1][6] == "2 Elm St"


def test_orders_net_revenue_matches_hand_computation(warehouse: Path) -> None:
    rows = query(
        warehouse,
        "select order_id, financial_status, total_refunded, net_revenue, net_revenue_reporting "
        "from staging.stg_orders__orders order by order_id",
    )
    # 5001 (newest version, day 2): 59000 KRW - 29500 refunded = 29500 KRW * 0.000741 = 21.86 USD
    # 5002: 100.50 EUR - (20.25 + 10.00) = 70.25 EUR * 1.087 = 76.36 USD
    # 5003: voided: 0
    assert rows == [
        ("5001", "partially_refunded", Decimal("29500.00"), Decimal("29500.00"), Decimal("21.86")),
        ("5002", "paid", Decimal("30.25"), Decimal("70.25"), Decimal("76.36")),
        ("5003", "voided", Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
    ]
    lines = query(
        warehouse,
        "select order_line_id, line_total from staging.stg_orders__line_items order by 1",
    )
    assert lines == [
        ("5001-1", Decimal("59000.00")),
        ("5002-1", Decimal("60.00")),
        ("5002-2", Decimal("30.00")),
        ("5003-1", Decimal("40.00")),
    ]


def test_lookup_keys_of_incremental_tables_are_stored_uncompressed(
    warehouse: Path, tmp_path: Path
) -> None:
    """The key columns incremental runs look rows up by (uncompressed_columns in
    dbt_project.yml) are stored uncompressed in the incremental models' tables, after the first
    build and after the incremental one that inserted into them; the other text columns and
    the tables rebuilt whole stay compressed as DuckDB chooses (macros/key_columns.sql)."""
    storage = """
        select column_name, list(distinct compression order by compression)
        from pragma_storage_info('{}')
        where segment_type = 'VARCHAR'
        group by column_name
    """
    identity_map = dict(query(warehouse, storage.format("marts.identity_map")))
    assert identity_map["record_key"] == ["Uncompressed"]
    assert identity_map["customer_id"] == ["Uncompressed"]
    assert identity_map["source"] != ["Uncompressed"]  # a few distinct values: a dictionary
    ddl = "select sql from duckdb_tables() where table_name = ?"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert (
            "record_key VARCHAR USING COMPRESSION Uncompressed"
            in (conn.execute(ddl, ["int_identity_records_resolved"]).fetchone()[0])
        )
        # a table model: rebuilt whole each run, never rewritten
        assert "USING COMPRESSION" not in conn.execute(ddl, ["customer_segments"]).fetchone()[0]

    # A warehouse built before: its tables are rewritten once, at the end of the next run.
    copy = copied(warehouse, tmp_path / "before")
    with duckdb.connect(str(copy)) as conn:
        conn.execute("create table marts.plain as select * from marts.identity_map")
        conn.execute("drop table marts.identity_map")
        conn.execute("alter table marts.plain rename to identity_map")
    assert (
        "Uncompressed" not in dict(query(copy, storage.format("marts.identity_map")))["record_key"]
    )
    converted = dbt_build(copy, tmp_path / "target", "--select", "identity_map", command="run")
    assert "compacted" in converted.stdout and "stored uncompressed" in converted.stdout
    assert dict(query(copy, storage.format("marts.identity_map")))["record_key"] == ["Uncompressed"]
    count = "select count(*) from marts.identity_map"
    assert query(copy, count) == query(warehouse, count)

    # A new table (here by --full-refresh) is created with them uncompressed: nothing to rewrite.
    refreshed = dbt_build(
        copy, tmp_path / "target", "--select", "identity_map", "--full-refresh", command="run"
    )
    assert "compacted" not in refreshed.stdout
    assert dict(query(copy, storage.format("marts.identity_map")))["record_key"] == ["Uncompressed"]
    assert query(copy, count) == query(warehouse, count)


def test_identity_tables_built_with_the_record_id_lose_it_at_the_next_run(
    warehouse: Path, tmp_path: Path
) -> None:
    """int_identity_records_anchored and _resolved keep no source_record_id (nor _resolved an
    anchor): identity_map takes the id from the record key. A warehouse whose tables have the
    columns (built before) loses them at the next run, and identity_map's ids are the same."""
    columns = (
        "select table_name, list(column_name order by column_name) from duckdb_columns() "
        "where schema_name = 'intermediate' and table_name in "
        "('int_identity_records_anchored', 'int_identity_records_resolved') "
        "and column_name in ('source_record_id', 'anchor_node') group by 1 order by 1"
    )
    assert query(warehouse, columns) == [("int_identity_records_anchored", ["anchor_node"])]
    mapped = "select source, source_record_id, record_key from marts.identity_map order by 3"
    rows = query(warehouse, mapped)
    assert rows and all(key == f"{source}:{record_id}" for source, record_id, key in rows)

    copy = copied(warehouse, tmp_path / "before")
    with duckdb.connect(str(copy)) as conn:
        for table in ("int_identity_records_anchored", "int_identity_records_resolved"):
            conn.execute(
                f"alter table intermediate.{table} add column source_record_id varchar; "
                f"update intermediate.{table} set source_record_id = split_part(record_key, ':', 2)"
            )
        conn.execute(
            "alter table intermediate.int_identity_records_resolved add column anchor_node varchar"
        )
    models = ("int_identity_records_anchored", "int_identity_records_resolved", "identity_map")
    dbt_build(copy, tmp_path / "target", "--select", *models, command="run")
    assert query(copy, columns) == [("int_identity_records_anchored", ["anchor_node"])]
    assert query(copy, mapped) == query(warehouse, mapped)


@pytest.mark.parametrize(
    ("limit", "expected"), [(None, ("3.7 GiB", "2.7 GiB")), ("2GB", ("1.8 GiB", "1.3 GiB"))]
)
def test_dbt_connections_take_the_memory_settings_of_the_profile(
    limit: str | None, expected: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt's DuckDB gets CRM360_DUCKDB_MEMORY_LIMIT (4GB unset) and a block allocator of three
    quarters of it (profiles.yml): a share of the limit set before it, whatever the variable
    says. (DuckDB 2.0 aborts when block_allocator_memory comes in the configuration it is
    opened with; dbt-duckdb SETs it on each connection, in the profile's order.)"""
    if limit is None:
        monkeypatch.delenv("CRM360_DUCKDB_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("CRM360_DUCKDB_MEMORY_LIMIT", limit)
    shown = dbt_build(
        tmp_path / "settings.duckdb",
        tmp_path / "target",
        "--inline",
        "select current_setting('memory_limit') as memory_limit, "
        "current_setting('block_allocator_memory') as block_allocator_memory",
        "--output",
        "json",
        "--log-format",
        "json",
        command="show",
    )
    rows = [
        json.loads(line)["data"]["preview"]
        for line in shown.stdout.splitlines()
        if line.startswith("{") and '"preview"' in line
    ]
    assert [tuple(row.values()) for row in json.loads(rows[0])] == [expected]


@pytest.mark.parametrize(
    ("raw_table", "raw_key", "fact", "fact_key"),
    [
        ("raw.email_events", "sg_event_id", "marts.fct_email_events", "email_event_id"),
        ("raw.web_events", "message_id", "marts.fct_web_events", "web_event_id"),
        ("raw.calls", "call_id", "marts.fct_calls", "call_id"),
    ],
)
def test_every_raw_event_once_in_its_fact(
    warehouse: Path, raw_table: str, raw_key: str, fact: str, fact_key: str
) -> None:
    raw = query(warehouse, f"select {raw_key} from {raw_table} order by 1")
    facts = query(warehouse, f"select {fact_key} from {fact} order by 1")
    assert facts == raw
    assert len(raw) == {"raw.email_events": 5, "raw.web_events": 8, "raw.calls": 4}[raw_table]


def test_second_run_processed_only_new_rows(built: Built) -> None:
    # The incremental run read only rows loaded after the first run's watermark: the day 1 rows
    # keep their _loaded_at and the day 2 rows are exactly the newer ones.
    by_load = query(
        built.path,
        f"select _loaded_at > '{built.first_loaded_at}', queue, count(*) from marts.fct_calls "
        "group by all order by 1",
    )
    assert by_load == [(False, "(first run)", 3), (True, "returns", 1)]
    # Sessions: only visitors with new events were rebuilt (a-51f, a-9); user:8002 was not.
    kept = query(
        built.path,
        "select visitor_id from intermediate.int_web_sessions_built where referrer = '(first run)'",
    )
    assert kept == [("user:8002",)]


def test_late_event_reforms_sessions(built: Built) -> None:
    # Day 1: a-51f has 01:00-01:25 (login at 01:20: user 7001) and 02:15 (anonymous) sessions.
    assert built.first_sessions == [
        ("a-51f", "w-1", "7001", 4),
        ("a-51f", "w-5", None, 1),
        ("user:8002", "w-6", "8002", 1),
    ]
    # Day 2 brings w-7 at 01:50: gaps of 25 minutes join both into one session of user 7001,
    # and the old second session is gone.
    sessions = query(built.path, SESSIONS_SQL)
    assert sessions == [
        ("a-51f", "w-1", "7001", 6),
        ("a-9", "w-8", None, 1),
        ("user:8002", "w-6", "8002", 1),
    ]


def test_sessions_find_an_event_a_run_did_not_see(built: Built, tmp_path: Path) -> None:
    """A visitor without a new event is checked by one count of all such visitors: an event
    that reaches fct_web_events with a load time the last run had passed (a load it did not
    see), a month old, is found, and only its visitor is rebuilt."""
    copy = copied(built.path, tmp_path / "missed")
    with duckdb.connect(str(copy)) as conn:
        conn.execute(
            "insert into marts.fct_web_events select * replace ('w-6b' as web_event_id, "
            "event_at_utc + interval 10 minute as event_at_utc, "
            "_loaded_at - interval 30 day as _loaded_at) "
            "from marts.fct_web_events where web_event_id = 'w-6'"
        )
        conn.execute("update intermediate.int_web_sessions_built set referrer = '(kept)'")
    dbt_build(copy, tmp_path / "target", "--select", "int_web_sessions_built")
    assert query(copy, SESSIONS_SQL) == [
        ("a-51f", "w-1", "7001", 6),
        ("a-9", "w-8", None, 1),
        ("user:8002", "w-6", "8002", 2),
    ]
    kept = query(
        copy, "select visitor_id from intermediate.int_web_sessions_built where referrer = '(kept)'"
    )
    assert kept == [("a-51f",), ("a-9",)]


def test_dbt_unit_tests(warehouse: Path, tmp_path: Path) -> None:
    """Every unit test of the project (models' SQL on fixed inputs, in the models' YAML) passes;
    they run here once, not in each build of these tests or of the pipeline. They read the
    column types of the models' inputs, which the built warehouse has."""
    copy = tmp_path / warehouse.name
    shutil.copyfile(warehouse, copy)
    done = dbt_build(
        copy, tmp_path / "target", "--select", "test_type:unit", command="test", check=False
    )
    results = [
        r
        for r in json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
        if r["unique_id"].startswith("unit_test.")
    ]
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    failed = {r["unique_id"]: r["message"] for r in results if r["status"] != "pass"}
    assert failed == {}, done.stdout[-6000:]
    assert done.returncode == 0, done.stdout[-6000:]
    assert sorted(r["unique_id"] for r in results) == sorted(manifest["unit_tests"])
    assert len(results) >= 30


def test_money_too_large_for_its_column_is_null_not_a_failed_build(tmp_path: Path) -> None:
    """A line of 2,000,000,000 items at 99,999,999.00 (2e17), or a refund larger than any order,
    does not fit DECIMAL(18,2): the amount is NULL (and the money tests say so), the build of
    every other order goes on."""
    order = {
        "id": 9001,
        "created_at": "2025-06-01T10:30:00Z",
        "currency": "USD",
        "total_price": "10.00",
        "line_items": [{"product_id": 1, "quantity": 2000000000, "price": "99999999.00"}],
        "refunds": [
            {"transactions": [{"amount": "9999999999999999.00"}]},
            {"transactions": [{"amount": "9999999999999999.00"}]},
        ],
    }
    path = tmp_path / "crm360.duckdb"
    load_landing(path, tmp_path / "landing", {"orders/o.jsonl": json.dumps(order) + "\n"})
    dbt_build(
        path,
        tmp_path / "target",
        "--select",
        "+stg_orders__orders +stg_orders__line_items",
        "--exclude",
        "resource_type:test",
    )
    assert query(path, "select line_total from staging.stg_orders__line_items") == [(None,)]
    assert query(path, "select net_revenue from staging.stg_orders__orders") == [(None,)]


@pytest.mark.parametrize(
    ("damage", "scope"),
    [
        (  # a later run writes a record twice
            "insert into marts.identity_map select * replace (assigned_at + interval 1 hour "
            "as assigned_at) from marts.identity_map limit 1",
            "changed",
        ),
        (  # a later run resolves a record and loses it from the map
            "update intermediate.int_identity_records_resolved "
            "set _resolved_at = _resolved_at + interval 1 hour "
            "where record_key = (select min(record_key) from marts.identity_map); "
            "delete from marts.identity_map where record_key = (select min(record_key) "
            "from marts.identity_map)",
            "changed",
        ),
        (  # an old row twice: out of the scoped test's sight, seen by the whole-table one
            "insert into marts.identity_map select * from marts.identity_map limit 1",
            "all",
        ),
    ],
    ids=["a-record-twice", "a-record-missing", "an-old-record-twice"],
)
def test_identity_map_holds_every_record_exactly_once_or_its_test_fails(
    warehouse: Path, tmp_path: Path, damage: str, scope: str
) -> None:
    """identity_every_record_once is identity_map's only uniqueness test: it must catch both,
    in the keys written since it last passed (macros/identity_tests.sql) or in all of them."""
    copy = damaged_copy(warehouse, tmp_path, damage)
    code, output = dbt_test(
        copy,
        tmp_path / "target",
        "--select",
        "identity_map,test_name:identity_every_record_once",
        "--vars",
        f"{{tests_scope: {scope}}}",
    )
    assert code != 0
    assert "Failure in test identity_every_record_once_identity_map" in output
    if scope == "all":  # ... and the scoped test does not see it
        scoped = dbt_build(
            copy,
            tmp_path / "target",
            "--select",
            "identity_map,test_name:identity_every_record_once",
            command="test",
        )
        assert scoped.returncode == 0


def test_a_repeated_key_fails_its_unique_test(warehouse: Path, tmp_path: Path) -> None:
    """`unique` runs in two passes on DuckDB (macros/generic_tests.sql): hashes, then values.
    A key written twice must still fail it, and name that one key. On customer_identifiers it
    checks the keys of the rows written since it last passed (macros/test_scope.sql): a
    duplicate older than that pass is out of its scope until var tests_scope is `all`."""
    copy = damaged_copy(
        warehouse,
        tmp_path,
        "insert into marts.customer_identifiers select * from marts.customer_identifiers "
        "where customer_identifier_id = "
        "(select max(customer_identifier_id) from marts.customer_identifiers)",
    )
    unique = ("--select", "customer_identifiers,test_name:unique")

    def fails(*args: str) -> bool:
        code, output = dbt_test(copy, tmp_path / "target", *unique, *args)
        if code == 0:
            assert "ERROR=0" in output
            return False
        assert "Failure in test unique_customer_identifiers_customer_identifier_id" in output
        assert "Got 1 result, configured to fail if != 0" in output
        return True

    assert not fails()  # both copies are as old as the build whose tests passed
    assert fails("--vars", "{tests_scope: all}")
    passes = "audit.dbt_tests_passed"
    its = "where test_id like '%unique_customer_identifiers_customer_identifier_id%'"
    with duckdb.connect(str(copy)) as conn:  # as if it had passed under another definition
        (definition,) = conn.execute(f"select definition_hash from {passes} {its}").fetchone()
        conn.execute(f"update {passes} set definition_hash = 'other' {its}")
    assert fails()
    with duckdb.connect(str(copy)) as conn:  # ... and as if a later run had written the key again
        conn.execute(f"update {passes} set definition_hash = ? {its}", [definition])
        conn.execute(
            "update marts.customer_identifiers set _built_at = _built_at + interval 1 hour "
            "where customer_identifier_id = "
            "(select max(customer_identifier_id) from marts.customer_identifiers)"
        )
    assert fails()


def test_a_record_identifier_written_again_fails_its_unique_test(
    warehouse: Path, tmp_path: Path
) -> None:
    """int_identifiers_extracted's unique test is scoped by record (the records with a row
    written since it last passed, _identity__models.yml): a (record, identifier) row that a
    later run writes again beside the old one fails it, and only the key written twice."""
    copy = damaged_copy(
        warehouse,
        tmp_path,
        "insert into intermediate.int_identifiers_extracted "
        "select * replace (_extracted_at + interval 1 hour as _extracted_at) "
        "from intermediate.int_identifiers_extracted where record_identifier_key = "
        "(select max(record_identifier_key) from intermediate.int_identifiers_extracted)",
    )
    code, output = dbt_test(
        copy, tmp_path / "target", "--select", "int_identifiers_extracted,test_name:unique"
    )
    assert code != 0
    assert "Failure in test unique_int_identifiers_extracted_record_identifier_key" in output
    assert "Got 1 result, configured to fail if != 0" in output


def test_a_customer_missing_from_identity_map_fails_its_relationships_test(
    warehouse: Path, tmp_path: Path
) -> None:
    """relationships is an anti join on DuckDB and Spark alike (macros/generic_tests.sql): a
    touchpoint whose customer_id identity_map does not hold fails it, once per such row."""
    copy = damaged_copy(
        warehouse,
        tmp_path,
        "insert into marts.customer_touchpoints "
        "select * replace ('no-such-customer' as customer_id) "
        "from marts.customer_touchpoints limit 2",
    )
    code, output = dbt_test(
        copy,
        tmp_path / "target",
        "--select",
        "customer_touchpoints,test_name:relationships",
        "--vars",
        "{tests_scope: all}",
    )
    assert code != 0
    test = "relationships_customer_touchpoints_customer_id__customer_id__ref_identity_map_"
    assert f"Failure in test {test}" in output
    assert "Got 2 results, configured to fail if != 0" in output


def test_a_record_missing_from_the_timeline_fails_its_test(warehouse: Path, tmp_path: Path) -> None:
    """customer_360 reads its customers' records from customer_touchpoints, so the timeline
    must hold every record of identity_map exactly once (identity_every_record_once)."""
    copy = damaged_copy(
        warehouse,
        tmp_path,
        "delete from marts.customer_touchpoints "
        "where record_key = (select max(record_key) from marts.customer_touchpoints)",
    )
    code, output = dbt_test(
        copy,
        tmp_path / "target",
        "--select",
        "customer_touchpoints,test_name:identity_every_record_once",
        "--vars",
        "{tests_scope: all}",
    )
    assert code != 0
    assert "Failure in test identity_every_record_once_customer_touchpoints" in output


def _contact(contact_id: str, first: str, last: str, email: str, phone: str, updated: str) -> str:
    return (
        f"{contact_id},{first},{last},{email},{phone},,,,,,,US,,lead,false,"
        f"2025-06-01T00:00:00Z,{updated}\n"
    )


def _email_open(email: str, event_id: str) -> str:
    return (
        json.dumps(
            {"event": "open", "email": email, "timestamp": 1748736000, "sg_event_id": event_id}
        )
        + "\n"
    )


# Day 1: six people, one CRM contact each (and Ana's email event).
IDENTIFIERS_DAY_1 = {
    "contacts/c-1.csv": CONTACTS_HEADER
    + _contact("K-1", "Ana", "Diaz", "ana@example.com", "", "2025-06-01T00:00:00Z")
    + _contact("K-2", "Ben", "Ortiz", "ben@example.com", "", "2025-06-01T00:00:00Z")
    + _contact("K-3", "Cy", "Young", "cy@example.com", "+14155550100", "2025-06-01T00:00:00Z")
    + _contact("K-4", "Dee", "Park", "dee@example.com", "+14155550199", "2025-06-01T00:00:00Z")
    + _contact("K-5", "Fay", "Wu", "fay@example.com", "", "2025-06-01T00:00:00Z")
    + _contact("K-7", "Gus", "Hall", "gus@example.com", "", "2025-06-01T00:00:00Z"),
    "email/e-1.jsonl": _email_open("ana@example.com", "x1"),
}
# Day 2: a guest order with Ana's email and Cy's phone merges them; Ben's newer version has
# another email; Eve shares Dee's landline, which merge protection then blocks; Gus opens an
# email (a new record of his, nothing else). Fay: nothing.
IDENTIFIERS_DAY_2 = {
    "email/e-2.jsonl": _email_open("gus@example.com", "x2"),
    "contacts/c-2.csv": CONTACTS_HEADER
    + _contact("K-2", "Ben", "Ortiz", "ben@new.example", "", "2025-06-02T00:00:00Z")
    + _contact("K-6", "Eve", "Stone", "eve@example.com", "+14155550199", "2025-06-02T00:00:00Z"),
    "orders/o-2.jsonl": json.dumps(
        {
            "id": 77,
            "created_at": "2025-06-02T10:00:00Z",
            "currency": "USD",
            "total_price": "5.00",
            "email": "ana@example.com",
            "phone": "+14155550100",
        }
    )
    + "\n",
}

# _built_at aside: it says which run wrote a row
IDENTIFIERS_SQL = (
    "select * exclude (_built_at) from marts.customer_identifiers order by customer_identifier_id"
)


def test_incremental_customer_identifiers_equal_a_full_rebuild(tmp_path: Path) -> None:
    """A new day rewrites the rows of the customers it touches and no others, and the table
    equals a full rebuild: a customer id merged away keeps no rows, an email a contact no longer
    has is gone. A customer that only gained a new record has its stored rows merged with that
    record's identifiers, not recounted; after identity_map is rebuilt whole, when every record
    looks new, customers are recomputed instead."""
    path, target = tmp_path / "crm360.duckdb", tmp_path / "target"
    identity = ("--select", "+customer_identifiers", "--exclude", "resource_type:test")
    load_landing(path, tmp_path / "landing", IDENTIFIERS_DAY_1)
    dbt_build(path, target, *identity)
    before = dict(
        query(path, "select identifier_value, customer_id from marts.customer_identifiers")
    )
    assert len(set(before.values())) == 6
    with duckdb.connect(str(path)) as conn:  # kept by a merge, lost by a recount
        conn.execute(
            "update marts.customer_identifiers set record_count = 7 where identifier_value = 'K-7'"
        )
    load_landing(path, tmp_path / "landing", IDENTIFIERS_DAY_2)
    dbt_build(path, target, *identity)

    rows = {r[3]: r for r in query(path, IDENTIFIERS_SQL)}  # identifier_value -> row
    merged = {rows[v][1] for v in ("ana@example.com", "cy@example.com", "+14155550100")}
    assert len(merged) == 1  # Ana and Cy are one customer now
    gone = {before["ana@example.com"], before["cy@example.com"]} - merged
    assert len(gone) == 1 and not [r for r in rows.values() if r[1] in gone]
    assert "ben@example.com" not in rows and rows["ben@new.example"][1] == before["ben@example.com"]
    assert rows["+14155550199"][8] is True  # Dee's landline, shared with Eve now: blocked
    assert rows["gus@example.com"][6:8] == ("contacts,email", 2)  # his contact and the open
    assert rows["K-7"][7] == 7  # his stored row, merged
    built = query(
        path,
        "select identifier_value from marts.customer_identifiers "
        "where _built_at = (select min(_built_at) from marts.customer_identifiers)",
    )
    assert {r[0] for r in built} == {"fay@example.com", "K-5"}  # her email and CRM contact id

    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "update marts.customer_identifiers set record_count = 1 where identifier_value = 'K-7'"
        )
    incremental = query(path, IDENTIFIERS_SQL)
    assert incremental == rebuilt_whole(path, target, "customer_identifiers", IDENTIFIERS_SQL)

    # identity_map rebuilt whole (and the extracted rows): every record got its first id then,
    # and none is counted twice
    refreshed = copied(path, tmp_path / "refreshed")
    rebuilt = ("--select", "int_identifiers_extracted", "identity_map", "--full-refresh")
    dbt_build(refreshed, target, *rebuilt, command="run")
    dbt_build(refreshed, target, "--select", "customer_identifiers", command="run")
    counted = IDENTIFIERS_SQL.replace("_built_at", "_built_at, customer_assigned_at")
    assert query(refreshed, counted) == query(path, counted)

    # A table from before customer_assigned_at and _loaded_at existed: recomputed whole, once.
    upgraded = copied(path, tmp_path / "upgraded")
    with duckdb.connect(str(upgraded)) as conn:
        conn.execute("alter table marts.customer_identifiers drop column customer_assigned_at")
        conn.execute("alter table marts.customer_identifiers drop column _loaded_at")
        conn.execute("alter table marts.customer_identifiers drop column _built_at")
        # and a customer that no longer exists
        conn.execute(
            "insert into marts.customer_identifiers select 'cus_gone|email:x@example.com', "
            "'cus_gone', 'email', 'x@example.com', null, null, 'email', 1, false"
        )
    dbt_build(upgraded, target, "--select", "customer_identifiers", command="run")
    assert query(upgraded, IDENTIFIERS_SQL) == incremental


def _order(order_id: int, customer_id: int, first: str, last: str, email: str, phone: str) -> str:
    order = {
        "id": order_id,
        "created_at": "2025-06-01T10:00:00Z",
        "currency": "USD",
        "total_price": "5.00",
        "email": email,
        "customer": {"id": customer_id, "first_name": first, "last_name": last},
    }
    if phone:
        order["phone"] = phone
    return json.dumps(order) + "\n"


# Day 1: Bob's CRM contact and the shop account 9001 (Ann Lee) give one landline: two people
# on it, so merge protection blocks it (max_people 1 for phones).
SCREENED_DAY_1 = {
    "contacts/c-1.csv": CONTACTS_HEADER
    + _contact("K-1", "Bob", "Kim", "bob@example.com", "+14155550123", "2025-06-01T00:00:00Z"),
    "orders/o-1.jsonl": _order(91, 9001, "Ann", "Lee", "ann@example.com", "+14155550123"),
}
# Day 2: Bob orders on the same shop account, without the landline. The account now bears his
# name too, so it is Bob's: one person on the landline, which no record of the day carries.
SCREENED_DAY_2 = {
    "orders/o-2.jsonl": _order(92, 9001, "Bob", "Kim", "bob.orders@example.com", ""),
}
SCREENED_SQL = (
    "select identifier_key, record_count, entity_count, people_count, is_blocked_as_link, "
    "block_reason from intermediate.int_identifiers_screened order by identifier_key"
)


def screened_two_days(
    tmp_path: Path,
    sql: str,
    day_1: dict[str, str],
    day_2: dict[str, str],
    between: Callable[[Path], None] = lambda path: None,
) -> tuple[Path, dict[str, tuple], list[tuple], list[tuple]]:
    """Two days loaded and screened (int_identifiers_screened and what it needs, incrementally
    the second time, ``between`` run on the warehouse before it): the warehouse, ``sql`` after
    day 1 by its first column, after day 2, and after day 2 with the model rebuilt whole."""
    path, target = tmp_path / "crm360.duckdb", tmp_path / "target"
    screened = ("--select", "+int_identifiers_screened", "--exclude", "resource_type:test")
    load_landing(path, tmp_path / "landing", day_1)
    dbt_build(path, target, *screened)
    first = {r[0]: r for r in query(path, sql)}
    between(path)
    load_landing(path, tmp_path / "landing", day_2)
    dbt_build(path, target, *screened)
    incremental = query(path, sql)
    return path, first, incremental, rebuilt_whole(path, target, "int_identifiers_screened", sql)


def test_incremental_screening_follows_an_entity_to_identifiers_no_record_of_the_day_carries(
    tmp_path: Path,
) -> None:
    """int_identifiers_screened recounts an identifier's people when one of its entities
    changes, even though no changed record carries it: the incremental run unblocks the
    landline, as a full rebuild does."""
    landline = "phone:+14155550123"
    _, day_1, day_2, rebuilt = screened_two_days(
        tmp_path, SCREENED_SQL, SCREENED_DAY_1, SCREENED_DAY_2
    )
    assert day_1[landline][2:] == (2, 2, True, "too_many_people")
    assert {r[0]: r for r in day_2}[landline][2:] == (2, 1, False, None)
    assert day_2 == rebuilt


# One person's two shop accounts order with one phone: two shop customers on it, more than
# max_shop_customers (1). Then a third account orders with it.
SHOP_DAY_1 = {
    "orders/o-1.jsonl": _order(81, 8001, "Ann", "Lee", "ann@example.com", "+14155550177")
    + _order(82, 8002, "Ann", "Lee", "ann.lee@example.com", "+14155550177"),
}
SHOP_DAY_2 = {
    "orders/o-2.jsonl": _order(83, 8003, "Ann", "Lee", "a.lee@example.com", "+14155550177"),
}
SHOP_SQL = (
    "select identifier_key, record_count, shop_customer_count, is_blocked_as_link, block_reason "
    "from intermediate.int_identifiers_screened order by identifier_key"
)


def test_screening_counts_shop_accounts_also_on_a_table_written_before_their_column(
    tmp_path: Path,
) -> None:
    """int_identifiers_screened counts the shop accounts on an identifier's records from
    int_identifiers_extracted.record_shop_customer_id. A table written before that column (here:
    dropped) is extracted again whole, so no record keeps it NULL, and the counts equal a full
    rebuild's."""
    phone = "phone:+14155550177"

    def drop_column(path: Path) -> None:
        with duckdb.connect(str(path)) as conn:
            conn.execute(
                "alter table intermediate.int_identifiers_extracted drop record_shop_customer_id"
            )

    path, day_1, day_2, rebuilt = screened_two_days(
        tmp_path, SHOP_SQL, SHOP_DAY_1, SHOP_DAY_2, between=drop_column
    )
    assert day_1[phone][1:] == (2, 2, True, "too_many_shop_customers")
    assert query(
        path,
        "select count(*) from intermediate.int_identifiers_extracted "
        "where source = 'orders' and record_shop_customer_id is null",
    ) == [(0,)]
    assert {r[0]: r for r in day_2}[phone][1:] == (3, 3, True, "too_many_shop_customers")
    assert day_2 == rebuilt


# Day 1: two people's contacts give test@test.com, a blocked value, and an email event goes to
# it: two homes, so the event stays on its own. Day 2: Bob's newer contact drops that address;
# the event's one home is Ann's now, though neither her contact nor the event changed.
RESOLVED_DAY_1 = {
    "contacts/c-1.csv": CONTACTS_HEADER
    + _contact("K-1", "Ann", "Lee", "test@test.com", "+14155550111", "2025-06-01T00:00:00Z")
    + _contact("K-2", "Bob", "Kim", "test@test.com", "+14155550122", "2025-06-01T00:00:00Z"),
    "email/e-1.jsonl": _email_open("test@test.com", "t1"),
}
RESOLVED_DAY_2 = {
    "contacts/c-2.csv": CONTACTS_HEADER
    + _contact("K-2", "Bob", "Kim", "bob@example.com", "+14155550122", "2025-06-02T00:00:00Z"),
}
RESOLVED_SQL = (
    "select record_key, component, is_attached_through_blocked "
    "from intermediate.int_identity_records_resolved order by record_key"
)


def test_incremental_resolution_follows_a_blocked_identifier_a_record_lost(
    tmp_path: Path,
) -> None:
    """A record attached through a blocked identifier is resolved again when another record
    drops that identifier (int_identifiers_extracted's log says so; the identifier's other
    records did not change): the event joins its one remaining home, as in a full rebuild."""
    path, target = tmp_path / "crm360.duckdb", tmp_path / "target"
    resolved = ("--select", "+int_identity_records_resolved", "--exclude", "resource_type:test")
    load_landing(path, tmp_path / "landing", RESOLVED_DAY_1)
    dbt_build(path, target, *resolved)
    day_1 = {r[0]: r for r in query(path, RESOLVED_SQL)}
    assert day_1["email:t1"][1:] == ("record:email:t1", False)

    load_landing(path, tmp_path / "landing", RESOLVED_DAY_2)
    dbt_build(path, target, *resolved)
    incremental = query(path, RESOLVED_SQL)
    day_2 = {r[0]: r for r in incremental}
    assert day_2["email:t1"][1:] == (day_2["contacts:K-1"][1], True)
    # every reader of the log took in what the day replaced: the log is empty again
    assert query(path, "select count(*) from intermediate.int_identifiers_extracted__replaced") == [
        (0,)
    ]

    assert incremental == rebuilt_whole(path, target, "int_identity_records_resolved", RESOLVED_SQL)
