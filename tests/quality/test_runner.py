"""Raw-stage suites on a warehouse loaded by the real loader from hand-written broken batches."""

import json
import time
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


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def machine_zone(monkeypatch):
    """Sets the machine's time zone (TZ) for the test; DuckDB connections opened later use it."""

    def set_zone(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC+14, UTC-11
def test_the_future_starts_a_day_after_utc_now_in_any_machine_time_zone(paths, machine_zone, zone):
    machine_zone(zone)
    now = datetime.now(UTC)
    landing, db = paths
    since = load(
        landing,
        db,
        {
            "orders/o.jsonl": "\n".join(
                [order(1, iso(now + timedelta(hours=20))), order(2, iso(now + timedelta(hours=30)))]
            )
        },
    )
    result = run_suite(db, RAW_SUITES["orders"], since=since)
    [future] = [o for o in result.failed if "nothing from the future" in (o.description or "")]
    assert [row["id"] for row in future.examples] == ["2"]


def contact(contact_id: str, name: str, created_at: str, updated_at: str) -> str:
    return f"{contact_id},{name},Lovelace,,,GB,{created_at},{updated_at}\n"


def test_two_contacts_sharing_an_id_stop_the_stage_and_new_versions_do_not(paths):
    landing, db = paths
    header = CONTACTS.splitlines(keepends=True)[0]
    since = load(
        landing,
        db,
        {
            "contacts/a.csv": header
            + contact("C-1", "Ada", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
            + contact("C-2", "Alan", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"),
            # C-1 renamed: a new version of the same contact, its creation time written in
            # another zone and with milliseconds. C-2 reused by another person created later.
            "contacts/b.csv": header
            + contact("C-1", "Augusta", "2025-01-01T01:00:00.000+01:00", "2025-01-03T00:00:00Z")
            + contact("C-2", "Grace", "2025-01-02T09:00:00Z", "2025-01-03T00:00:00Z"),
        },
    )
    result = run_suite(db, RAW_SUITES["contacts"], since=since)
    assert result.blocking
    [shared] = [o for o in result.failed if o.severity == CRITICAL]
    assert "Each contact_id names one contact" in shared.description
    assert [(row["contact_id"], row["records"]) for row in shared.examples] == [("C-2", 2)]
