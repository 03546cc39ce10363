"""When the pipeline runs: a sensor for new landing files and a daily schedule."""

import hashlib

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from ingestion.loader import landed_files
from ingestion.sources import SOURCES
from ingestion.warehouse import landing_path

PIPELINE_JOB_NAME = "crm360_pipeline"

pipeline_job = define_asset_job(
    PIPELINE_JOB_NAME,
    selection=AssetSelection.all(),
    description="Every asset of crm360 in dependency order: ingestion, then what builds on it.",
)


def landing_fingerprint() -> tuple[str, int]:
    """A digest of the landing folder's files (name, size, mtime) and how many there are."""
    digest = hashlib.sha256()
    count = 0
    folder = landing_path()
    for source in SOURCES.values():
        for path in landed_files(folder, source):
            stat = path.stat()
            digest.update(
                f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
            count += 1
    return digest.hexdigest(), count


@sensor(
    job=pipeline_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts the pipeline when files are added to (or change in) the landing folder.",
)
def landing_sensor(context: SensorEvaluationContext):
    fingerprint, count = landing_fingerprint()
    if count == 0:
        return SkipReason(f"no landing files in {landing_path()}")
    if fingerprint == context.cursor:
        return SkipReason("no new landing files")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=fingerprint, tags={"crm360/trigger": "landing_sensor"})


daily_schedule = ScheduleDefinition(
    name="crm360_daily",
    job=pipeline_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs the whole pipeline every day at 02:00 UTC, new files or not.",
)
