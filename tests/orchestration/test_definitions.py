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
    for name, stage in (
        ("identity_map", "identity"),
        ("customer_identifiers", "identity"),
        ("customer_id_history", "identity"),
        ("customer_touchpoints", "marts"),
        ("customer_360", "marts"),
    ):
        key = AssetKey(["marts", name])
        assert key in set(graph.get_all_asset_keys()), name
        assert graph.get(key).group_name == stage
        checks = [c.name for c in graph.asset_check_keys if c.asset_key == key]
        # identity_map: identity_every_record_once is its uniqueness test (each record once)
        unique = ("unique_", "identity_every_record_once")
        assert any(c.startswith(unique) for c in checks), (name, checks)
    matching = AssetKey(["intermediate", "int_record_matches_scored"])
    assert graph.get(matching).group_name == "identity"


def test_every_asset_writing_the_warehouse_has_a_blocking_check():
    """Nothing reaches the warehouse unguarded: each materialisable asset (raw tables, dbt
    models, seeds) has at least one check whose ERROR failure stops what is downstream."""
    graph = defs.resolve_asset_graph()
    unguarded = []
    for key in graph.materializable_asset_keys:
        checks = [c for c in graph.asset_check_keys if c.asset_key == key]
        if not any(graph.get_check_spec(c).blocking for c in checks):
            unguarded.append(key.to_user_string())
    assert not unguarded, f"assets without a blocking check: {unguarded}"


def test_dbt_runs_in_stages_that_hold_every_model_once_and_read_only_earlier_stages():
    import json

    from orchestration.transform import STAGES, dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    nodes = {
        AssetKey([n["schema"], n["name"]])
        for n in manifest["nodes"].values()
        if n["resource_type"] in ("model", "seed")
    }
    graph = defs.resolve_asset_graph()
    stages = {
        a.op.name.removeprefix("dbt_"): set(a.keys)
        for a in graph.assets_defs
        if a.op.name.startswith("dbt_")
    }
    assert sorted(stages) == sorted(STAGES)
    assert set().union(*stages.values()) == nodes
    assert sum(len(keys) for keys in stages.values()) == len(nodes)  # each in one stage
    for position, stage in enumerate(STAGES):
        later = set().union(*(stages[s] for s in STAGES[position + 1 :]))
        for key in stages[stage]:
            assert graph.get(key).group_name == stage
            assert not (graph.get(key).parent_keys & later), (stage, key, "reads a later stage")


def test_staging_identity_and_marts_suites_guard_their_dbt_models():
    from quality.suites import STAGE_SUITES

    graph = defs.resolve_asset_graph()
    for name in STAGE_SUITES:
        key = AssetKey(name.split("."))
        check = next(
            c
            for c in graph.asset_check_keys
            if c.asset_key == key and c.name == "great_expectations"
        )
        assert graph.get_check_spec(check).blocking
    stages = {graph.get(AssetKey(n.split("."))).group_name for n in STAGE_SUITES}
    assert stages == {"staging", "identity", "marts"}
