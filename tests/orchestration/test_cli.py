"""`crm360 run`: in-process run of every asset, exit status and the reasons it gives."""

import json

import duckdb
import pytest

from ingestion.loader import load_source
from ingestion.sources import SOURCES
from ingestion.warehouse import connect
from orchestration.cli import main


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    landing = tmp_path / "landing"
    (landing / "email").mkdir(parents=True)
    events = [
        {
            "event": "open",
            "email": "a@example.com",
            "timestamp": 1748745600 + i,
            "sg_event_id": f"e{i}",
        }
        for i in range(5)
    ]
    (landing / "email" / "sendgrid-2025-06-01.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events) + "{broken\n"
    )
    return landing, tmp_path / "wh" / "crm360.duckdb"


def test_run_loads_and_exits_zero(project, capsys):
    landing, warehouse = project
    assert (
        main(
            [
                "run",
                "--landing",
                str(landing),
                "--warehouse",
                str(warehouse),
                "--var",
                "clv_time_unit=week",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "built raw/email_events (new_files=1, rows_loaded=5, rows_quarantined=1" in out
    # Sources without data are a warning of their quality suite, shown, not a failure.
    assert "warning: check raw/calls:great_expectations failed: warning: " in out
    assert "succeeded" in out
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.email_events").fetchone() == (5,)


def test_run_fails_naming_the_blocking_check_and_why(project, capsys):
    landing, warehouse = project
    with connect(warehouse) as conn:  # loaded earlier (the loader alone: quicker than a run)
        for source in SOURCES:
            load_source(conn, source, landing)
        # then a row disappears behind the audit's back
        conn.execute("DELETE FROM raw.email_events WHERE sg_event_id = 'e3'")
    capsys.readouterr()
    assert main(["run", "--landing", str(landing), "--warehouse", str(warehouse)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert (
        "blocking check raw/email_events:rows_accounted_for failed: "
        "email/sendgrid-2025-06-01.jsonl: recorded loaded rows differ from the rows in the "
        "raw table"
    ) in out


def test_var_must_be_name_equals_value(project):
    landing, warehouse = project
    with pytest.raises(SystemExit, match="--var expects NAME=VALUE"):
        main(["run", "--landing", str(landing), "--warehouse", str(warehouse), "--var", "oops"])
