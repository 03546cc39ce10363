"""A persistent Dagster instance for the project: DAGSTER_HOME=.dagster_home with dagster.yaml."""

import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_dagster_home(root: Path = PROJECT_ROOT) -> Path:
    """Use DAGSTER_HOME if set; else ``<root>/.dagster_home`` holding a copy of dagster.yaml."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = root / ".dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = root / "dagster.yaml"
    if config.exists():
        shutil.copyfile(config, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def project_instance() -> DagsterInstance:
    project_dagster_home()
    return DagsterInstance.get()
