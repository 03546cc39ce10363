"""Great Expectations suites as blocking Dagster asset checks, next to the assets they guard.

A failed ``critical`` expectation fails the check with ERROR severity, which stops everything
downstream of the asset; failed ``warning`` expectations fail it with WARN severity, which is
shown and lets the run go on. The check's metadata lists every expectation with its observed
value and a few failing values or rows, and links to the GX Data Docs that keep the result
(``quality.docs``; the results of one Dagster run share its run id as GX run name). A suite's
metrics (``quality.suites.Metric``) are shown too, and kept in the warehouse under the run id as
the baseline of the next run's shift expectations (``quality.metrics``).
"""

import json
from datetime import datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from ingestion.sources import SOURCES
from orchestration.ingest import LOAD_STARTED_AT, raw_asset_key
from orchestration.resources import Warehouse
from quality.runner import Outcome, SuiteResult, run_suite
from quality.suites import RAW_SUITES, STAGE_SUITES, Suite


def _cell(value: object, width: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(outcomes: list[Outcome]) -> str:
    lines = [
        "| expectation | column | severity | passed | observed | failing examples |",
        "|---|---|---|---|---|---|",
    ]
    for o in sorted(outcomes, key=lambda o: (o.success, o.severity, o.expectation)):
        observed = o.error or (o.observed if o.unexpected_count is None else o.unexpected_count)
        lines.append(
            f"| {o.expectation} | {o.column or ''} | {o.severity} | {'yes' if o.success else 'NO'}"
            f" | {_cell(observed)} | {_cell(o.examples) if o.examples else ''} |"
        )
    return "\n".join(lines)


def _docs_metadata(result: SuiteResult) -> dict[str, MetadataValue]:
    """Links to the Data Docs: the site's index and this validation's page."""
    if result.docs is None:
        return {"data_docs": MetadataValue.text(f"not built: {result.docs_error}")}
    links = {"data_docs": MetadataValue.url(result.docs.index)}
    if result.docs.validation:
        links["data_docs_validation"] = MetadataValue.url(result.docs.validation)
    return links


def _verdict(result: SuiteResult) -> AssetCheckResult:
    failed = result.failed
    summary = "; ".join(
        f"{o.severity}: {o.expectation}{f' on {o.column}' if o.column else ''}"
        f"{f' ({o.description})' if o.description else ''}"
        f"{f' ({o.error})' if o.error else ''}"
        for o in failed[:5]
    )
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if result.blocking else AssetCheckSeverity.WARN,
        description=summary or f"all {len(result.outcomes)} expectations of {result.suite} passed",
        metadata={
            "suite": result.suite,
            "expectations": len(result.outcomes),
            "failed_critical": sum(o.severity == "critical" for o in failed),
            "failed_warning": sum(o.severity == "warning" for o in failed),
            "results": MetadataValue.md(_table(result.outcomes)),
            **{
                name: MetadataValue.float(value)
                for name, value in result.metrics.items()
                if value is not None
            },
            **_docs_metadata(result),
        },
    )


def _load_started_at(context: AssetCheckExecutionContext, key: AssetKey) -> datetime | None:
    event = context.instance.get_latest_materialization_event(key)
    value = event and event.asset_materialization.metadata.get(LOAD_STARTED_AT)
    return datetime.fromisoformat(value.value) if value else None


def build_suite_check(key: AssetKey, suite: Suite) -> AssetChecksDefinition:
    @asset_check(
        asset=key,
        name="great_expectations",
        blocking=True,
        description=(
            f"Great Expectations suite {suite.name} run inside DuckDB: critical expectations "
            "block everything downstream, warnings are reported."
        ),
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        since = _load_started_at(context, key)
        result = run_suite(
            warehouse.path, suite, since=since, run_name=context.run.run_id, remember_metrics=True
        )
        return _verdict(result)

    return _check


raw_suite_checks = [
    build_suite_check(raw_asset_key(source), RAW_SUITES[name]) for name, source in SOURCES.items()
]

stage_suite_checks = [
    build_suite_check(AssetKey(name.split(".")), suite) for name, suite in STAGE_SUITES.items()
]
"""Suites of dbt models (staging, identity, marts): dbt runs one stage per step, so a failed
critical expectation stops the stages after it."""
