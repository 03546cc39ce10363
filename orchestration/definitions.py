"""The crm360 code location: assembles assets, checks, jobs and automation; defines nothing."""

from dagster import Definitions, in_process_executor

from orchestration.automation import daily_schedule, landing_sensor, pipeline_job
from orchestration.ingest import raw_assets, raw_checks
from orchestration.quality import raw_suite_checks
from orchestration.resources import default_resources
from orchestration.transform import crm360_dbt_models


def build_defs() -> Definitions:
    """Definitions with resources read from the environment now (see default_resources)."""
    return Definitions(
        assets=[*raw_assets, crm360_dbt_models],
        asset_checks=[*raw_checks, *raw_suite_checks],
        jobs=[pipeline_job],
        sensors=[landing_sensor],
        schedules=[daily_schedule],
        resources=default_resources(),
        # One process runs the steps one after another: one step at a time holds the DuckDB file.
        executor=in_process_executor,
    )


defs = build_defs()
