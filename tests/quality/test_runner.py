"""Raw-stage suites on a warehouse loaded by the real loader from hand-written broken batches."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion.loader import load_source
from ingestion.warehouse import connect
from quality.runner import run_suite
from quality.suites import CRITICAL, RAW_SUITES, WARNING

CONTACTS = (
    "contact_id,first_name,last_name,email,phone,country,created_at,updated_at\n"
    "C-1,Ada,Lovelace,ada@example.com,020 7946 0018,GB,2025-01-01T00:00:00Z,2025-01-02T00:00:00Z\n"
    "C-2,Alan,Turing,alan@example,+44 20 7946 0019,GB,2025-01-01T00:00:00Z,2025-01-02T00:00:00Z\n"
)
# An upstream export that renamed contact_id: every row breaks the contract.
RENAMED = CONTACTS.replace("contact_id,", "id,", 1)


def order(order_id: int, created_at: str, currency: str = "USD", total: str = "10.00") -> str:
    return json.dumps(
        {"id": order_id, "created_at": created_at, "currency": currency, "total_price": total}
    )


def load(landing: Path, db: Path, files: dict[str, str]) -> datetime:
    """Write the files, load them; returns when this load started."""
    for name, text in files.items():
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_text(text)
    started = datetime.now(UTC).replace(tzinfo=None)
    with connect(db) as conn:
        for source in ("contacts", "orders"):
            load_source(conn, source, landing)
    return started


def failed(result) -> dict[tuple[str, str | None], object]:
    return {(o.expectation, o.column): o for o in result.failed}


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "landing", tmp_path / "w.duckdb"


def test_a_good_batch_passes(paths):
    landing, db = paths
    since = load(landing, db, {"contacts/a.csv": CONTACTS})
    result = run_suite(db, RAW_SUITES["contacts"], since=since)
    assert not result.blocking
    # alan@example has no dot after the @: a warning, which does not block.
    [bad_email] = result.failed
    assert (bad_email.column, bad_email.severity) == ("email_normalized", WARNING)
    assert bad_email.examples == ["alan@example"]


def test_a_renamed_column_stops_the_stage_in_the_load_that_brought_it(paths):
    landing, db = paths
    load(landing, db, {"contacts/a.csv": CONTACTS})
    since = load(landing, db, {"contacts/b.csv": RENAMED})
    result = run_suite(db, RAW_SUITES["contacts"], since=since)
    assert result.blocking
    share = failed(result)[("unexpected_rows_expectation", None)]
    assert share.severity == CRITICAL
    assert share.observed == 1  # one file
    assert share.examples == [
        {"file_name": "contacts/b.csv", "rows_in_file": 2, "rows_quarantined": 2}
    ]
    # The next load, with good data, is judged on its own files.
    later = load(landing, db, {"contacts/c.csv": CONTACTS.replace("C-", "D-")})
    assert not run_suite(db, RAW_SUITES["contacts"], since=later).blocking


def test_an_order_from_the_future_an_unknown_currency_and_a_negative_total_are_errors(paths):
    landing, db = paths
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    since = load(
        landing,
        db,
        {
            "orders/o.jsonl": "\n".join(
                [
                    order(1, "2025-03-01T10:00:00Z"),
                    order(2, future),
                    order(3, "2025-03-01T10:00:00Z", currency="XXX"),
                    order(4, "2025-03-01T10:00:00Z", total="-5.00"),
                ]
            )
        },
    )
    result = run_suite(db, RAW_SUITES["orders"], since=since)
    assert result.blocking
    problems = failed(result)
    assert problems[("expect_column_values_to_be_in_set", "currency")].examples == ["XXX"]
    rows = [o for o in result.failed if o.expectation == "unexpected_rows_expectation"]
    assert all(o.severity == CRITICAL for o in rows)
    assert sorted(o.examples[0]["id"] for o in rows) == ["2", "4"]  # the future, the negative
