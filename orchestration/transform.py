"""dbt models as Dagster assets (dagster-dbt): staging, intermediate and marts, after ingestion,
one step per stage.

Asset keys and groups come from dbt metadata through one translator: key = [schema, model],
group = the model's stage (seeds, staging, identity, marts; see STAGES). dbt tests become asset
checks; error-severity ones are blocking. The last stage's step also writes the dbt docs
(descriptions, columns, lineage) beside the warehouse; every dbt asset links to its page there.
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, MetadataValue
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


STAGE_FOLDERS = (  # the first stage holding the model's folder wins
    ("identity", ("intermediate/matching", "intermediate/identity", "marts/identity")),
    ("staging", ("staging",)),
    ("marts", ("intermediate", "marts")),
)
STAGES = ("seeds", "staging", "identity", "marts")
"""dbt runs one stage per step, in this order, so that the blocking checks of a stage (its dbt
tests and Great Expectations suites) run before the next stage reads it: a failed check stops
everything downstream, and the tables there keep their last good data. A stage reads only the
stages before it (tests/orchestration/test_definitions.py holds it to that)."""


def stage_of(props: Mapping[str, Any]) -> str:
    """The stage of a dbt model or seed, from the folder it lives in."""
    if props["resource_type"] == "seed":
        return "seeds"
    folder = "/".join(props["fqn"][1:-1])
    for stage, prefixes in STAGE_FOLDERS:
        if any(folder == p or folder.startswith(p + "/") for p in prefixes):
            return stage
    raise ValueError(
        f"dbt model {props['name']} in models/{folder} belongs to no stage: add its folder to "
        "STAGE_FOLDERS in orchestration/transform.py"
    )


def _stage_selection(manifest: Path, stage: str) -> str:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return " ".join(
        ".".join(n["fqn"])
        for n in nodes
        if n["resource_type"] in ("model", "seed") and stage_of(n) == stage
    )


TARGET_FOLDER = "dbt_target"
PARTIAL_PARSE = "partial_parse.msgpack"


def stage_target(warehouse: Path, stage: str) -> Path:
    """The target folder of a stage's `dbt build`: ``dbt_target/<stage>/`` beside the warehouse,
    emptied, with the newest ``partial_parse.msgpack`` any stage of this warehouse left.

    dbt parses the project again from scratch when the profile differs from the one its partial
    parse was made with, and the profile holds the warehouse's path: the project's own parse
    (``_ensure_manifest``, which dagster-dbt copies into a step's target folder when it holds
    none) serves one warehouse only. A step that starts from its warehouse's last parse re-reads
    only what changed since: on a 5-row landing a step's dbt took 1.7 s from its start to
    "Found 43 models" so, 6.5 s parsing the whole project. Each stage keeps its last run's
    artifacts (dbt.log, run_results.json, manifest.json, compiled SQL) until its next run, with
    the warehouse's other outputs (like ``dbt_docs/``), not a folder per run in the project."""
    root = warehouse.parent / TARGET_FOLDER
    parsed = list(root.glob(f"*/{PARTIAL_PARSE}"))
    newest = max(parsed, key=lambda p: p.stat().st_mtime_ns, default=None)
    kept = newest.read_bytes() if newest else None
    target = root / stage
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if kept is not None:
        (target / PARTIAL_PARSE).write_bytes(kept)
    return target


DOCS_FOLDER = "dbt_docs"
DOCS_FILES = {
    "static_index.html": "index.html",
    "manifest.json": "manifest.json",
    "catalog.json": "catalog.json",
}
"""What `dbt docs generate --static` leaves in the target folder -> the name in the docs folder.
The static index holds the manifest and catalog inline, so it opens from file:// (dbt's plain
index.html fetches the JSON files, which browsers refuse from file://); the JSON files are kept
for tools that read dbt artifacts."""


def dbt_docs_dir(warehouse: str | os.PathLike | None = None) -> Path:
    """The dbt docs site: ``dbt_docs/`` beside the warehouse file (like ``quality_docs/``)."""
    from ingestion.warehouse import warehouse_path

    return warehouse_path(warehouse).resolve().parent / DOCS_FOLDER


def dbt_docs_url(unique_id: str | None = None, warehouse: str | os.PathLike | None = None) -> str:
    """file:// URL of the docs' index, or of one node's page: the docs are a single-page app
    routed by the fragment, ``#!/model/model.crm360.customer_360``."""
    index = (dbt_docs_dir(warehouse) / "index.html").as_uri()
    if unique_id is None:
        return index
    return f"{index}#!/{unique_id.split('.', 1)[0]}/{unique_id}"


def write_dbt_docs(dbt: DbtCliResource, target_path: Path, folder: Path, dbt_vars: str) -> None:
    """`dbt docs generate` after the build that left its manifest in ``target_path``, copied
    into ``folder``. ``--no-compile`` reuses that manifest instead of compiling every model
    again, so the work is dbt's start and the catalog (one information_schema query of the
    warehouse); it runs inside the step that holds the warehouse, never beside a writer. dbt
    runs as a plain subprocess: through ``DbtCliResource.cli`` it took 1.5 s longer (an
    in-process adapter and the event stream, which docs do not need). Each file is swapped in
    whole (os.replace), so a reader sees the previous docs or these."""
    profiles = dbt.profiles_dir or dbt.project_dir
    args = [dbt.dbt_executable, "docs", "generate", "--static", "--no-compile", "--quiet"]
    args += ["--project-dir", dbt.project_dir, "--profiles-dir", profiles]
    args += ["--target-path", str(target_path), "--log-path", str(target_path)]
    if dbt_vars:
        args += ["--vars", dbt_vars]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed: {(done.stdout + done.stderr)[-2000:]}")
    folder.mkdir(parents=True, exist_ok=True)
    for source, name in DOCS_FILES.items():
        aside = folder / f".{name}.tmp"
        shutil.copyfile(target_path / source, aside)
        os.replace(aside, folder / name)


class Crm360DbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        meta = dbt_resource_props.get("meta", {}).get("dagster", {})
        if meta.get("asset_key"):
            return AssetKey(meta["asset_key"])
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] in ("model", "seed"):
            return stage_of(dbt_resource_props)
        return None

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        """dagster-dbt's metadata (columns, relation) and a link to the node's dbt docs page."""
        metadata = dict(super().get_metadata(dbt_resource_props))
        if dbt_resource_props["resource_type"] in ("model", "seed"):
            metadata["dbt_docs"] = MetadataValue.url(dbt_docs_url(dbt_resource_props["unique_id"]))
        return metadata


def _stage_assets(stage: str):
    manifest = _ensure_manifest(dbt_project)

    @dbt_assets(
        manifest=manifest,
        project=dbt_project,
        select=_stage_selection(manifest, stage),
        name=f"dbt_{stage}",
        dagster_dbt_translator=Crm360DbtTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def _models(
        context: AssetExecutionContext,
        dbt: DbtCliResource,
        project_vars: ProjectVars,
        warehouse: Warehouse,
    ):
        """`dbt build` of this stage's selected models with the run's project variables.

        dbt runs as a subprocess: it opens the warehouse only after the previous step closed
        it, and finds it through CRM360_WAREHOUSE (profiles.yml), set to the resource's path.
        """
        path = Path(warehouse.path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)  # the seeds may run before ingestion
        os.environ["CRM360_WAREHOUSE"] = str(path)
        # A test runs in the step where all the models it reads exist: a relationships test of a
        # staging model to a seed runs with staging, not with the seeds. dbt's unit tests check
        # the SQL on fixed inputs, not the data: they run in `make test` (tests/dbt builds the
        # whole project with them), not again in every production run (dbt's own advice).
        args = ["build", "--indirect-selection", "buildable"]
        args += ["--exclude-resource-type", "unit_test"]
        dbt_vars = json.dumps(project_vars.values) if project_vars.values else ""
        if dbt_vars:
            args += ["--vars", dbt_vars]
        build = dbt.cli(args, context=context, target_path=stage_target(path, stage))
        yield from build.stream()
        if stage == DOCS_STAGE:
            started, folder = time.perf_counter(), path.parent / DOCS_FOLDER
            try:
                write_dbt_docs(dbt, build.target_path, folder, dbt_vars)
            except Exception as error:  # docs are reported, never fail the build
                context.log.warning(f"dbt docs not written to {folder}: {error}")
            else:
                context.log.info(
                    f"dbt docs: {(folder / 'index.html').as_uri()} "
                    f"({time.perf_counter() - started:.1f} s)"
                )

    return _models


DOCS_STAGE = STAGES[-1]
"""The step that writes the dbt docs, after its build: the last, so the catalog lists every
table as this run left it."""

dbt_stage_assets = [_stage_assets(stage) for stage in STAGES]
