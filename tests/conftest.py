"""Shared fixtures: one generated landing folder run through the whole pipeline, once per session.

End-to-end, identity and customer-360 tests all read the same warehouse, so the expensive part
(generate, ingest, dbt build) happens once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.pipeline import crm360

PEOPLE, DAYS, SEED = 1500, 14, 7


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test sees the environment the session started with: `crm360 run` called in-process
    (``orchestration.cli.main``) sets CRM360_WAREHOUSE and friends for the rest of its process,
    which would leak into the tests after it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _build_pipeline(root: Path) -> dict:
    """`crm360 generate` then `crm360 run` twice on the same landing folder.

    Keys: landing, warehouse (after both runs), after_first (a copy of the warehouse file as the
    first run left it), first and second (the CompletedProcess of each run), env (what the runs
    were given), root (a scratch folder of this session).
    """
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


LONG_PEOPLE, LONG_DAYS, LONG_SEED = 1000, 120, 3


def _build_long_pipeline(root: Path) -> dict:
    landing, warehouse = root / "landing", root / "crm360.duckdb"
    env = {"DAGSTER_HOME": str(root / "dagster_home")}
    (root / "dagster_home").mkdir()
    generated = crm360(
        "generate", "--out", str(landing), "--people", str(LONG_PEOPLE),
        "--days", str(LONG_DAYS), "--seed", str(LONG_SEED), env_extra=env,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    run = crm360("run", "--landing", str(landing), "--warehouse", str(warehouse), env_extra=env)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-4000:]
    return {
        "landing": landing,
        "warehouse": warehouse,
        "people": LONG_PEOPLE,
        "days": LONG_DAYS,
        "seed": LONG_SEED,
    }


BUILDERS = {"pipeline": (_build_pipeline, "e2e"), "long_pipeline": (_build_long_pipeline, "long")}


def _after_pipeline(items: list[pytest.Item]) -> dict[str, Callable[[dict, Path], object]]:
    """The runs that test modules ask for in AFTER_PIPELINE (name -> function of the session's
    `pipeline` and a scratch folder), those that a selected test uses through a fixture of the
    same name."""
    modules = {item.module for item in items if isinstance(item, pytest.Function)}
    runs = {
        name: run
        for module in sorted(modules, key=lambda module: module.__name__)
        for name, run in getattr(module, "AFTER_PIPELINE", {}).items()
    }
    return {name: run for name, run in runs.items() if any(name in i.fixturenames for i in items)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The test files that need none of the session's pipelines run first, while the pipelines
    are being built (background), instead of after the first test that waits for one.
    A file moves whole, so that its module fixtures are made once; the order is otherwise
    kept."""
    names = [*BUILDERS, *_after_pipeline(items)]
    needs_pipeline = {
        item.path for item in items if any(name in item.fixturenames for name in names)
    }
    items.sort(key=lambda item: item.path in needs_pipeline)  # stable


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory) -> Iterator[dict[str, Future]]:
    """The session's runs of the real pipeline, started at its beginning in two threads while
    the tests that need none of them run: the pipelines the selected tests need, then the runs
    that test modules make on a copy of `pipeline` (AFTER_PIPELINE), each started as soon as
    `pipeline` is built and a thread is free, not when its test comes. Each run is a chain of
    subprocesses that leaves a core idle much of the time (Dagster and dbt start-up)."""
    items = request.session.items
    later = _after_pipeline(items)
    needed = [
        name
        for name in BUILDERS
        if any(name in item.fixturenames for item in items) or (later and name == "pipeline")
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {
            name: pool.submit(BUILDERS[name][0], tmp_path_factory.mktemp(BUILDERS[name][1]))
            for name in needed
        }
        for name, run in later.items():
            runs[name] = pool.submit(_after, run, runs["pipeline"], tmp_path_factory.mktemp(name))
        yield runs


def _after(run: Callable[[dict, Path], object], pipeline: Future, root: Path) -> object:
    return run(pipeline.result(), root)


@pytest.fixture(scope="session")
def pipeline(background) -> dict:
    """`crm360 generate` then `crm360 run` twice on the same landing folder (1,500 people,
    14 days).

    Keys: landing, warehouse (after both runs), after_first (a copy of the warehouse file as the
    first run left it), first and second (the CompletedProcess of each run), env (what the runs
    were given), root (a scratch folder of this session).
    """
    return background["pipeline"].result()


@pytest.fixture(scope="session")
def long_pipeline(background) -> dict:
    """`crm360 generate` (1,000 people, 120 days) then one `crm360 run`: enough history for
    customers to stop buying (the generator's churners stop on day 10-70), which 14 days lack.
    Used by the lifecycle and CLV tests. Keys: landing, warehouse, people, days, seed."""
    return background["long_pipeline"].result()
