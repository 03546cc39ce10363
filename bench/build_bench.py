"""dbt build benchmark (`make bench`): a full build, then a one-new-day incremental build.

For each size (BENCH_PEOPLE, default "100000 1000000"), on the first BENCH_DAYS (90) days of a
generated landing folder (bench/landing.py):
  1. ingest everything into a fresh warehouse, then `dbt build` the whole project (full build);
  2. run `dbt test` alone on the built warehouse (the wall time dbt's tests add), then every
     Great Expectations suite (raw and stages), timed;
  3. fit the CLV models alone in their own process, as marts.clv_model_params does (time and
     peak memory of the fit);
  4. publish the marts and time the example queries on the copy (bench/publish_bench.py);
  5. add the next day's files, ingest them, `dbt build` again (incremental build), and publish.
dbt runs as Dagster runs it, a `dbt build` subprocess on the warehouse file that starts from the
project's partial parse (`dbt parse` once, as the pipeline does when it loads); one build of the
whole project, where the pipeline runs one per stage (seeds, staging, identity, marts), one stage
after the other: here a model of a later stage may start beside one of an earlier stage, so the
pipeline's dbt steps can take longer than the build timed here (not measured yet). Reports wall
time per phase, the ten slowest models of each build (from dbt's run_results.json; the JSON has
every model's time), the peak memory of the dbt process tree, the ratio incremental / full
(target: under 10% at 1M people), the time quality gates add as a share of the pipeline
(target: under 15%), publish's share (target: under 10%), and the time the segment, value and
prediction marts take in the build.
Results go to bench/results/build-<people>.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bench import publish_bench
from bench.landing import DAYS, PHASE_TIMEOUT, ROOT, day_view, generated, run_python, run_sizes

PROJECT = ROOT / "dbt_project"

INGEST = """
import json, sys, time
from pathlib import Path
from ingestion.loader import load_source
from ingestion.sources import SOURCES
from ingestion.warehouse import connect
t = time.perf_counter()
with connect(Path(sys.argv[2])) as conn:
    rows = sum(r.rows_loaded for s in SOURCES for r in load_source(conn, s, Path(sys.argv[1])))
print(json.dumps({"seconds": time.perf_counter() - t, "rows_loaded": rows}))
"""


CHECKS = """
import json, sys, time
from pathlib import Path
from quality.runner import run_suite
from quality.suites import RAW_SUITES, STAGE_SUITES
out = {}
for suite in [*RAW_SUITES.values(), *STAGE_SUITES.values()]:
    t = time.perf_counter()
    result = run_suite(Path(sys.argv[1]), suite)
    out[suite.name] = {"seconds": round(time.perf_counter() - t, 2),
                       "failed": [o.expectation for o in result.failed]}
print(json.dumps(out))
"""


# The segment, value and prediction marts (issue 4), timed inside each build.
SEGMENT_MARTS = (
    "customer_segments",
    "segment_summary",
    "channel_effectiveness",
    "cohort_retention",
    "service_quality",
    "clv_model_params",
    "clv_predictions",
)

# The CLV fit as the clv_model_params dbt model runs it (its own functions, on the warehouse's
# orders), in a process of its own: the fit's time and the process's peak memory.
CLV_FIT = """
import importlib.util, json, resource, sys, time
from pathlib import Path
import duckdb
from analytics import clv
spec = importlib.util.spec_from_file_location(
    "clv_model_params", "dbt_project/models/marts/predictions/clv_model_params.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
t = time.perf_counter()
with duckdb.connect(sys.argv[1], read_only=True) as conn:
    orders = conn.table("marts.customer_touchpoints").filter("channel = 'order'")
    end = m.newest_order_date(orders)
    purchases = orders.filter(m.PURCHASE_CONDITION).project(m.PURCHASE_COLUMNS).pl()
read = time.perf_counter() - t
summary = m.purchase_summary(purchases, end, "day")
summarised = time.perf_counter() - t - read
bgnbd = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
gg = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
print(json.dumps({
    "seconds": round(time.perf_counter() - t, 2), "read_seconds": round(read, 2),
    "summary_seconds": round(summarised, 2), "purchases": purchases.height,
    "customers": summary.height, "bg_nbd_fit_seconds": round(bgnbd.fit_seconds, 2),
    "gamma_gamma_fit_seconds": round(gg.fit_seconds, 2),
    "converged": [bgnbd.converged, gg.converged],
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def _peak_rss_of_tree(proc: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
            peak[0] = max(peak[0], rss)
        except psutil.Error:
            pass
        stop.wait(0.2)


def _dbt_args(command: str, target: Path) -> list[str]:
    dbt = Path(sys.executable).with_name("dbt")
    args = [str(dbt), command, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    return args + ["--target-path", str(target), "--log-path", str(target / "logs")]


def dbt_parse(warehouse: Path, target: Path) -> Path:
    """`dbt parse` of the project for ``warehouse``, as the pipeline parses it once when it loads
    (orchestration/transform.py); returns the partial parse file it leaves. dagster-dbt copies
    that file into each build's target folder, so a build re-reads only what changed: every
    `dbt_build` here starts from it too (the profile's warehouse path is part of what dbt checks,
    hence one parse per warehouse)."""
    env = {**os.environ, "CRM360_WAREHOUSE": str(warehouse)}
    done = subprocess.run(
        [*_dbt_args("parse", target), "--quiet"], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"dbt parse failed:\n{(done.stdout + done.stderr)[-6000:]}")
    return target / "partial_parse.msgpack"


def dbt_build(
    warehouse: Path, target: Path, command: str = "build", *extra: str, parsed: Path | None = None
) -> dict:
    """`dbt build` (or another command, such as `dbt test`) of the whole project, starting from
    the partial parse ``parsed`` when given, as dagster-dbt does; wall time, peak RSS and the
    slowest models."""
    if parsed is not None:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(parsed, target / parsed.name)
    args = _dbt_args(command, target)
    args += ["--exclude-resource-type", "unit_test", *extra]  # as the pipeline runs it
    env = {**os.environ, "CRM360_WAREHOUSE": str(warehouse)}
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stop, peak = threading.Event(), [0]
    tree = psutil.Process(proc.pid)
    sampler = threading.Thread(target=_peak_rss_of_tree, args=(tree, stop, peak))
    sampler.start()
    try:
        out, _ = proc.communicate(timeout=PHASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        stop.set()
        stopped = f"dbt {command} still running after {PHASE_TIMEOUT:g} s: stopped"
        raise SystemExit(stopped) from None
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"dbt {command} failed:\n{out.decode()[-6000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    models = sorted(
        (
            {"node": r["unique_id"].split(".", 2)[-1], "seconds": round(r["execution_time"], 2)}
            for r in results
            if r["unique_id"].startswith(("model.", "seed."))
        ),
        key=lambda m: -m["seconds"],
    )
    marts = {
        r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
        for r in results
        if r["unique_id"].startswith("model.") and r["unique_id"].split(".")[-1] in SEGMENT_MARTS
    }
    checks = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    tests = sum(r["execution_time"] for r in checks)
    slowest_tests = sorted(
        (
            {"node": r["unique_id"].split(".")[2], "seconds": round(r["execution_time"], 2)}
            for r in checks
        ),
        key=lambda t: -t["seconds"],
    )[:10]
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak[0] / 2**20),
        "models_seconds": round(sum(m["seconds"] for m in models), 1),
        "tests_seconds": round(tests, 1),
        "slowest": models[:10],
        "model_seconds": {m["node"]: m["seconds"] for m in models},
        "slowest_tests": slowest_tests,
        "segment_marts_seconds": marts,
    }


DISK_GB_PER_MILLION = 75
"""Disk the build benchmark needs at 1M people, beside the generated landing folder: the
warehouse grows to about 32 GB through the two builds (22 GB before the incremental models'
lookup keys were stored uncompressed) and the full build spills up to 20 GB beside it; later a
published copy takes 11 GB and the both-schemas copy 18 GB (deleted after its queries)."""


def _require_disk(work: Path, people: int) -> None:
    """Stop at once, not an hour in, when the disk cannot hold the benchmark."""
    need = DISK_GB_PER_MILLION * people / 1e6
    free = shutil.disk_usage(work).free / 1e9
    if free < need:
        raise SystemExit(
            f"the build benchmark at {people:,} people needs about {need:.0f} GB of disk; "
            f"{work} has {free:.0f} GB free (BENCH_WORK=DIR puts the benchmark elsewhere)"
        )


def bench(people: int) -> dict:
    full, _ = generated(people)
    work = full.parent / "build"
    shutil.rmtree(work, ignore_errors=True)
    _require_disk(full.parent, people)
    landing, warehouse = work / "landing", work / "crm360.duckdb"
    day_view(full, landing, DAYS)
    ingest_full = run_python(INGEST, str(landing), str(warehouse))
    parsed = dbt_parse(warehouse, work / "target-parse")
    build_full = dbt_build(warehouse, work / "target-full", parsed=parsed)
    # dbt's tests alone, on the built warehouse: the wall time they add (inside `dbt build` they
    # share its two threads with the models, so their summed node times overstate it). Whole
    # tables, as the full build's tests read them: the scoped tests would see no new row now.
    build_full["tests_wall_seconds"] = dbt_build(
        warehouse, work / "target-test", "test", "--vars", "{tests_scope: all}", parsed=parsed
    )["seconds"]
    suites = run_python(CHECKS, str(warehouse))
    clv_fit = run_python(CLV_FIT, str(warehouse))
    published = publish_bench.after_full_build(warehouse, work, work / "target-full")
    day_view(full, landing, DAYS + 1)
    ingest_day = run_python(INGEST, str(landing), str(warehouse))
    build_day = dbt_build(warehouse, work / "target-day", parsed=parsed)
    published["publish_one_day"] = publish_bench.publish_once(
        warehouse, work / "published" / "published.duckdb"
    )
    size_gb = warehouse.stat().st_size / 1e9
    shutil.rmtree(work, ignore_errors=True)
    quality = _quality_share(ingest_full, build_full, suites)
    published["summary"] = publish_bench.summary(
        published,
        pipeline_full=quality["pipeline_seconds"],
        pipeline_day=ingest_day["seconds"] + build_day["seconds"],
    )
    return {
        "people": people,
        "days": DAYS,
        "ingest_full": ingest_full,
        "build_full": build_full,
        "ingest_one_day": ingest_day,
        "build_one_day": build_day,
        "incremental_share": round(build_day["seconds"] / build_full["seconds"], 3),
        "quality_suites": suites,
        "quality": quality,
        "segment_marts": {
            "build_full_seconds": round(sum(build_full["segment_marts_seconds"].values()), 1),
            "build_full_share": round(
                sum(build_full["segment_marts_seconds"].values()) / build_full["seconds"], 3
            ),
            "build_one_day_seconds": round(sum(build_day["segment_marts_seconds"].values()), 1),
            "clv_fit": clv_fit,
        },
        "publish": published,
        "warehouse_gb": round(size_gb, 2),
    }


def _quality_share(ingest: dict, build: dict, suites: dict) -> dict:
    """The time the quality gates add: GX suites (run after the build here, as checks between
    stages in the pipeline) and dbt's own tests (the wall time of `dbt test` on the built
    warehouse), as shares of the pipeline (ingestion, the dbt build with its tests, the suites).
    ``dbt_tests_node_seconds`` is the sum of the test nodes' times inside the build, which
    overstates their cost: the build runs two at a time, beside models."""
    gx = sum(s["seconds"] for s in suites.values())
    tests = build.get("tests_wall_seconds", build["tests_seconds"])
    pipeline = ingest["seconds"] + build["seconds"] + gx
    return {
        "gx_seconds": round(gx, 1),
        "dbt_tests_seconds": tests,
        "dbt_tests_node_seconds": build["tests_seconds"],
        "pipeline_seconds": round(pipeline, 1),
        "gx_share": round(gx / pipeline, 3),
        "all_checks_share": round((gx + tests) / pipeline, 3),
    }


def show(r: dict) -> None:
    print(f"\n## dbt build, {r['people']:,} people, {r['days']} days + 1")
    for phase in ("build_full", "build_one_day"):
        b = r[phase]
        print(
            f"{phase}: {b['seconds']} s (models {b['models_seconds']} s, tests "
            f"{b['tests_seconds']} s), peak RSS {b['peak_rss_mb']} MB; slowest: "
            + ", ".join(f"{m['node']} {m['seconds']} s" for m in b["slowest"][:6])
        )
    print(
        f"ingestion: {r['ingest_full']['seconds']:.1f} s, one more day "
        f"{r['ingest_one_day']['seconds']:.1f} s; incremental build = "
        f"{r['incremental_share']:.1%} of the full build (target < 10%); "
        f"warehouse {r['warehouse_gb']} GB"
    )
    q = r["quality"]
    print(
        f"quality gates: GX suites {q['gx_seconds']} s ({q['gx_share']:.1%} of the pipeline), "
        f"with dbt's tests ({q['dbt_tests_seconds']} s, `dbt test` alone) "
        f"{q['all_checks_share']:.1%} (target < 15%)"
    )
    if "segment_marts" in r:
        m, fit = r["segment_marts"], r["segment_marts"]["clv_fit"]
        print(
            f"segment, value and prediction marts: {m['build_full_seconds']} s of the full "
            f"build ({m['build_full_share']:.1%}), {m['build_one_day_seconds']} s of the "
            f"one-day build; per model: "
            + ", ".join(f"{k} {v} s" for k, v in r["build_full"]["segment_marts_seconds"].items())
        )
        print(
            f"CLV fit alone: {fit['seconds']} s for {fit['customers']:,} customers "
            f"({fit['purchases']:,} purchases; read {fit['read_seconds']} s, summary "
            f"{fit['summary_seconds']} s, BG/NBD {fit['bg_nbd_fit_seconds']} s, Gamma-Gamma "
            f"{fit['gamma_gamma_fit_seconds']} s), peak RSS {fit['peak_rss_mb']} MB, "
            f"converged {fit['converged']}"
        )
    if "publish" in r:
        publish_bench.show(r)


def main() -> None:
    run_sizes("build", bench, show)


if __name__ == "__main__":
    main()
