"""The Dagster code location loads and holds what users and the UI rely on."""

from dagster import AssetKey

from ingestion.sources import SOURCES
from orchestration.definitions import defs


def test_one_raw_asset_per_source_with_blocking_accounting_and_suite_checks():
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    for source in SOURCES.values():
        key = AssetKey(["raw", source.table])
        assert key in keys
        checks = [c for c in graph.asset_check_keys if c.asset_key == key]
        assert sorted(c.name for c in checks) == ["great_expectations", "rows_accounted_for"]
        assert all(graph.get_check_spec(c).blocking for c in checks)


def test_every_asset_writing_the_warehouse_is_in_the_single_writer_pool():
    for assets_def in defs.resolve_asset_graph().assets_defs:
        for spec in assets_def.specs:
            assert assets_def.op.pool == "duckdb_warehouse", spec.key


def test_sensor_schedule_and_job_exist():
    assert defs.resolve_sensor_def("landing_sensor")
    schedule = defs.resolve_schedule_def("crm360_daily")
    assert schedule.cron_schedule == "0 2 * * *"
    assert defs.resolve_job_def("crm360_pipeline")


def test_identity_and_customer_marts_are_assets_with_their_dbt_tests_as_checks():
    graph = defs.resolve_asset_graph()
    for name in (
        "identity_map",
        "customer_identifiers",
        "customer_id_history",
        "customer_touchpoints",
        "customer_360",
    ):
        key = AssetKey(["marts", name])
        assert key in set(graph.get_all_asset_keys()), name
        assert graph.get(key).group_name == "marts"
        checks = [c.name for c in graph.asset_check_keys if c.asset_key == key]
        assert any(c.startswith("unique_") for c in checks), (name, checks)
    matching = AssetKey(["intermediate", "int_record_matches_scored"])
    assert graph.get(matching).group_name == "intermediate"
