"""End to end: `crm360 generate`, then `crm360 run`, checked row by row against the ground truth.

Real generator, real Dagster run in-process, real DuckDB; nothing mocked.
"""

import csv
import gzip
from collections import Counter

import duckdb

from ingestion.sources import SOURCES
from tests.pipeline import truth_files, truth_records


def table_counts(conn) -> dict[str, int]:
    tables = [s.raw_table for s in SOURCES.values()] + ["audit.quarantine", "audit.loaded_files"]
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_run_reports_success_and_what_was_built(pipeline):
    out = pipeline["first"].stdout
    assert "succeeded" in out
    for source in SOURCES.values():
        assert f"built raw/{source.table}" in out


def test_every_file_is_accounted_for_as_the_ground_truth_says(pipeline):
    files = truth_files(pipeline["landing"])
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        loaded = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT file_name, status, rows_in_file, rows_loaded, rows_quarantined, "
                "rows_duplicate FROM audit.loaded_files"
            ).fetchall()
        }
    assert set(loaded) == set(files)
    for name, t in files.items():
        status, rows, ok, bad, dup = loaded[name]
        expected_status = (
            "unreadable"
            if t["unreadable"] == "true"
            else "duplicate_file"
            if t["duplicate_of"]
            else "loaded"
        )
        assert status == expected_status, name
        assert (rows, ok, bad, dup) == (
            int(t["rows"]),
            int(t["loaded"]),
            int(t["quarantined"]),
            int(t["duplicate"]),
        ), name
        assert rows == ok + bad + dup


def test_every_row_lands_where_the_ground_truth_says(pipeline):
    truth = truth_records(pipeline["landing"])
    expected = {(r["file_name"], int(r["row_number"])): r["expected"] for r in truth}
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        quarantined = set(
            conn.execute(
                "SELECT file_name, row_number FROM audit.quarantine WHERE row_number IS NOT NULL"
            ).fetchall()
        )
        loaded = set()
        for source in SOURCES.values():
            loaded |= set(
                conn.execute(f"SELECT _file_name, _row_number FROM {source.raw_table}").fetchall()
            )
    assert quarantined == {k for k, v in expected.items() if v == "quarantined"}
    assert loaded == {k for k, v in expected.items() if v == "loaded"}
    outcomes = Counter(expected.values())
    assert outcomes["quarantined"] > 0 and outcomes["duplicate"] > 0


def test_quarantine_reasons_name_what_is_wrong(pipeline):
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        reasons = conn.execute("SELECT source, reason, raw_record FROM audit.quarantine").fetchall()
    assert {s for s, _, _ in reasons} == set(SOURCES)
    for source, reason, raw in reasons:
        assert reason and not reason.startswith("None"), (source, reason)
        assert raw is not None or reason.startswith("file cannot be read")


def test_phones_are_normalised_to_the_persons_true_numbers(pipeline):
    truth = truth_records(pipeline["landing"])
    person_of = {(r["file_name"], int(r["row_number"])): r["person_id"] for r in truth}
    with gzip.open(pipeline["landing"] / "_truth" / "people.csv.gz", "rt", newline="") as f:
        phones = {
            r["person_id"]: set(filter(None, r["phones"].split("|"))) for r in csv.DictReader(f)
        }
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        rows = conn.execute(
            "SELECT _file_name, _row_number, phone_e164 FROM raw.contacts "
            "WHERE phone_e164 IS NOT NULL UNION ALL "
            "SELECT _file_name, _row_number, customer_number_e164 FROM raw.calls "
            "WHERE customer_number_e164 IS NOT NULL"
        ).fetchall()
    assert len(rows) > 100
    matches = [
        e164 in phones.get(person_of[(f, n)], set()) for f, n, e164 in rows if person_of.get((f, n))
    ]
    assert sum(matches) / len(matches) >= 0.99


def test_a_second_run_on_the_same_landing_folder_adds_nothing(pipeline):
    assert pipeline["second"].returncode == 0, pipeline["second"].stdout
    with duckdb.connect(str(pipeline["after_first"]), read_only=True) as conn:
        after_first = table_counts(conn)
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        assert table_counts(conn) == after_first


def test_dbt_models_build_on_the_loaded_data(pipeline):
    assert "built staging/stg_orders__orders" in pipeline["first"].stdout
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        orders = conn.execute("SELECT count(*) FROM staging.stg_orders__orders").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT id) FROM raw.orders").fetchone()[0]
    assert orders == distinct > 0
