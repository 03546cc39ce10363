"""The README's ten example queries (examples/queries/*.sql) answer on the published copy.

Each runs on the copy the 120-day pipeline published (tests/conftest.py long_pipeline: long
enough for customers to stop buying, so BG/NBD's p_alive is identified and every column has
values; in the 14-day one it falls back to NULL) and on a copy published with both schemas,
where the same query on marts_identified must give the same answer except in the
pseudonymised columns: pseudonyms keep joins, counts and order intact.
"""

import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey

from orchestration.definitions import defs
from orchestration.publish import IDENTIFIED_SCHEMA, PII_COLUMNS, open_published, publish

REPO = Path(__file__).resolve().parents[2]
QUERIES = sorted((REPO / "examples" / "queries").glob("*.sql"))

EXPECTED_COLUMNS = {
    "01_top_customers_by_lifetime_value": [
        "customer_id", "first_name", "last_name", "email", "country", "order_count",
        "net_revenue_reporting", "predicted_clv", "p_alive", "lifetime_value", "value_tier",
    ],
    "02_customers_at_risk": [
        "customer_id", "first_name", "email", "phone", "lifecycle_stage", "rfm_segment",
        "recency_days", "frequency_orders", "net_revenue_reporting", "p_alive",
        "is_email_reachable", "email_suppression_reason", "is_phone_reachable",
    ],
    "03_revenue_by_campaign": [
        "channel", "campaign_source", "campaign", "reach_customers", "last_touch_orders",
        "last_touch_revenue_reporting", "first_touch_orders", "first_touch_revenue_reporting",
        "last_touch_revenue_per_customer_reached", "attribution_window_days",
    ],
    "04_call_centre_waits": [
        "queue", "inbound_calls", "median_wait_seconds", "p90_wait_seconds",
        "share_waiting_over_2_min", "abandon_rate", "average_csat",
    ],
    "05_revenue_by_week": [
        "week", "orders", "buyers", "first_time_buyers", "net_revenue_reporting",
        "refunded_reporting", "cancelled_orders",
    ],
    "06_segments_and_reach": [
        "rfm_segment", "customers", "customer_share", "net_revenue_reporting", "revenue_share",
        "email_reachable_customers", "phone_reachable_customers",
    ],
    "07_cohort_retention": [
        "cohort_month", "months_since_first_order", "cohort_customers", "retained_customers",
        "retention_rate", "cumulative_revenue_per_customer", "is_complete_month",
    ],
    "08_email_campaign_engagement": [
        "campaign_name", "delivered", "opened", "clicked", "open_rate", "click_rate",
        "unsubscribed", "spam_reports", "hard_bounces",
    ],
    "09_customer_timeline": [
        "customer_id", "touchpoint_at", "channel", "event_type", "campaign_name", "url",
        "call_direction", "call_wait_seconds", "call_disposition", "order_number",
        "order_net_revenue_reporting",
    ],
    "10_records_per_person": [
        "source", "records", "customers", "records_per_customer", "customers_in_other_sources",
    ],
}  # fmt: skip

MARTS = re.compile(r"\bmarts\.")


def in_schema(sql: str, schema: str) -> str:
    """The query reading ``schema`` instead of ``marts`` (the queries name marts.<table>)."""
    return MARTS.sub(f"{schema}.", sql)


def run(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple]]:
    relation = conn.sql(sql)
    return relation.columns, relation.fetchall()


@pytest.fixture(scope="module")
def published_both(long_pipeline, tmp_path_factory) -> Path:
    """The long pipeline's marts published with both schemas, from a copy of its warehouse."""
    folder = tmp_path_factory.mktemp("example_queries")
    warehouse = folder / "crm360.duckdb"
    shutil.copy(long_pipeline["warehouse"], warehouse)
    marts = defs.resolve_asset_graph().get(AssetKey("publish")).parent_keys
    target = folder / "published.duckdb"
    publish(warehouse, target, [k.path[1] for k in marts], mode="both", key=b"example key")
    return target


def test_there_are_ten_example_queries_each_saying_what_it_answers():
    assert [q.stem for q in QUERIES] == sorted(EXPECTED_COLUMNS)
    for query in QUERIES:
        lines = query.read_text().splitlines()
        assert lines[0].startswith("-- ") and "?" in lines[0], f"{query.name}: no question"
        assert MARTS.search(query.read_text()), f"{query.name} reads no mart"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.stem)
def test_example_query_answers_on_the_pipelines_published_copy(long_pipeline, query):
    with open_published(long_pipeline["warehouse"].parent / "published.duckdb") as conn:
        columns, rows = run(conn, query.read_text())
    assert columns == EXPECTED_COLUMNS[query.stem]
    assert rows, f"{query.name} returns no rows on the sample data"
    # every column says something somewhere: a misspelt join would leave one all NULL
    empty = [c for i, c in enumerate(columns) if all(r[i] is None for r in rows)]
    assert not empty or query.stem == "09_customer_timeline", empty


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.stem)
def test_example_query_gives_the_same_answer_on_identified_values(published_both, query):
    with open_published(published_both) as conn:
        pseudonymised = run(conn, query.read_text())
        identified = run(conn, in_schema(query.read_text(), IDENTIFIED_SCHEMA))
    assert identified[0] == pseudonymised[0] == EXPECTED_COLUMNS[query.stem]
    assert identified[1], f"{query.name} returns no rows on identified values"
    assert len(identified[1]) == len(pseudonymised[1])
    columns = pseudonymised[0]
    for i, column in enumerate(columns):
        shown = [r[i] for r in pseudonymised[1]]
        raw = [r[i] for r in identified[1]]
        if column in PII_COLUMNS:  # a pseudonym in one, the value in the other, NULL in both
            assert [v is None for v in shown] == [v is None for v in raw], column
            assert all(v is None or re.fullmatch("[0-9a-f]{64}", v) for v in shown), column
            assert shown != raw or all(v is None for v in raw), column
        else:
            assert shown == raw, column


def test_the_customer_timeline_spans_channels(published_both):
    """The timeline example picks a customer with several channels (the point of it)."""
    sql = (REPO / "examples" / "queries" / "09_customer_timeline.sql").read_text()
    with open_published(published_both) as conn:
        columns, rows = run(conn, sql)
    channels = {r[columns.index("channel")] for r in rows}
    assert len(channels) >= 2, channels
    assert len({r[0] for r in rows}) == 1  # one customer


def test_an_example_query_runs_through_crm360_sql(published_both):
    """The README's way to run one: `crm360 sql < examples/queries/NN_name.sql`."""
    query = REPO / "examples" / "queries" / "06_segments_and_reach.sql"
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "sql", "--published", str(published_both)],
        stdin=query.open(),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    with open_published(published_both) as conn:
        rows = conn.sql(query.read_text()).fetchall()
    # the table as crm360 sql prints it: the first column, the top segment and the row count
    assert "rfm_segment" in result.stdout and rows[0][0] in result.stdout
    assert f"{len(rows)} rows" in result.stdout, result.stdout


def test_revenue_answers_agree_with_each_other(published_both):
    """Weekly revenue (from touchpoints) and revenue by segment (from segment_summary) add up
    to the same total: the examples read consistent marts."""
    totals = []
    with open_published(published_both) as conn:
        for name in ("05_revenue_by_week", "06_segments_and_reach"):
            body = (REPO / "examples" / "queries" / f"{name}.sql").read_text().rstrip()
            total = f"SELECT sum(net_revenue_reporting) FROM ({body.rstrip(';')})"
            totals.append(conn.sql(total).fetchall()[0][0])
    assert totals[0] > Decimal(0)
    assert abs(totals[0] - totals[1]) <= Decimal("0.05"), totals


def test_the_readme_shows_each_query_as_it_is_in_its_file():
    readme = (REPO / "README.md").read_text()
    for query in QUERIES:
        assert query.read_text().rstrip() in readme, f"README differs from {query.name}"
        assert f"(examples/queries/{query.name})" in readme, query.name
