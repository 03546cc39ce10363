"""Run a suite inside DuckDB with Great Expectations and say what failed, how badly and where.

The warehouse is opened read-only through ``quality.gx_duckdb``, so expectations run as SQL in
DuckDB; only metric values and a few example rows come back to Python. Each result is then kept
in the GX Data Docs of the warehouse (``quality.docs``).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import great_expectations as gx

from quality.docs import DocsPages, docs_folder, publish
from quality.gx_duckdb import URL_SCHEME
from quality.metrics import ensure_table, remember
from quality.suites import CRITICAL, METRICS_TABLE, Suite

EXAMPLES = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict."""

    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: Any
    unexpected_count: int | None
    examples: list = field(default_factory=list)
    error: str | None = None
    description: str | None = None  # the rule in words, as the suite states it


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    outcomes: list[Outcome]
    docs: DocsPages | None = None  # where the Data Docs show this result
    docs_error: str | None = None  # why they could not be built (the verdict stands)
    metrics: dict[str, float | None] = field(default_factory=dict)  # the suite's, measured now

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def blocking(self) -> bool:
        """Whether a critical expectation failed (downstream must not run)."""
        return any(o.severity == CRITICAL for o in self.failed)


def _prepared(suite: Suite, since: datetime, history: bool) -> list:
    """The suite's expectations with ``{since}`` filled in. Without ``history`` (no check has
    kept metric values in this warehouse yet), without the shift expectations: there is no
    previous run to compare with."""
    out = []
    for e in suite.expectations:
        query = getattr(e, "unexpected_rows_query", None)
        if query is not None and not history and METRICS_TABLE in query:
            continue
        if query is not None and "{since}" in query:
            e = copy.copy(e)
            e.unexpected_rows_query = query.replace("{since}", since.isoformat(sep=" "))
        out.append(e)
    return out


def _example_rows(engine: Any, suite: Suite, query: str) -> list[dict]:
    """A few rows of a failed SQL expectation (GX's SUMMARY result gives only their count)."""
    sql = query.replace("{batch}", suite.relation)
    with engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM ({sql}) LIMIT {EXAMPLES}")
        return [dict(row._mapping) for row in result]


def _has_history(engine: Any) -> bool:
    """Whether the warehouse has the table of earlier runs' metric values."""
    schema, table = METRICS_TABLE.split(".")
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT count(*) FROM duckdb_tables() "
            f"WHERE schema_name = '{schema}' AND table_name = '{table}'"
        )
        return found.scalar() > 0


def _metric_values(engine: Any, suite: Suite) -> dict[str, float | None]:
    """The value of each metric of the suite, as the table holds it now."""
    with engine.connect() as conn:
        return {
            m.name: conn.exec_driver_sql(m.sql.replace("{batch}", suite.relation)).scalar()
            for m in suite.metrics
        }


def _outcome(result: Any) -> Outcome:
    config = result.expectation_config
    kwargs = config.kwargs
    details = result.result or {}
    info = result.exception_info or {}
    error = None
    if info.get("raised_exception"):
        error = info.get("exception_message")
    else:  # several metrics: any that raised
        for value in info.values() if isinstance(info, dict) else []:
            if isinstance(value, dict) and value.get("raised_exception"):
                error = value.get("exception_message")
    examples = details.get("partial_unexpected_list") or []
    observed = details.get("observed_value")
    return Outcome(
        expectation=config.type,
        column=kwargs.get("column") or ",".join(kwargs.get("column_list", []) or []) or None,
        severity=str(getattr(config, "severity", None) or CRITICAL).split(".")[-1].lower(),
        success=bool(result.success) and error is None,
        observed=observed if observed is not None else details.get("unexpected_percent"),
        unexpected_count=details.get("unexpected_count"),
        examples=list(examples)[:EXAMPLES],
        error=error,
        description=getattr(config, "description", None),
    )


def run_suite(
    warehouse: Path,
    suite: Suite,
    since: datetime | None = None,
    docs_dir: Path | None = None,
    run_name: str | None = None,
    remember_metrics: bool = False,
) -> SuiteResult:
    """Validate ``suite`` against the warehouse file (opened read-only), then add the result to
    the Data Docs in ``docs_dir`` (default ``quality.docs.docs_folder``) under ``run_name``.

    ``remember_metrics``: keep the values of the suite's metrics in the warehouse under
    ``run_name`` (``quality.metrics``), the baseline the next run's shift expectations compare
    with. The pipeline's checks do; a look at a warehouse from outside need not write it.

    A failure to build the docs is logged and reported in the result, never raised: the docs
    describe the verdict, they must not change it."""
    if remember_metrics and suite.metrics:
        ensure_table(warehouse)
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(
        name="warehouse",
        connection_string=f"{URL_SCHEME}:///{Path(warehouse).resolve()}",
        kwargs={"connect_args": {"read_only": True, "search_path": suite.schema}},
    )
    try:
        asset = source.add_table_asset(
            name=suite.name, schema_name=suite.schema, table_name=suite.table
        )
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        history = not suite.metrics or _has_history(source.get_engine())
        expectations = _prepared(suite, since or datetime(1970, 1, 1), history)
        validation = batch.validate(
            gx.ExpectationSuite(name=suite.name, expectations=expectations),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES},
        )
        outcomes = []
        for result in validation.results:  # not in the suite's order
            outcome = _outcome(result)
            query = result.expectation_config.kwargs.get("unexpected_rows_query")
            if query is not None and not outcome.success and outcome.error is None:
                examples = _example_rows(source.get_engine(), suite, query)
                outcome = replace(outcome, examples=examples)
            outcomes.append(outcome)
        metrics = _metric_values(source.get_engine(), suite)
    finally:
        # Close every read-only connection: DuckDB lets a process hold one file under one
        # configuration only, and the pipeline writes the file next.
        if "batch" in locals():
            batch.data.execution_engine.close()
        source.get_engine().dispose()
    result = SuiteResult(suite.name, outcomes, metrics=metrics)
    if remember_metrics and suite.metrics:
        remember(warehouse, suite, metrics, run_name, accepted=not result.blocking)
    folder = docs_dir or docs_folder(warehouse)
    try:
        pages = publish(folder, suite, validation, run_name=run_name)
    except Exception as error:  # noqa: BLE001 (any GX or file system error)
        log.warning("Data Docs of %s not built in %s: %s", suite.name, folder, error)
        return replace(result, docs_error=f"{type(error).__name__}: {error}")
    return replace(result, docs=pages)
