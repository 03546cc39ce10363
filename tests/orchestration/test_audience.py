"""`crm360 audience export` on a small hand-made warehouse (the marts' columns it reads).

The segment marts themselves are built and checked on generated data in
tests/dbt/test_segments.py; here the export's own behaviour: who is left out and why, file
formats, errors a user can act on, and that the user's text never becomes SQL.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl
import pytest

from orchestration.audience import AudienceError, default_output, export_audience
from orchestration.cli import main

SEGMENT_ROWS = [
    # customer, segment, email reachable, email reason, phone reachable, phone reason
    ("c1", "At Risk", True, None, True, None),
    ("c2", "At Risk", False, "unsubscribed", True, None),
    ("c3", "At Risk", False, "hard_bounced", False, "no_phone"),
    ("c4", "At Risk", False, "no_email", True, None),
    ("c5", "At Risk", False, "opted_out", True, None),
    ("c6", "At Risk", False, "spam_report", True, None),
    ("c7", "Champions", True, None, True, None),
    ("c8", None, True, None, True, None),
]
PEOPLE = {
    "c1": ("a1@example.com", "+4915100000001"),
    "c2": ("a2@example.com", "+4915100000002"),
    "c3": ("a3@example.com", None),
    "c4": (None, "+4915100000004"),
    "c5": ("a5@example.com", "+4915100000005"),
    "c6": ("a6@example.com", "+4915100000006"),
    "c7": ("a7@example.com", "+4915100000007"),
    "c8": ("a8@example.com", "+4915100000008"),
}
SEGMENTS = ["Champions", "At Risk", "Can't Lose Them", "Lost"]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "crm360.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA seeds")
        conn.execute("CREATE TABLE seeds.rfm_segments (segment VARCHAR)")
        conn.executemany("INSERT INTO seeds.rfm_segments VALUES (?)", [[s] for s in SEGMENTS])
        conn.execute(
            """
            CREATE TABLE marts.customer_segments (
                customer_id VARCHAR, rfm_segment VARCHAR, lifecycle_stage VARCHAR,
                value_tier VARCHAR, recency_days INTEGER, frequency_orders BIGINT,
                net_revenue_reporting DECIMAL(18, 2), next_best_product_key VARCHAR,
                next_best_product_title VARCHAR, is_email_reachable BOOLEAN,
                email_suppression_reason VARCHAR, is_phone_reachable BOOLEAN,
                phone_suppression_reason VARCHAR
            )
            """
        )
        conn.executemany(
            "INSERT INTO marts.customer_segments VALUES (?, ?, 'at_risk', 'B', 40, 2, 120.50, "
            "'MUG-01', 'Stoneware Mug', ?, ?, ?, ?)",
            [list(row) for row in SEGMENT_ROWS],
        )
        conn.execute(
            """
            CREATE TABLE marts.customer_360 (
                customer_id VARCHAR, email VARCHAR, phone VARCHAR, first_name VARCHAR,
                last_name VARCHAR, country VARCHAR, preferred_channel VARCHAR
            )
            """
        )
        conn.executemany(
            "INSERT INTO marts.customer_360 VALUES (?, ?, ?, 'Ada', 'Lovelace', 'GB', 'email')",
            [[c, email, phone] for c, (email, phone) in PEOPLE.items()],
        )
    return path


def test_email_audience_leaves_out_everyone_suppressed_and_says_why(warehouse, tmp_path):
    out = tmp_path / "at-risk.csv"
    result = export_audience(warehouse, "At Risk", "email", out)
    frame = pl.read_csv(out)
    assert frame["customer_id"].to_list() == ["c1"]
    assert frame["email"].to_list() == ["a1@example.com"]
    assert {"first_name", "country", "rfm_segment", "lifecycle_stage", "value_tier"} <= set(
        frame.columns
    )
    assert "phone" not in frame.columns
    assert result.exported == 1
    assert result.suppressed == {
        "hard_bounced": 1,
        "no_email": 1,
        "opted_out": 1,
        "spam_report": 1,
        "unsubscribed": 1,
    }
    summary = result.summary()
    assert "1 of 6 customers" in summary
    assert "suppressed 5: " in summary and "unsubscribed 1" in summary


def test_phone_audience_as_parquet(warehouse, tmp_path):
    out = tmp_path / "lists" / "at-risk.parquet"
    result = export_audience(warehouse, "At Risk", "phone", out)
    frame = pl.read_parquet(out)
    assert frame["customer_id"].to_list() == ["c1", "c2", "c4", "c5", "c6"]
    assert frame["phone"].null_count() == 0
    assert "email" not in frame.columns
    assert result.suppressed == {"no_phone": 1}
    assert not list(out.parent.glob("*.partial"))


def test_segment_names_ignore_case_and_spacing_and_default_file_name(
    warehouse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = export_audience(warehouse, "  at   RISK ", "email")
    assert result.segment == "At Risk"
    assert (
        result.path
        == default_output("At Risk", "email")
        == tmp_path.joinpath("audience-at-risk-email.csv").relative_to(tmp_path)
    )
    assert (tmp_path / "audience-at-risk-email.csv").exists()
    assert default_output("Can't Lose Them", "phone").name == "audience-cant-lose-them-phone.csv"


def test_a_defined_segment_without_members_gives_an_empty_list(warehouse, tmp_path):
    out = tmp_path / "lost.csv"
    result = export_audience(warehouse, "Lost", "email", out)
    assert (result.exported, result.suppressed) == (0, {})
    assert pl.read_csv(out).columns[:2] == ["customer_id", "email"]


def test_unknown_segment_lists_the_valid_ones(warehouse, tmp_path):
    with pytest.raises(AudienceError) as error:
        export_audience(warehouse, "Sleepers", "email", tmp_path / "x.csv")
    message = str(error.value)
    assert "unknown segment 'Sleepers'" in message
    for segment in SEGMENTS:
        assert repr(segment) in message
    assert not (tmp_path / "x.csv").exists()


def test_segment_text_is_never_sql(warehouse, tmp_path):
    digest = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    for attempt in ("At Risk' OR '1'='1", "At Risk'; DROP TABLE marts.customer_360; --"):
        with pytest.raises(AudienceError, match="unknown segment"):
            export_audience(warehouse, attempt, "email", tmp_path / "x.csv")
    # a name with a quote that is a segment is looked up as a value
    result = export_audience(warehouse, "can't lose them", "email", tmp_path / "clt.csv")
    assert (result.segment, result.exported) == ("Can't Lose Them", 0)
    # read-only: the warehouse file is untouched
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == digest


def test_errors_a_user_can_act_on(warehouse, tmp_path):
    with pytest.raises(AudienceError, match=r"use a file name ending in \.csv, \.parquet, \.pq"):
        export_audience(warehouse, "At Risk", "email", tmp_path / "list.xlsx")
    with pytest.raises(AudienceError, match="no warehouse at .*crm360 run"):
        export_audience(tmp_path / "missing.duckdb", "At Risk", "email")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(AudienceError, match="has no segment marts yet.*crm360 run"):
        export_audience(empty, "At Risk", "email")
    with pytest.raises(AudienceError, match="unknown channel 'sms'"):
        export_audience(warehouse, "At Risk", "sms")


def test_cli_exports_and_reports(warehouse, tmp_path, capsys):
    out = tmp_path / "champions.csv"
    args = ["audience", "export", "--segment", "Champions", "--channel", "phone"]
    assert main([*args, "--out", str(out), "--warehouse", str(warehouse)]) == 0
    printed = capsys.readouterr().out
    assert f"audience 'Champions' by phone: 1 of 1 customers written to {out}" in printed
    assert "suppressed 0" in printed
    assert pl.read_csv(out)["customer_id"].to_list() == ["c7"]


def test_cli_unknown_segment_exits_2_with_the_valid_names(warehouse, capsys):
    args = ["audience", "export", "--segment", "VIP", "--channel", "email"]
    assert main([*args, "--warehouse", str(warehouse)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crm360: unknown segment 'VIP'; valid segments: ")
    assert "'At Risk'" in err


def test_cli_rejects_an_unknown_channel(warehouse):
    with pytest.raises(SystemExit):
        main(["audience", "export", "--segment", "At Risk", "--channel", "fax"])
