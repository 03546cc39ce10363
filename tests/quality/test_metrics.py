"""Distribution shifts of customer_360 against the previous run: each check remembers its metric
values in the warehouse, and the next one warns when they moved further than the bound."""

import shutil
from pathlib import Path

import duckdb
import pytest

from quality.runner import run_suite
from quality.suites import (
    CRITICAL,
    MAX_SHIFT,
    MAX_SHIFT_ENV,
    STAGE_SUITES,
    WARNING,
    _customer_360_suite,
    max_shift,
)

SUITE = STAGE_SUITES["marts.customer_360"]


@pytest.fixture
def copy(pipeline, tmp_path) -> Path:
    target = tmp_path / "copy.duckdb"
    shutil.copy(pipeline["warehouse"], target)
    return target


def check(warehouse: Path, run: str, suite=SUITE):
    """The suite as the pipeline's check runs it; returns the result and the shifted metrics."""
    result = run_suite(warehouse, suite, run_name=run, remember_metrics=True)
    shifted = {
        o.description.split(" moved")[0]: o
        for o in result.failed
        if "shifted distribution" in (o.description or "")
    }
    return result, shifted


def change(warehouse: Path, sql: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql)


def test_a_shift_warns_once_and_a_blocked_run_is_no_baseline(copy):
    # The pipeline's runs left their values; nothing changed since.
    result, shifted = check(copy, "same")
    assert not result.failed and set(result.metrics) == set(MAX_SHIFT)
    share = result.metrics["anonymous_share"]

    # A tenth of the profiles lose their identity (identify calls stopped arriving).
    change(
        copy,
        "UPDATE marts.customer_360 SET is_known = false WHERE customer_id IN ("
        " SELECT customer_id FROM marts.customer_360 WHERE is_known"
        " ORDER BY customer_id LIMIT (SELECT count(*) // 10 FROM marts.customer_360))",
    )
    result, shifted = check(copy, "fewer known")
    [anonymous] = shifted.values()
    assert (anonymous.severity, result.blocking) == (WARNING, False)
    [example] = anonymous.examples
    assert example["previous"] == pytest.approx(share)
    assert example["current"] == pytest.approx(share + 0.1, abs=0.001)
    assert example["previous_run"] == "same"
    # That run went on: its values are the baseline, so the same data does not warn again.
    assert check(copy, "again")[1] == {}

    # Every customer's revenue doubled: the average order value shifts, and revenue no longer
    # adds up to staging, which blocks.
    change(copy, "UPDATE marts.customer_360 SET net_revenue_reporting = 2 * net_revenue_reporting")
    result, shifted = check(copy, "doubled")
    assert result.blocking
    assert {o.severity for o in result.failed} == {CRITICAL, WARNING}
    assert list(shifted) == ["The average order value (net revenue per order not cancelled"
                             ", reporting currency)"]  # fmt: skip
    # The blocked run's values are kept but not compared with: once fixed, the data is judged
    # against the last run that went on.
    change(copy, "UPDATE marts.customer_360 SET net_revenue_reporting = net_revenue_reporting / 2")
    result, shifted = check(copy, "fixed")
    assert not result.failed
    with duckdb.connect(str(copy), read_only=True) as con:
        runs = con.execute(
            "SELECT run_name, accepted FROM audit.quality_metrics "
            "WHERE metric = 'average_order_value' ORDER BY measured_at"
        ).fetchall()
    assert runs[-5:] == [
        ("same", True),
        ("fewer known", True),
        ("again", True),
        ("doubled", False),
        ("fixed", True),
    ]


def test_the_bounds_are_settings(copy, monkeypatch):
    assert max_shift("") == MAX_SHIFT
    assert max_shift("average_order_value=0.5")["average_order_value"] == 0.5
    with pytest.raises(ValueError, match="unknown metric 'aov'.*anonymous_share"):
        max_shift("aov=0.5")
    with pytest.raises(ValueError, match="no metric named by '0.5'"):
        max_shift("0.5")
    with pytest.raises(ValueError, match="'-1' .* not a positive number"):
        max_shift("anonymous_share=-1")

    check(copy, "before")
    change(
        copy, "UPDATE marts.customer_360 SET net_revenue_reporting = 1.1 * net_revenue_reporting"
    )
    monkeypatch.setenv(MAX_SHIFT_ENV, "average_order_value=0.05")
    _, shifted = check(copy, "tighter", suite=_customer_360_suite())
    [value] = shifted.values()
    assert "moved by at most 5% from the previous run's value" in value.description


def test_a_warehouse_without_earlier_values_has_nothing_to_compare_with(copy):
    change(copy, "DROP TABLE audit.quality_metrics")
    # A look from outside (a benchmark, a person) does not write the warehouse.
    result = run_suite(copy, SUITE)
    assert not result.failed and set(result.metrics) == set(MAX_SHIFT)
    assert len(result.outcomes) == len(SUITE.expectations) - len(SUITE.metrics)
    # The pipeline's check creates the table and starts the history.
    result, shifted = check(copy, "first")
    assert not result.failed and len(result.outcomes) == len(SUITE.expectations)
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit.quality_metrics").fetchone() == (2,)
