"""The crm360 code location: assembles assets, checks, jobs and automation; defines nothing."""

from dagster import Definitions, in_process_executor

from orchestration.automation import daily_schedule, landing_sensor, pipeline_job
from orchestration.ingest import raw_assets, raw_checks
from orchestration.publish import build_publish
from orchestration.quality import raw_suite_checks, stage_suite_checks
from orchestration.report import build_report
from orchestration.resources import default_resources
from orchestration.transform import dbt_stage_assets


def build_defs() -> Definitions:
    """Definitions with resources read from the environment now (see default_resources)."""
    upstream = [*raw_assets, *dbt_stage_assets]
    publish, publish_check = build_publish(upstream)  # last: after every mart of upstream
    report, report_check = build_report(upstream)  # charts of the marts and of this run's checks
    return Definitions(
        assets=[*upstream, publish, report],
        asset_checks=[
            *raw_checks,
            *raw_suite_checks,
            *stage_suite_checks,
            publish_check,
            report_check,
        ],
        jobs=[pipeline_job],
        sensors=[landing_sensor],
        schedules=[daily_schedule],
        resources=default_resources(),
        # One process runs the steps one after another: one step at a time holds the DuckDB file.
        executor=in_process_executor,
    )


defs = build_defs()
