"""GX Data Docs of suite runs: one site per warehouse that every run adds to, linked from the
Dagster check's metadata."""

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from ingestion.sources import SOURCES
from orchestration.ingest import build_raw_asset, raw_asset_key
from orchestration.quality import build_suite_check
from orchestration.resources import Landing, Warehouse
from quality import docs
from quality.docs import DOCS_ENV, docs_folder
from quality.runner import run_suite
from quality.suites import RAW_SUITES
from tests.quality.test_runner import CONTACTS, load, order


def page(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(unquote(urlparse(url).path))


@pytest.fixture
def warehouse(tmp_path) -> tuple[Path, Path]:
    landing, db = tmp_path / "landing", tmp_path / "wh" / "w.duckdb"
    db.parent.mkdir()
    load(
        landing,
        db,
        {"contacts/a.csv": CONTACTS, "orders/o.jsonl": order(1, "2025-03-01T10:00:00Z")},
    )
    return landing, db


def test_the_docs_folder_is_beside_the_warehouse_unless_configured(tmp_path, monkeypatch):
    monkeypatch.delenv(DOCS_ENV, raising=False)
    assert docs_folder(tmp_path / "wh" / "w.duckdb") == tmp_path / "wh" / "quality_docs"
    monkeypatch.setenv(DOCS_ENV, str(tmp_path / "elsewhere"))
    assert docs_folder(tmp_path / "wh" / "w.duckdb") == tmp_path / "elsewhere"


def test_suites_run_one_after_another_all_stay_on_one_site(warehouse, monkeypatch):
    monkeypatch.delenv(DOCS_ENV, raising=False)
    _, db = warehouse
    first = run_suite(db, RAW_SUITES["contacts"], run_name="run-1")
    orders = run_suite(db, RAW_SUITES["orders"], run_name="run-1")
    again = run_suite(db, RAW_SUITES["contacts"], run_name="run-2")

    index = db.parent / "quality_docs" / "index.html"
    assert first.docs_error is None
    assert {r.docs.index for r in (first, orders, again)} == {index.as_uri()}
    html = index.read_text()
    assert "raw.contacts" in html and "raw.orders" in html
    # Every validation keeps its page, listed on the index: the later ones did not replace it.
    for result in (first, orders, again):
        validation = page(result.docs.validation)
        assert validation.is_file()
        assert validation.relative_to(index.parent).as_posix() in html
    assert "run-1" in first.docs.validation and "run-2" in again.docs.validation
    # The page shows the failing value (alan@example has no dot after the @) and the suite's
    # own descriptions, such as the freshness rule.
    text = page(first.docs.validation).read_text()
    assert "alan@example" in text
    assert "Freshness" in text


def test_only_the_newest_results_of_a_suite_are_kept(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(docs, "KEEP", 2)
    _, db = warehouse
    folder = tmp_path / "docs"
    runs = [run_suite(db, RAW_SUITES["contacts"], docs_dir=folder) for _ in range(3)]
    orders = run_suite(db, RAW_SUITES["orders"], docs_dir=folder)
    pages = [page(r.docs.validation) for r in (*runs, orders)]
    assert [p.is_file() for p in pages] == [False, True, True, True]
    stored = list((folder / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert len(stored) == 3
    index = (folder / "index.html").read_text()
    assert pages[0].relative_to(folder).as_posix() not in index
    assert all(p.relative_to(folder).as_posix() in index for p in pages[1:])


def test_a_docs_folder_that_cannot_be_written_does_not_change_the_verdict(warehouse, tmp_path):
    _, db = warehouse
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    result = run_suite(db, RAW_SUITES["contacts"], docs_dir=blocked)
    assert result.docs is None and result.docs_error
    assert [o.column for o in result.failed] == ["email_normalized"]  # as without docs


def test_the_dagster_check_links_to_the_index_and_to_its_validation(warehouse, monkeypatch):
    landing, db = warehouse
    docs = db.parent / "docs"
    monkeypatch.setenv(DOCS_ENV, str(docs))
    assets = [build_raw_asset(SOURCES[name]) for name in ("contacts", "orders")]
    checks = [
        build_suite_check(raw_asset_key(SOURCES[name]), RAW_SUITES[name])
        for name in ("contacts", "orders")
    ]
    result = materialize(
        [*assets, *checks],
        resources={"warehouse": Warehouse(path=str(db)), "landing": Landing(path=str(landing))},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    evaluations = {
        e.asset_key.path[-1]: e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "great_expectations"
    }
    assert sorted(evaluations) == ["contacts", "orders"]
    assert evaluations["contacts"].severity == AssetCheckSeverity.WARN  # the email warning
    for name, evaluation in evaluations.items():
        metadata = evaluation.metadata
        assert page(metadata["data_docs"].url) == docs / "index.html"
        validation = page(metadata["data_docs_validation"].url)
        assert validation.is_file()
        assert result.run_id in validation.as_posix()  # grouped under the Dagster run
        assert f"raw.{SOURCES[name].table}" in (docs / "index.html").read_text()
