"""Dagster resources: where the warehouse and the landing folder are, and the project vars."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource

from ingestion.warehouse import connect


class Warehouse(ConfigurableResource):
    """The DuckDB warehouse file. Every step opens it, writes, and closes it before the next
    step starts: DuckDB takes one writing process per file, and dbt runs as a subprocess."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(Path(self.path), read_only=read_only) as conn:
            yield conn


class Landing(ConfigurableResource):
    """The landing folder operators drop export files into, one sub-folder per source."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)


class Published(ConfigurableResource):
    """The published copy of the marts that readers open (``CRM360_PUBLISHED``, default
    ``published.duckdb`` next to the warehouse), and which identifier schemas it holds
    (``CRM360_PUBLISH_PII``: pseudonymised, identified or both). The pseudonym key is read
    from the environment when publishing, never kept in resource config."""

    path: str
    pii: str = "pseudonymised"


class ProjectVars(ConfigurableResource):
    """Project variables of one run (``crm360 run --var NAME=VALUE``): dbt vars, also read by
    Python assets. Kept as JSON text so any value type survives the trip to dbt."""

    values_json: str = "{}"

    @property
    def values(self) -> dict[str, object]:
        return json.loads(self.values_json)

    def get(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)


def dbt_executable() -> str:
    """dbt from this environment (the venv need not be activated), else from PATH."""
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def default_resources() -> dict[str, ConfigurableResource]:
    """Resources from the environment (CRM360_WAREHOUSE, CRM360_LANDING_DIR, CRM360_VARS,
    CRM360_PUBLISHED, CRM360_PUBLISH_PII)."""
    import os

    from dagster_dbt import DbtCliResource

    from ingestion.warehouse import landing_path, warehouse_path
    from orchestration.publish import pii_mode, published_path
    from orchestration.transform import DBT_PROJECT_DIR

    vars_json = os.environ.get("CRM360_VARS") or "{}"

    return {
        "warehouse": Warehouse(path=str(warehouse_path())),
        "landing": Landing(path=str(landing_path())),
        "project_vars": ProjectVars(values_json=vars_json),
        "published": Published(path=str(published_path()), pii=pii_mode()),
        # dbt reads the warehouse path from CRM360_WAREHOUSE too (profiles.yml).
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
    }
