"""dbt models as Dagster assets (dagster-dbt): staging, intermediate and marts, after ingestion.

Asset keys and groups come from dbt metadata through one translator: key = [schema, model],
group = the model's top folder (staging, intermediate, marts). dbt tests become asset checks;
`dbt build` skips what is downstream of a failing error-severity test.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.ingest import WAREHOUSE_POOL
from orchestration.resources import ProjectVars, Warehouse

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _project_changed_since(project: DbtProject, when: float) -> bool:
    """Whether a model, macro, seed, test or project file is newer than ``when``."""
    root = Path(project.project_dir)
    files = [root / "dbt_project.yml", root / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests", "snapshots"):
        files += (p for p in (root / folder).rglob("*") if p.is_file())
    return any(p.stat().st_mtime > when for p in files if p.exists())


def _ensure_manifest(project: DbtProject) -> Path:
    """The manifest dagster-dbt builds assets from; `dbt parse` makes it on first use and
    again whenever the project changed since (a stale manifest would hide new models)."""
    manifest = project.manifest_path
    if not manifest.exists() or _project_changed_since(project, manifest.stat().st_mtime):
        from orchestration.resources import dbt_executable

        DbtCliResource(
            project_dir=str(project.project_dir),
            profiles_dir=str(project.profiles_dir),
            dbt_executable=dbt_executable(),
        ).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return manifest


class Crm360DbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        meta = dbt_resource_props.get("meta", {}).get("dagster", {})
        if meta.get("asset_key"):
            return AssetKey(meta["asset_key"])
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


@dbt_assets(
    manifest=_ensure_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=Crm360DbtTranslator(),
    pool=WAREHOUSE_POOL,
)
def crm360_dbt_models(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    project_vars: ProjectVars,
    warehouse: Warehouse,
):
    """`dbt build` of the selected models with the run's project variables as dbt vars.

    dbt runs as a subprocess: it opens the warehouse only after the ingestion steps closed it,
    and finds it through CRM360_WAREHOUSE (profiles.yml), set here to the resource's path.
    """
    os.environ["CRM360_WAREHOUSE"] = str(Path(warehouse.path).resolve())
    args = ["build"]
    if project_vars.values:
        args += ["--vars", json.dumps(project_vars.values)]
    yield from dbt.cli(args, context=context).stream()
