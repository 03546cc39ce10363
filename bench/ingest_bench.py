"""Ingestion benchmark (`make bench`): speed and memory against DuckDB's own bare readers.

For each size (BENCH_PEOPLE, default "100000 1000000"): take the first BENCH_DAYS (90) days of a
generated landing folder (bench/landing.py: made once, kept in bench/work/), then in separate
processes (so peak memory is each phase's own):
  1. crm360 ingestion of all five sources into a fresh warehouse, timed per source;
  2. DuckDB's bare read_csv / read_json of the same files into tables, in the same run.
Reports rows/s and MB/s per source, peak RSS, and the ratio ingestion time / bare read time.
BENCH_REPEAT=N alternates the two phases N times and keeps the best time of each per source.
Results go to bench/results/ingest-<people>.json and are printed as a table.
"""

import contextlib
import json
import os
import shutil
from pathlib import Path

from bench.landing import DAYS, day_view, generated, run_python, run_sizes, unreadable_files

REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))


def _best(best: dict | None, run: dict) -> dict:
    """Per source, the faster of two runs; the higher peak memory of the two."""
    if best is None:
        return run
    for name, source in run["sources"].items():
        if source["seconds"] < best["sources"][name]["seconds"]:
            best["sources"][name] = source
    best["peak_rss_mb"] = max(best["peak_rss_mb"], run["peak_rss_mb"])
    return best


INGEST = """
import json, resource, sys, time
from pathlib import Path
from ingestion.loader import load_source
from ingestion.sources import SOURCES
from ingestion.warehouse import connect
landing, db = Path(sys.argv[1]), Path(sys.argv[2])
out = {}
with connect(db) as conn:
    for name in SOURCES:
        t = time.perf_counter()
        results = load_source(conn, name, landing)
        out[name] = {
            "seconds": time.perf_counter() - t,
            "files": len(results),
            "rows": sum(r.rows_in_file for r in results),
            "loaded": sum(r.rows_loaded for r in results),
            "quarantined": sum(r.rows_quarantined for r in results),
            "duplicate": sum(r.rows_duplicate for r in results),
        }
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"sources": out, "peak_rss_mb": peak}))
"""

BARE = """
import json, resource, sys, time
import duckdb
from pathlib import Path
from ingestion.loader import landed_files
from ingestion.sources import SOURCES
landing, db, unreadable = Path(sys.argv[1]), sys.argv[2], set(json.loads(sys.argv[3]))
conn = duckdb.connect(db)
out = {}
for name, source in SOURCES.items():
    files = [str(p) for p in landed_files(landing, source)
             if p.relative_to(landing).as_posix() not in unreadable]
    if source.format == "csv":
        reader = (f"read_csv({files!r}, header=true, all_varchar=true, ignore_errors=true, "
                  "union_by_name=true)")
    else:
        reader = (f"read_json({files!r}, format='newline_delimited', ignore_errors=true, "
                  "union_by_name=true)")
    t = time.perf_counter()
    conn.execute(f"CREATE TABLE {source.table} AS SELECT * FROM {reader}")
    out[name] = {"seconds": time.perf_counter() - t,
                 "rows": conn.execute(f"SELECT count(*) FROM {source.table}").fetchone()[0]}
conn.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"sources": out, "peak_rss_mb": peak}))
"""


def folder_bytes(landing: Path, source: str) -> tuple[int, int]:
    """(bytes on disk, bytes decompressed) of a source folder."""
    import gzip

    on_disk = plain = 0
    for path in (landing / source).iterdir():
        size = path.stat().st_size
        on_disk += size
        if path.name.endswith(".gz"):
            with contextlib.suppress(OSError, EOFError):  # the deliberately broken file
                plain += len(gzip.decompress(path.read_bytes()))
        else:
            plain += size
    return on_disk, plain


def bench(people: int) -> dict:
    full, generation = generated(people)
    landing = full.parent / "ingest-view"
    shutil.rmtree(landing, ignore_errors=True)
    day_view(full, landing, DAYS)
    unreadable = unreadable_files(full)

    db = landing.parent / "bench.duckdb"
    bare_db = landing.parent / "bare.duckdb"
    ingest = bare = None
    for _ in range(REPEAT):  # alternated, best of each: less at the mercy of other load
        for f in (db, bare_db):
            f.unlink(missing_ok=True)
        ingest = _best(ingest, run_python(INGEST, str(landing), str(db)))
        bare = _best(bare, run_python(BARE, str(landing), str(bare_db), json.dumps(unreadable)))
    rows = []
    for name, ing in ingest["sources"].items():
        on_disk, plain = folder_bytes(landing, name)
        b = bare["sources"][name]
        rows.append(
            {
                "source": name,
                "files": ing["files"],
                "rows": ing["rows"],
                "loaded": ing["loaded"],
                "quarantined": ing["quarantined"],
                "duplicate": ing["duplicate"],
                "seconds": round(ing["seconds"], 2),
                "rows_per_s": round(ing["rows"] / ing["seconds"]),
                "mb_per_s": round(plain / 1e6 / ing["seconds"], 1),
                "mb_on_disk": round(on_disk / 1e6, 1),
                "mb_decompressed": round(plain / 1e6, 1),
                "bare_seconds": round(b["seconds"], 2),
                "bare_rows": b["rows"],
                "ratio_to_bare": round(ing["seconds"] / b["seconds"], 2),
            }
        )
    total = sum(r["seconds"] for r in rows)
    bare_total = sum(r["bare_seconds"] for r in rows)
    for f in (db, bare_db):
        f.unlink(missing_ok=True)
    shutil.rmtree(landing, ignore_errors=True)
    return {
        "people": people,
        "days": DAYS,
        "sources": rows,
        "ingest_seconds": round(total, 2),
        "bare_seconds": round(bare_total, 2),
        "ratio_to_bare": round(total / bare_total, 2),
        "ingest_peak_rss_mb": round(ingest["peak_rss_mb"]),
        "bare_peak_rss_mb": round(bare["peak_rss_mb"]),
        "generate_days": DAYS + 1,
        "generate_seconds": round(generation["seconds"], 1),
        "generate_peak_rss_mb": round(generation["peak_rss_mb"]),
    }


def show(result: dict) -> None:
    cols = [
        "source",
        "files",
        "rows",
        "loaded",
        "quarantined",
        "duplicate",
        "seconds",
        "rows_per_s",
        "mb_per_s",
        "bare_seconds",
        "ratio_to_bare",
    ]
    print(f"\n## Ingestion, {result['people']:,} people, {result['days']} days")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in result["sources"]:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    print(
        f"total: ingestion {result['ingest_seconds']} s vs bare read {result['bare_seconds']} s"
        f" -> ratio {result['ratio_to_bare']} (target <= 2.0); peak RSS ingestion "
        f"{result['ingest_peak_rss_mb']} MB (target < 4096), bare {result['bare_peak_rss_mb']}"
        f" MB; generation of {result['generate_days']} days {result['generate_seconds']} s, "
        f"{result['generate_peak_rss_mb']} MB"
    )


def main() -> None:
    run_sizes("ingest", bench, show)


if __name__ == "__main__":
    main()
