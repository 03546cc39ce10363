"""Running the real `crm360` command from tests, reading the warehouse it built, and reading what
the generator says is true."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]

SESSION_ENV = dict(os.environ)
"""The environment the test session started with (this module is imported before any test
runs): what a run started in the background sees."""


def crm360(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """`crm360 ARGS` in its own process, as a user runs it. Started from a background thread
    (conftest's session runs), it gets the session's starting environment, not whatever a test
    in the main thread has set meanwhile (an in-process `crm360 run --publish` sets
    CRM360_PUBLISHED for the rest of its process, until the test ends)."""
    base = os.environ if threading.current_thread() is threading.main_thread() else SESSION_ENV
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env_extra or {})},
        cwd=REPO,
    )


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of ``sql`` on the warehouse file, opened read-only (and closed) for this query."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def scalar(warehouse: Path, sql: str, params: list | None = None):
    """The first value of the first row of ``sql``."""
    return query(warehouse, sql, params)[0][0]


def truth_records(landing: Path) -> list[dict]:
    """Every generated record: source, file_name, row_number, source_record_id, person_id,
    expected (loaded / quarantined / duplicate) and reason."""
    with gzip.open(landing / "_truth" / "records.csv.gz", "rt", newline="") as f:
        return list(csv.DictReader(f))


def truth_people(landing: Path) -> list[dict]:
    with gzip.open(landing / "_truth" / "people.csv.gz", "rt", newline="") as f:
        return list(csv.DictReader(f))


def truth_files(landing: Path) -> dict[str, dict]:
    with (landing / "_truth" / "files.csv").open(newline="") as f:
        return {r["file_name"]: r for r in csv.DictReader(f)}
