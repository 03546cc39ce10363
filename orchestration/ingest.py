"""Ingestion assets: one per landing source, each guarded by a blocking row-accounting check."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from ingestion.loader import load_source
from ingestion.sources import SOURCES, Source
from ingestion.warehouse import ensure_schema
from orchestration.resources import Landing, Warehouse
from quality.accounting import account_source

WAREHOUSE_POOL = "duckdb_warehouse"
LOAD_STARTED_AT = "load_started_at"
"""Materialisation metadata: when the load began (UTC), so checks can judge this load's files."""


def raw_asset_key(source: Source) -> AssetKey:
    return AssetKey(["raw", source.table])


def _markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def build_raw_asset(source: Source) -> AssetsDefinition:
    @asset(
        key=raw_asset_key(source),
        name=None,
        group_name="ingestion",
        kinds={"duckdb", "python"},
        pool=WAREHOUSE_POOL,
        description=(
            f"Every record of the `{source.name}/` landing folder, loaded exactly once with "
            f"lineage (file, line, checksum, load time). Contract breaches go to "
            f"audit.quarantine; rows repeating {source.key_description} are counted as "
            f"duplicates in audit.loaded_files."
        ),
    )
    def _raw(
        context: AssetExecutionContext, warehouse: Warehouse, landing: Landing
    ) -> MaterializeResult:
        started_at = datetime.now(UTC).replace(tzinfo=None)
        with warehouse.connect() as conn:
            results = load_source(conn, source, landing.folder)
            total_rows = conn.execute(f"SELECT count(*) FROM {source.raw_table}").fetchone()[0]
        for r in results:
            if r.status != "loaded":
                context.log.warning(f"{r.file_name}: {r.status} {r.error or r.duplicate_of}")
        files = [r.__dict__ for r in results]
        return MaterializeResult(
            metadata={
                LOAD_STARTED_AT: started_at.isoformat(),
                "new_files": len(results),
                "rows_loaded": sum(r.rows_loaded for r in results),
                "rows_quarantined": sum(r.rows_quarantined for r in results),
                "rows_duplicate": sum(r.rows_duplicate for r in results),
                "table_rows": total_rows,
                "files": MetadataValue.md(
                    _markdown_table(
                        files[:200],
                        [
                            "file_name",
                            "status",
                            "rows_in_file",
                            "rows_loaded",
                            "rows_quarantined",
                            "rows_duplicate",
                            "seconds",
                        ],
                    )
                    if files
                    else "no new files"
                ),
            }
        )

    return _raw


def build_accounting_check(source: Source) -> AssetChecksDefinition:
    @asset_check(
        asset=raw_asset_key(source),
        name="rows_accounted_for",
        blocking=True,
        description=(
            "Every row of every file is loaded, quarantined or a duplicate, and the recorded "
            "counts match the rows in the raw table and in audit.quarantine."
        ),
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        with warehouse.connect(read_only=False) as conn:
            ensure_schema(conn)
            result = account_source(conn, source)
        return AssetCheckResult(
            passed=result.passed,
            severity=AssetCheckSeverity.ERROR,
            description=None
            if result.passed
            else "; ".join(f"{p['file_name']}: {p['problem']}" for p in result.problems[:3]),
            metadata={
                "files": result.files,
                "rows_in_files": result.rows_in_files,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "rows_duplicate": result.rows_duplicate,
                "failing_files": MetadataValue.md(
                    _markdown_table(result.problems, list(result.problems[0]))
                    if result.problems
                    else "none"
                ),
            },
        )

    return _check


raw_assets = [build_raw_asset(s) for s in SOURCES.values()]
raw_checks = [build_accounting_check(s) for s in SOURCES.values()]
