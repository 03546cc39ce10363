"""Shared fixtures: one generated landing folder run through the whole pipeline, once per session.

End-to-end, identity and customer-360 tests all read the same warehouse, so the expensive part
(generate, ingest, dbt build) happens once.
"""

from __future__ import annotations

import shutil

import pytest

from tests.pipeline import crm360

PEOPLE, DAYS, SEED = 1500, 14, 7


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> dict:
    """`crm360 generate` then `crm360 run` twice on the same landing folder.

    Keys: landing, warehouse (after both runs), after_first (a copy of the warehouse file as the
    first run left it), first and second (the CompletedProcess of each run), env (what the runs
    were given), root (a scratch folder of this session).
    """
    root = tmp_path_factory.mktemp("e2e")
    landing, warehouse = root / "landing", root / "warehouse" / "crm360.duckdb"
    env = {"DAGSTER_HOME": str(root / "dagster_home")}
    (root / "dagster_home").mkdir()
    generated = crm360(
        "generate",
        "--out",
        str(landing),
        "--people",
        str(PEOPLE),
        "--days",
        str(DAYS),
        "--seed",
        str(SEED),
        env_extra=env,
    )
    assert generated.returncode == 0, generated.stderr
    first = crm360("run", "--landing", str(landing), "--warehouse", str(warehouse), env_extra=env)
    assert first.returncode == 0, first.stdout[-8000:] + first.stderr[-4000:]
    after_first = root / "after_first.duckdb"
    shutil.copy(warehouse, after_first)
    second = crm360("run", "--landing", str(landing), "--warehouse", str(warehouse), env_extra=env)
    return {
        "root": root,
        "landing": landing,
        "warehouse": warehouse,
        "after_first": after_first,
        "first": first,
        "second": second,
        "env": env,
        "people": PEOPLE,
        "days": DAYS,
        "seed": SEED,
    }
