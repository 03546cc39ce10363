"""Freshness: a source whose newest file is older than its interval warns, and does not block."""

import os
import time

import pytest

from ingestion.sources import SOURCES
from quality.runner import run_suite
from quality.suites import FRESHNESS_ENV, RAW_SUITES, WARNING, _raw_suite, freshness_hours
from tests.quality.test_runner import CONTACTS, load

HOUR = 3600


def landed(landing, db, files: dict[str, float]) -> None:
    """Land contacts files modified ``hours`` ago each, and load them."""
    for i, (name, hours) in enumerate(files.items()):
        path = landing / "contacts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTACTS.replace("C-", f"C{i}-"))
        then = time.time() - hours * HOUR
        os.utime(path, (then, then))
    load(landing, db, {})


def stale(result) -> list:
    return [o for o in result.failed if o.examples and "newest_file" in o.examples[0]]


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "landing", tmp_path / "w.duckdb"


def test_a_source_silent_for_longer_than_its_interval_warns_without_blocking(paths):
    landing, db = paths
    landed(landing, db, {"old.csv": 80, "older.csv": 100})  # default interval: 48 hours
    result = run_suite(db, RAW_SUITES["contacts"])
    assert not result.blocking
    [warning] = stale(result)
    assert warning.severity == WARNING
    assert warning.examples[0]["newest_file"] == "contacts/old.csv"
    assert 79 < warning.examples[0]["hours_ago"] < 81


def test_a_source_with_a_new_file_is_fresh(paths):
    landing, db = paths
    landed(landing, db, {"older.csv": 100, "new.csv": 1})  # the newest file counts
    result = run_suite(db, RAW_SUITES["contacts"])
    assert stale(result) == []
    assert [o.column for o in result.failed] == ["email_normalized"]  # only the bad email


def test_the_interval_is_configured_per_source_or_for_all(paths, monkeypatch):
    assert set(freshness_hours("")) == set(SOURCES)
    assert set(freshness_hours("72").values()) == {72}
    hours = freshness_hours("web=6, contacts=168")
    assert (hours["web"], hours["contacts"], hours["orders"]) == (6, 168, 48)
    with pytest.raises(ValueError, match="unknown source 'shop'.*contacts"):
        freshness_hours("shop=6")
    with pytest.raises(ValueError, match="'soon' .* not a positive number of hours"):
        freshness_hours("web=soon")

    landing, db = paths
    landed(landing, db, {"a.csv": 3})
    assert stale(run_suite(db, RAW_SUITES["contacts"])) == []
    monkeypatch.setenv(FRESHNESS_ENV, "contacts=2")
    assert len(stale(run_suite(db, _raw_suite(SOURCES["contacts"])))) == 1
