"""dbt run from the tests: in its own process, on a given warehouse file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

PARSED: dict[tuple[str, tuple[str, ...]], bytes] = {}
"""The partial parse (partial_parse.msgpack) each dbt invocation left, by warehouse file name
and --vars: the next invocation with the same ones starts from it."""


def dbt_build(
    warehouse: Path,
    target_path: Path,
    *args: str,
    command: str = "build",
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """`dbt build` (or ``command``) in its own process, as Dagster runs it (dbt keeps DuckDB
    open in-process); with ``check``, a failure fails the test.

    Without dbt's unit tests (test_dbt_unit_tests runs them once): they check the SQL on fixed
    inputs, the same in every build. dbt runs in the warehouse's folder and finds the file by
    its name, so the profile (which holds the path) is the same for every warehouse of that
    name, and a build starts from the parse of the last one with the same --vars instead of
    parsing the whole project again (8.4 s -> 4.2 s for a one-test `dbt test`)."""
    if command == "build":
        args = (*args, "--exclude-resource-type", "unit_test")
    cli_vars = tuple(a for i, a in enumerate(args) if i and args[i - 1] == "--vars")
    parsed, key = target_path / "partial_parse.msgpack", (warehouse.name, cli_vars)
    if key in PARSED and not parsed.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        parsed.write_bytes(PARSED[key])
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [
            str(dbt),
            command,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(target_path.resolve()),
            "--log-path",
            str(target_path.resolve() / "logs"),
            *args,
        ],
        env={**os.environ, "CRM360_WAREHOUSE": warehouse.name},
        cwd=warehouse.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if parsed.exists():
        PARSED[key] = parsed.read_bytes()
    if check:
        assert done.returncode == 0, f"dbt failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    return done
