"""The run report: the page the pipeline writes on generated data has every chart, each drawn
from data that agrees with the marts, opens offline, and shows the same charts in Dagster."""

import base64
import re
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from orchestration.report import (
    CheckOutcome,
    report_charts,
    report_problems,
    write_report,
)

CHART_KEYS = {
    "segments",
    "cohort_retention",
    "lifetime_value",
    "channels",
    "identity",
    "data_quality",
}
SECTION = re.compile(
    r'<section class="chart" id="(?P<key>\w+)" data-chart="\w+" data-rows="(?P<rows>\d+)">'
    r"(?P<body>.*?)</section>",
    re.S,
)


def _sections(page: str) -> dict[str, tuple[int, str]]:
    return {m["key"]: (int(m["rows"]), m["body"]) for m in SECTION.finditer(page)}


def _run_id(completed) -> str:
    return re.search(r"crm360: run (\S+) succeeded", completed.stdout)[1]


def test_the_run_writes_a_page_whose_every_chart_is_drawn_from_data(pipeline):
    page_path = pipeline["warehouse"].parent / "report" / "index.html"
    page = page_path.read_text(encoding="utf-8")
    run_id = _run_id(pipeline["second"])
    assert f'data-run-id="{run_id}"' in page  # written by the latest run
    sections = _sections(page)
    assert set(sections) == CHART_KEYS
    for key, (rows, body) in sections.items():
        assert rows > 0, key
        assert "<svg" in body and "</svg>" in body, key
        assert 'class="no-data"' not in body, key
    # Opens offline: nothing fetched from elsewhere.
    assert not re.search(r"<script|<link|<iframe|(src|href)=\"?https?:|url\(\s*['\"]?https?:", page)

    # The same charts are the report asset's metadata in Dagster, and its check passed.
    instance = DagsterInstance.from_config(pipeline["env"]["DAGSTER_HOME"])
    event = instance.get_latest_materialization_event(AssetKey("report"))
    assert event.run_id == run_id
    metadata = event.asset_materialization.metadata
    assert metadata["path"].value == str(page_path.resolve())
    for key, (_, body) in sections.items():
        image = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", metadata[key].value)
        svg = re.search(r"<figure>(.*)</figure>", body, re.S)[1]
        assert base64.b64decode(image[1]).decode() == svg, key
    checks = [
        r.event_log_entry.dagster_event.event_specific_data
        for r in instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=2000
        ).records
    ]
    verdict = next(c for c in checks if c.asset_key == AssetKey("report"))
    assert verdict.asset_check_key.name == "every_chart_drawn"
    assert verdict.passed, verdict.description
    # The data-quality chart counted this run's checks, the report's own excepted (later).
    quality = sections["data_quality"][1]
    assert f"{sum(c.passed for c in checks if c.asset_key.path[0] == 'marts')} passed" in quality


def test_the_charts_data_agrees_with_the_marts(long_pipeline):
    checks = [
        CheckOutcome("raw/orders", "rows_accounted_for", "passed"),
        CheckOutcome("raw/orders", "great_expectations", "warned", "a shifted volume"),
        CheckOutcome("marts/customer_360", "great_expectations", "failed", "revenue"),
    ]
    with duckdb.connect(str(long_pipeline["warehouse"]), read_only=True) as conn:
        charts = {c.key: c for c in report_charts(conn, checks)}

        def one(sql: str):
            return conn.execute(sql).fetchone()[0]

        assert set(charts) == CHART_KEYS
        assert all(c.svg and c.rows for c in charts.values())

        segments = charts["segments"].data["segments"]
        buyers = one("SELECT count(*) FROM marts.customer_segments WHERE rfm_segment IS NOT NULL")
        assert sum(s["customers"] for s in segments) == buyers
        assert sum(s["revenue_share"] for s in segments) == pytest.approx(1.0)

        cells = charts["cohort_retention"].data["cells"]
        cohorts = one("SELECT count(DISTINCT cohort_month) FROM marts.cohort_retention")
        assert cohorts >= 4  # 120 days of orders
        assert len({c["cohort"] for c in cells}) == cohorts
        assert {c["retention_rate"] for c in cells if c["month"] == 0} == {1.0}
        assert any(0 < c["retention_rate"] < 1 for c in cells if c["month"] > 0)

        bins = charts["lifetime_value"].data["bins"]
        predicted = one("SELECT count(predicted_clv) FROM marts.customer_segments")
        assert sum(b["customers"] for b in bins) == predicted > 0
        assert {b["bin"] for b in bins} <= set(range(30)) and len(bins) > 5

        channels = charts["channels"].data
        revenue = [r["first_touch"] + r["last_touch"] for r in channels["attributed_revenue"]]
        assert revenue == sorted(revenue, reverse=True) and revenue[0] > 0
        assert channels["email_rates"]
        assert all(0 <= r["click_rate"] <= r["open_rate"] <= 1 for r in channels["email_rates"])

        identity = charts["identity"].data
        assert sum(r["records"] for r in identity["records"]) == one(
            "SELECT count(*) FROM marts.identity_map"
        )
        people = identity["people"][0]
        assert people["known"] + people["anonymous"] == one(
            "SELECT count(DISTINCT customer_id) FROM marts.identity_map"
        )
        assert people["known"] > 0 and people["anonymous"] > 0
        blocked = one(
            "SELECT count(DISTINCT identifier_type || identifier_value) "
            "FROM marts.customer_identifiers WHERE is_blocked_as_link"
        )
        assert sum(p["n"] for p in identity["protection"] if "blocked" in p["item"]) == blocked

        quality = charts["data_quality"].data
        assert quality["checks"] == [
            {"stage": "raw", "passed": 1, "warned": 1, "failed": 0},
            {"stage": "marts", "passed": 0, "warned": 0, "failed": 1},
        ]
        top = conn.execute(
            "SELECT count(*) FROM audit.quarantine GROUP BY source, split_part(reason, ':', 1) "
            "ORDER BY 1 DESC LIMIT 1"
        ).fetchone()[0]
        assert quality["quarantine"][0]["rows"] == top > 0
        assert any(
            "marts/customer_360 great_expectations failed" in n
            for n in charts["data_quality"].notes
        )


def _warehouse_of_empty_marts(source: Path, target: Path) -> None:
    """``target``: the marts and audit.quarantine of ``source`` with their columns, no rows."""
    with duckdb.connect(str(target)) as conn:
        conn.execute(f"ATTACH '{source}' AS wh (READ_ONLY)")
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wh' "
            "AND (schema_name = 'marts' OR (schema_name, table_name) = ('audit', 'quarantine'))"
        ).fetchall()
        for schema in {s for s, _ in tables}:
            conn.execute(f"CREATE SCHEMA {schema}")
        for schema, table in tables:
            conn.execute(f"CREATE TABLE {schema}.{table} AS FROM wh.{schema}.{table} LIMIT 0")


def test_a_chart_without_data_says_so_in_words(long_pipeline, tmp_path):
    empty = tmp_path / "empty.duckdb"
    _warehouse_of_empty_marts(long_pipeline["warehouse"], empty)
    report = write_report(empty, tmp_path / "report", run_id="run-1")
    page = report.path.read_text(encoding="utf-8")
    sections = _sections(page)
    assert set(sections) == CHART_KEYS
    for key, (rows, body) in sections.items():
        assert rows == 0, key
        assert "<svg" not in body, key
        assert '<p class="no-data">No data: ' in body, key
    problems, without_data = report_problems(report.path, "run-1")
    assert problems == [] and set(without_data) == CHART_KEYS

    # A warehouse the pipeline has not built yet: each chart names what is missing.
    duckdb.connect(str(tmp_path / "fresh.duckdb")).close()
    fresh = write_report(tmp_path / "fresh.duckdb", tmp_path / "fresh", run_id="run-2")
    assert all("not in the warehouse yet" in c.no_data for c in fresh.charts)


def test_the_check_finds_a_broken_or_stale_page(long_pipeline, tmp_path):
    empty = tmp_path / "empty.duckdb"
    _warehouse_of_empty_marts(long_pipeline["warehouse"], empty)
    page = write_report(empty, tmp_path, run_id="run-1").path
    text = page.read_text(encoding="utf-8")
    assert report_problems(page, "run-2")[0] == [
        f"{page} is the report of run run-1, not of run run-2"
    ]
    page.write_text(
        text.replace('<p class="no-data">No data: ', "<p>", 1).replace(
            "</head>", '<script src="https://cdn.example/vega.js"></script></head>'
        ),
        encoding="utf-8",
    )
    problems = report_problems(page, "run-1")[0]
    assert problems[0] == "chart segments has no picture and does not say it has no data"
    assert problems[1].startswith("loads from elsewhere: <script src=https://cdn.example")
    page.unlink()
    assert report_problems(page, "run-1")[0] == [f"no report at {page}"]
