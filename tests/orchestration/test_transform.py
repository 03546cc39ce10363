"""The dbt manifest Dagster builds its assets from follows the project's files."""

import os
from types import SimpleNamespace

from orchestration.transform import _project_changed_since


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
