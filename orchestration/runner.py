"""Run every asset of the project in-process and tell the user what happened."""

from dagster import AssetCheckSeverity, DagsterEventType, ExecuteInProcessResult

from ingestion.warehouse import landing_path, warehouse_path
from orchestration.automation import PIPELINE_JOB_NAME
from orchestration.instance import project_instance

# Dagster's console logger at INFO: step starts, failures and warnings, without the debug chatter.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _check_evaluations(result: ExecuteInProcessResult, severity: AssetCheckSeverity) -> list:
    return [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and not event.event_specific_data.passed
        and event.event_specific_data.severity == severity
    ]


def _sentence(evaluation, what: str) -> str:
    key = evaluation.asset_check_key
    detail = evaluation.description or ""
    return f"{what} {key.asset_key.to_user_string()}:{key.name} failed" + (
        f": {detail}" if detail else ""
    )


def warnings(result: ExecuteInProcessResult) -> list[str]:
    """Checks that failed with WARN severity: shown to the user, the run goes on."""
    return [_sentence(e, "check") for e in _check_evaluations(result, AssetCheckSeverity.WARN)]


def failures(result: ExecuteInProcessResult) -> list[str]:
    """Failed steps and blocking checks failed with ERROR severity, each as a sentence naming
    it and why."""
    problems = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            message = error.message.strip() if error else "unknown error"
            problems.append(f"step {event.step_key} failed: {message}")
    problems += [
        _sentence(e, "blocking check")
        for e in _check_evaluations(result, AssetCheckSeverity.ERROR)
        if e.blocking
    ]
    return problems


def summary_lines(result: ExecuteInProcessResult) -> list[str]:
    lines = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = {k: v.value for k, v in mat.metadata.items() if not hasattr(v, "md_str")}
        shown = ", ".join(f"{k}={v}" for k, v in meta.items() if isinstance(v, int | float))
        lines.append(f"  built {mat.asset_key.to_user_string()}" + (f" ({shown})" if shown else ""))
    return lines


def run_pipeline() -> int:
    """Materialise every asset of the project; 0 when everything succeeded, 1 otherwise."""
    from orchestration.definitions import build_defs

    defs = build_defs()
    instance = project_instance()
    job = defs.resolve_job_def(PIPELINE_JOB_NAME)
    print(f"crm360: landing {landing_path()} -> warehouse {warehouse_path()}")
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=RUN_CONFIG,
        tags={"crm360/trigger": "cli"},
    )
    print("\n".join(summary_lines(result)))
    for warning in warnings(result):
        print(f"  warning: {warning}")
    problems = failures(result)
    if problems or not result.success:
        print(f"crm360: run {result.run_id} FAILED", flush=True)
        for problem in problems or ["the run did not succeed"]:
            print(f"  - {problem}")
        return 1
    print(f"crm360: run {result.run_id} succeeded; warehouse at {warehouse_path()}")
    return 0
