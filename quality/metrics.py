"""What each run measured: the metric values of the suites, kept in the warehouse.

A distribution shift is a change from the previous run, so the previous run's values must
outlive it. They are kept in the warehouse they describe (``audit.quality_metrics``, one row
per metric per run) rather than in the Dagster instance: they travel with the data when the
file is copied or restored, a check run outside Dagster (``quality.runner.run_suite``) sees
them, and a person can query how a metric moved over the runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingestion.warehouse import connect
from quality.suites import METRICS_TABLE, Suite

METRICS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS {METRICS_TABLE} (
  suite VARCHAR NOT NULL,           -- the guarded asset, "marts.customer_360"
  metric VARCHAR NOT NULL,          -- "anonymous_share"
  value DOUBLE,                     -- NULL when undefined (an average of no orders)
  run_name VARCHAR,                 -- the Dagster run id
  measured_at TIMESTAMP NOT NULL,   -- UTC
  accepted BOOLEAN NOT NULL         -- the suite did not block: the next run compares with it
);
"""


def ensure_table(warehouse: Path) -> None:
    """Creates the metrics table if missing: a suite's shift expectations read it."""
    with connect(Path(warehouse)) as conn:
        conn.execute(METRICS_DDL)


def remember(
    warehouse: Path,
    suite: Suite,
    values: dict[str, float | None],
    run_name: str | None,
    accepted: bool,
) -> None:
    """Adds one row per metric of ``suite``. ``accepted``: the suite did not block, so the data
    went on and these values are the baseline of the next run; the values of a blocked run are
    kept for the record and never compared with."""
    measured_at = datetime.now(UTC).replace(tzinfo=None)
    with connect(Path(warehouse)) as conn:
        conn.execute(METRICS_DDL)
        conn.executemany(
            f"INSERT INTO {METRICS_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
            [
                [suite.name, m.name, values.get(m.name), run_name, measured_at, accepted]
                for m in suite.metrics
            ],
        )
