"""Publishing benchmark, run by the build benchmark (`make bench`, bench/build_bench.py) on the
warehouse it has just built, so no second full build is needed.

  1. ``publish`` as the pipeline runs it (pseudonymised, the default), timed in its own process,
     after the full build and again after the one-new-day build: its share of the pipeline
     (ingestion + dbt build + quality suites + publish; target: under 10% at 1M people);
  2. the same marts published with both schemas (``CRM360_PUBLISH_PII=both``);
  3. the ten example queries (examples/queries/*.sql), each opened read-only as analysts do:
     the first run and the median of BENCH_QUERY_REPEATS (5) more, on the default copy
     (schema marts: pseudonymised tables), on the both-schemas copy's marts (pseudonymised
     tables, and views onto marts_identified for marts without identifiers) and on its
     marts_identified (raw values): what pseudonymising costs the queries (target: under 20%);
  4. ``dbt docs generate`` as the marts step runs it (orchestration.transform.write_dbt_docs).
Results go into bench/results/build-<people>.json under "publish".
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path

from bench.landing import ROOT, run_python

QUERIES = ROOT / "examples" / "queries"
REPEATS = int(os.environ.get("BENCH_QUERY_REPEATS", "5"))

PUBLISH = """
import json, resource, sys, time
from pathlib import Path
import duckdb
from orchestration.publish import manifest_pii, publish
warehouse, target, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with duckdb.connect(str(warehouse), read_only=True) as conn:
    tables = [t for (t,) in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1").fetchall()]
overrides = manifest_pii()  # read before the clock starts: the pipeline has it loaded already
t = time.perf_counter()
result = publish(warehouse, target, tables, mode=mode, key=b"bench key", key_source="bench",
                 pii_overrides=overrides)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": round(seconds, 2), "tables": len(tables),
                  "rows": sum(result.rows.values()),
                  "file_mb": round(target.stat().st_size / 1e6, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""

QUERY = """
import json, re, statistics, sys, time
from pathlib import Path
from orchestration.publish import open_published
queries, repeats = sorted(Path(sys.argv[1]).glob("*.sql")), int(sys.argv[2])
sets = json.loads(sys.argv[3])  # name -> [published file, schema]
conns = {name: open_published(Path(path)) for name, (path, _) in sets.items()}
out = {}
for query in queries:
    sql = {name: re.sub(r"\\bmarts\\.", schema + ".", query.read_text())
           for name, (_, schema) in sets.items()}
    times = {name: [] for name in sets}
    rows = {}
    for i in range(repeats + 1):  # the sets take turns, so background load hits them alike
        for name, conn in conns.items():
            t = time.perf_counter()
            rows[name] = len(conn.sql(sql[name]).fetchall())
            times[name].append(time.perf_counter() - t)
    out[query.stem] = {name: {"first": round(ts[0], 4),
                              "median": round(statistics.median(ts[1:]), 4),
                              "rows": rows[name]} for name, ts in times.items()}
print(json.dumps(out))
"""

DOCS = """
import json, os, sys, time
from pathlib import Path
os.environ["CRM360_WAREHOUSE"] = sys.argv[1]  # dbt's profile reads it
from dagster_dbt import DbtCliResource
from orchestration.resources import dbt_executable
from orchestration.transform import DBT_PROJECT_DIR, write_dbt_docs
dbt = DbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                     dbt_executable=dbt_executable())
t = time.perf_counter()
write_dbt_docs(dbt, Path(sys.argv[2]), Path(sys.argv[3]), "")
print(json.dumps({"seconds": round(time.perf_counter() - t, 2)}))
"""


def publish_once(warehouse: Path, target: Path, mode: str = "pseudonymised") -> dict:
    """``publish`` of every mart of ``warehouse`` to ``target``, in its own process."""
    return run_python(PUBLISH, str(warehouse), str(target), mode)


def dbt_docs(warehouse: Path, target_path: Path, folder: Path) -> dict:
    """The marts step's `dbt docs generate`, on the build that left ``target_path``."""
    return run_python(DOCS, str(warehouse), str(target_path), str(folder))


def query_latency(sets: dict[str, tuple[Path, str]], repeats: int = REPEATS) -> dict:
    """Each example query on each set (name -> published file and schema): first and median
    seconds, and rows returned."""
    encoded = json.dumps({name: [str(path), schema] for name, (path, schema) in sets.items()})
    return run_python(QUERY, str(QUERIES), str(repeats), encoded)


def after_full_build(warehouse: Path, work: Path, target_path: Path) -> dict:
    """Everything but the shares, on the warehouse the full build left."""
    default = publish_once(warehouse, work / "published" / "published.duckdb")
    both = publish_once(warehouse, work / "published_both" / "published.duckdb", "both")
    queries = query_latency(
        {
            "pseudonymised": (work / "published" / "published.duckdb", "marts"),
            "both_marts": (work / "published_both" / "published.duckdb", "marts"),
            "identified": (work / "published_both" / "published.duckdb", "marts_identified"),
        }
    )
    # 18 GB at 1M people: gone before the one-day build needs the disk (that build once failed
    # with "No space left on device" while this copy was still there)
    shutil.rmtree(work / "published_both", ignore_errors=True)
    docs = dbt_docs(warehouse, target_path, work / "dbt_docs")
    return {"publish": default, "publish_both": both, "queries": queries, "dbt_docs": docs}


def summary(published: dict, pipeline_full: float, pipeline_day: float) -> dict:
    """Shares of the pipeline and what pseudonymising costs the example queries.

    ``pipeline_full`` / ``pipeline_day``: seconds of the full and one-new-day runs without
    publish (ingestion, dbt build, and the quality suites where they were timed)."""
    full, day = published["publish"]["seconds"], published["publish_one_day"]["seconds"]
    medians = {
        name: sum(q[name]["median"] for q in published["queries"].values())
        for name in ("pseudonymised", "both_marts", "identified")
    }
    per_query = {
        stem: round(q["both_marts"]["median"] / q["identified"]["median"] - 1, 3)
        for stem, q in published["queries"].items()
    }
    return {
        "publish_seconds": full,
        "publish_share_full_run": round(full / (pipeline_full + full), 3),
        "publish_share_one_day_run": round(day / (pipeline_day + day), 3),
        "queries_median_seconds_sum": {k: round(v, 3) for k, v in medians.items()},
        "median_of_query_medians": {
            name: round(
                statistics.median(q[name]["median"] for q in published["queries"].values()), 4
            )
            for name in medians
        },
        "pseudonymised_cost": round(medians["both_marts"] / medians["identified"] - 1, 3),
        "pseudonymised_only_copy_cost": round(
            medians["pseudonymised"] / medians["identified"] - 1, 3
        ),
        "pseudonymised_cost_per_query": per_query,
        "dbt_docs_seconds": published["dbt_docs"]["seconds"],
    }


def show(r: dict) -> None:
    p = r["publish"]
    s = p["summary"]
    print(
        f"publish: {s['publish_seconds']} s ({p['publish']['rows']:,} rows, "
        f"{p['publish']['file_mb']} MB, peak RSS {p['publish']['peak_rss_mb']} MB) = "
        f"{s['publish_share_full_run']:.1%} of the full run, "
        f"{s['publish_share_one_day_run']:.1%} of a one-new-day run (target < 10%); "
        f"both schemas {p['publish_both']['seconds']} s; dbt docs {s['dbt_docs_seconds']} s"
    )
    m = s["median_of_query_medians"]
    print(
        f"example queries, median of the ten medians: pseudonymised {m['pseudonymised'] * 1000:.1f}"
        f" ms, both-schemas marts {m['both_marts'] * 1000:.1f} ms, identified "
        f"{m['identified'] * 1000:.1f} ms; pseudonymised views cost "
        f"{s['pseudonymised_cost']:+.1%} over the ten (target < 20%), the pseudonymised-only "
        f"copy {s['pseudonymised_only_copy_cost']:+.1%}"
    )
    for stem, q in p["queries"].items():
        print(
            f"  {stem}: "
            + ", ".join(f"{name} {v['median'] * 1000:.1f} ms" for name, v in q.items())
            + f" ({q['identified']['rows']} rows)"
        )
