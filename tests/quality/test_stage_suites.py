"""Staging, identity and marts suites on the pipeline's warehouse: they pass on it, and each
fails on a copy broken the way a real defect would break it."""

import shutil
from pathlib import Path

import duckdb
import pytest

from quality.runner import run_suite
from quality.suites import CRITICAL, STAGE_SUITES, WARNING


@pytest.fixture
def copy(pipeline, tmp_path) -> Path:
    target = tmp_path / "copy.duckdb"
    shutil.copy(pipeline["warehouse"], target)
    return target


@pytest.mark.parametrize("suite", sorted(STAGE_SUITES))
def test_every_stage_suite_passes_on_the_pipeline_warehouse(pipeline, suite):
    result = run_suite(pipeline["warehouse"], STAGE_SUITES[suite])
    assert len(result.outcomes) >= 3
    assert not [o for o in result.outcomes if o.error], result.outcomes
    assert not result.failed, result.failed


def test_a_record_missing_from_the_identity_map_stops_the_identity_stage(copy):
    with duckdb.connect(str(copy)) as con:
        record = con.execute(
            "SELECT source_record_id FROM marts.identity_map WHERE source = 'orders' "
            "ORDER BY record_key LIMIT 1"
        ).fetchone()[0]
        con.execute("DELETE FROM marts.identity_map WHERE source_record_id = ?", [record])
    result = run_suite(copy, STAGE_SUITES["marts.identity_map"])
    assert result.blocking
    assert {o.severity for o in result.failed} == {CRITICAL}
    assert len(result.failed) == 2  # the record is missing; the counts no longer reconcile
    assert any(record in str(o.examples) for o in result.failed), result.failed


def test_revenue_that_does_not_add_up_and_rates_out_of_range_stop_the_marts(copy):
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "UPDATE marts.customer_360 SET net_revenue_reporting = net_revenue_reporting + 5, "
            "email_open_rate = 1.5 WHERE customer_id = (SELECT min(customer_id) "
            "FROM marts.customer_360 WHERE order_count > 0)"
        )
    result = run_suite(copy, STAGE_SUITES["marts.customer_360"])
    assert result.blocking
    assert {(o.expectation, o.column) for o in result.failed} == {
        ("expect_column_values_to_be_between", "email_open_rate"),
        ("unexpected_rows_expectation", None),
    }


def test_a_malformed_phone_or_a_fanned_out_view_stops_staging(copy):
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "UPDATE raw.calls SET customer_number_e164 = '0049 170' "
            "WHERE call_id = (SELECT min(call_id) FROM raw.calls)"
        )
        # a staging view that repeats rows (a join gone wrong)
        con.execute("CREATE TABLE staging.events_as_built AS FROM staging.stg_email__events")
        con.execute(
            "CREATE OR REPLACE VIEW staging.stg_email__events AS FROM staging.events_as_built "
            "UNION ALL (FROM staging.events_as_built LIMIT 3)"
        )
    calls = run_suite(copy, STAGE_SUITES["staging.stg_calls__calls"])
    assert calls.blocking
    assert [o.column for o in calls.failed] == ["customer_number_e164"]
    email = run_suite(copy, STAGE_SUITES["staging.stg_email__events"])
    assert email.blocking
    assert {(o.expectation, o.column) for o in email.failed} == {
        ("expect_column_values_to_be_unique", "email_event_id"),
        ("unexpected_rows_expectation", None),
    }


def test_warnings_do_not_block(copy):
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE marts.customer_360 SET days_since_last_touch = -1 WHERE is_known")
    result = run_suite(copy, STAGE_SUITES["marts.customer_360"])
    assert [(o.column, o.severity) for o in result.failed] == [("days_since_last_touch", WARNING)]
    assert not result.blocking
