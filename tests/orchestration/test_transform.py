"""The dbt manifest Dagster builds its assets from follows the project's files; each dbt step
starts from its warehouse's last parse."""

import os
from types import SimpleNamespace

import pytest

from orchestration.transform import (
    PARTIAL_PARSE,
    STAGES,
    TARGET_FOLDER,
    _project_changed_since,
    stage_target,
)


def test_an_edited_model_makes_the_manifest_stale(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    model = tmp_path / "models" / "marts" / "m.sql"
    model.parent.mkdir(parents=True)
    model.write_text("select 1 as id\n")
    project = SimpleNamespace(project_dir=tmp_path)
    os.utime(model, (1_000, 1_000))
    os.utime(tmp_path / "dbt_project.yml", (1_000, 1_000))
    assert not _project_changed_since(project, when=2_000)
    os.utime(model, (3_000, 3_000))
    assert _project_changed_since(project, when=2_000)


def test_a_stage_starts_from_the_newest_parse_of_its_warehouse(tmp_path):
    warehouse = tmp_path / "crm360.duckdb"
    root = tmp_path / TARGET_FOLDER
    for stage, content, when in (("seeds", b"old", 1_000), ("staging", b"new", 2_000)):
        (root / stage).mkdir(parents=True)
        (root / stage / PARTIAL_PARSE).write_bytes(content)
        os.utime(root / stage / PARTIAL_PARSE, (when, when))
    (root / "staging" / "run_results.json").write_text("{}")  # the last run's artifacts

    target = stage_target(warehouse, "staging")

    assert target == root / "staging"
    assert sorted(p.name for p in target.iterdir()) == [PARTIAL_PARSE]
    assert (target / PARTIAL_PARSE).read_bytes() == b"new"
    assert (root / "seeds" / PARTIAL_PARSE).read_bytes() == b"old"  # other stages untouched


def test_a_new_warehouse_gets_an_empty_target(tmp_path):
    target = stage_target(tmp_path / "wh" / "crm360.duckdb", "marts")
    assert target == tmp_path / "wh" / TARGET_FOLDER / "marts"
    assert target.is_dir() and not list(target.iterdir())


@pytest.mark.slow
def test_a_second_run_parses_the_project_in_no_step(pipeline):
    """dbt re-parses the whole project when its profile (which holds the warehouse's path)
    differs from its partial parse's: each step starts from its warehouse's last parse."""
    assert pipeline["second"].returncode == 0
    targets = pipeline["warehouse"].parent / TARGET_FOLDER
    for stage in STAGES:
        log = (targets / stage / "dbt.log").read_text()
        assert "Partial parsing enabled, no changes found, skipping parsing" in log, stage
        assert "Unable to do partial parsing" not in log, stage
