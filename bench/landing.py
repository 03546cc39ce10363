"""Generated landing folders for the benchmarks, made once per size and reused.

One generation per size holds DAYS + 1 days. A benchmark sees a "view" of its first N days: a
folder of symbolic links to those days' files. The generator's days-prefix property (the files of
``--days N`` are exactly the first N days of ``--days N+1``) makes the 90-day view identical to a
90-day generation, and the 91st day is the "one new day" of the incremental build benchmark.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("BENCH_WORK", ROOT / "bench" / "work"))
DAYS = int(os.environ.get("BENCH_DAYS", "90"))
START = date(2025, 1, 1)
RESULTS = ROOT / "bench" / "results"

GENERATE = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from ingestion.generator import generate
t = time.perf_counter()
generate(Path(sys.argv[1]), people=int(sys.argv[2]), days=int(sys.argv[3]),
         start=date.fromisoformat(sys.argv[4]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": peak}))
"""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


PHASE_TIMEOUT = float(os.environ.get("BENCH_PHASE_TIMEOUT", "7200"))
"""Seconds a phase may take before the benchmark stops, saying which phase hung (a query that
never returns, as DuckDB 2.0.0 does on a LIMIT over a view as complex as stg_orders__orders
was, must not hang `make bench`)."""


def run_python(script: str, *args: str) -> dict:
    """Run a benchmark phase in its own process (its own peak memory); returns its JSON line."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=PHASE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        first = next((line for line in script.splitlines() if line.startswith("from ")), "")
        raise SystemExit(
            f"benchmark phase ({first.strip()} ... {' '.join(args)}) still running after "
            f"{PHASE_TIMEOUT:g} s (BENCH_PHASE_TIMEOUT): stopped"
        ) from exc
    if proc.returncode != 0:
        raise SystemExit(f"benchmark phase failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def generated(people: int) -> tuple[Path, dict]:
    """The full generation for ``people`` (DAYS + 1 days) and how long generating it took."""
    folder = WORK / f"people-{people}"
    landing = folder / "generated"
    marker = folder / "generated.json"
    inputs = {"people": people, "days": DAYS + 1, "start": START.isoformat()}
    if not marker.exists() or json.loads(marker.read_text()).get("inputs") != inputs:
        shutil.rmtree(folder, ignore_errors=True)
        landing.mkdir(parents=True)
        stats = run_python(GENERATE, str(landing), str(people), str(DAYS + 1), START.isoformat())
        marker.write_text(json.dumps({"inputs": inputs, "generate": stats}))
    return landing, json.loads(marker.read_text())["generate"]


def day_view(landing: Path, view: Path, days: int) -> Path:
    """``view`` made a folder of links to the landing files of the first ``days`` days."""
    last = START + timedelta(days=days - 1)
    view.mkdir(parents=True, exist_ok=True)
    for path in landing.glob("*/*"):
        if path.parent.name.startswith("_"):
            continue
        found = _DATE.search(path.name)
        if found is None or date.fromisoformat(found.group()) > last:
            continue
        link = view / path.parent.name / path.name
        link.parent.mkdir(exist_ok=True)
        if not link.exists():
            link.symlink_to(path.resolve())
    return view


def unreadable_files(landing: Path) -> list[str]:
    """Files the generator made unreadable on purpose (the bare readers must skip them)."""
    import csv

    files_csv = landing / "_truth" / "files.csv"
    if not files_csv.exists():
        return []
    with files_csv.open() as f:
        return [r["file_name"] for r in csv.DictReader(f) if r["unreadable"] == "true"]


def run_sizes(name: str, bench: Callable[[int], dict], show: Callable[[dict], None]) -> None:
    """Run a benchmark for each size of BENCH_PEOPLE (default "100000 1000000"), keeping each
    result in bench/results/<name>-<people>.json and printing it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    for people in [int(p) for p in os.environ.get("BENCH_PEOPLE", "100000 1000000").split()]:
        result = bench(people)
        (RESULTS / f"{name}-{people}.json").write_text(json.dumps(result, indent=2))
        show(result)
