"""Sample landing data for crm360, with the ground truth to test and benchmark against.

``generate()`` writes one sub-folder per source (``contacts``, ``email``, ``calls``, ``web``,
``orders``) in the formats of ``landing-contract.md``, plus ``_truth/`` which crm360 never
reads: ``records.csv.gz`` (what ingestion must do with every row), ``files.csv`` (per-file
counts, duplicate and unreadable files) and ``people.csv.gz`` (who is who).

Guarantees:

* Deterministic: the same ``(seed, people, start, days)`` gives byte-identical output,
  whatever the number of worker processes.
* Prefix-stable: the landing files of day *d* do not depend on ``days``; a longer run only
  adds later days (the truth files differ, of course).
* Streaming: people are simulated in fixed-size chunks (optionally in worker processes) and
  appended to the open day files, so memory stays flat however many people are generated.

Modules: :mod:`.pools` (names, addresses, products), :mod:`.phones` (valid unique numbers and
notations), :mod:`.people` (who exists), :mod:`.streams` (what they do, row truth),
:mod:`.writers` (deterministic gzip/plain output).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import signal
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from . import phones, pools
from .people import DAY
from .streams import (
    CALL_HEADER,
    CONTACT_HEADER,
    PEOPLE_HEADER,
    SOURCES,
    csv_line,
    person_truth,
    simulate_person,
    uuid_from,
)
from .writers import OutFile, deflate_part, gzip_bytes, landing_name

__all__ = ["GenerateSummary", "SourceSummary", "generate"]

CHUNK = 2000  # people per chunk; part of the byte-level output format, keep constant
RESEND_DAY = 3  # the orders file of this day index is landed twice (identical bytes)
PARTIAL_DAY = 9  # a truncated web gzip dated this day index (only when days >= 10)
RECORDS_HEADER = "source,file_name,row_number,source_record_id,person_id,expected,reason\n"
FILES_HEADER = "source,file_name,rows,loaded,quarantined,duplicate,duplicate_of,unreadable\n"


@dataclass
class SourceSummary:
    """Counts for one source folder (rows are data rows, headers excluded)."""

    files: int = 0
    rows: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicate: int = 0
    unreadable_files: int = 0


@dataclass
class GenerateSummary:
    """What :func:`generate` wrote and where the ground truth is."""

    out_dir: Path
    truth_dir: Path
    people: int
    seed: int
    start: date
    days: int
    sources: dict[str, SourceSummary] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        """Data rows over all landing files."""
        return sum(s.rows for s in self.sources.values())


# ------------------------------------------------------------------------------------------
# worker side

# One landing file's share of a chunk: (source index, day, variant, payload, crc32, raw length,
# data rows, truth suffixes "srid,pid,expected,reason", loaded, quarantined, duplicate)
Part = tuple[int, int, int, bytes, int, int, int, list[str], int, int, int]


def _gz_file(src: int, day: int) -> bool:
    return landing_name(SOURCES[src], date(2000, 1, 1), day).endswith(".gz")


def run_chunk(
    seed: int, lo: int, hi: int, t0: float, end: float
) -> tuple[list[Part], bytes, int, int]:
    """Simulate people ``lo..hi-1``; return their landing parts and their people.csv part."""
    by_file: dict[tuple[int, int, int], list] = {}
    people_lines = []
    for idx in range(lo, hi):
        p, rows = simulate_person(seed, idx, t0, end)
        people_lines.append(csv_line(person_truth(p)))
        for src, day, var, _tf, _seq, line, srid, pid, verdict, _key, _dup in rows:
            acc = by_file.get((src, day, var))
            if acc is None:
                acc = by_file[(src, day, var)] = [[], [], 0, 0, 0]
            acc[0].append(line)
            if not verdict:
                acc[1].append(f"{srid},{pid},loaded,\n")
                acc[2] += 1
            elif verdict[0] == "q":
                acc[1].append(f"{srid},{pid},quarantined,{verdict[2:]}\n")
                acc[3] += 1
            else:
                acc[1].append(f"{srid},{pid},duplicate,{verdict[2:]}\n")
                acc[4] += 1
    parts: list[Part] = []
    for (src, day, var), (lines, truth, nl, nq, nd) in sorted(by_file.items()):
        data = b"".join(lines)
        if _gz_file(src, day):
            parts.append(
                (
                    src,
                    day,
                    var,
                    deflate_part(data),
                    zlib.crc32(data),
                    len(data),
                    len(lines),
                    truth,
                    nl,
                    nq,
                    nd,
                )
            )
        else:
            parts.append((src, day, var, data, 0, len(data), len(lines), truth, nl, nq, nd))
    pdata = b"".join(people_lines)
    return parts, deflate_part(pdata), zlib.crc32(pdata), len(pdata)


def _run_chunk_args(args: tuple[int, int, int, float, float]):
    return run_chunk(*args)


def _worker_signals() -> None:
    """A forked worker inherits its parent's Python signal handlers: after an in-process Dagster
    run, SIGTERM raises KeyboardInterrupt where the interpreter happens to be, and Dagster may
    even have replaced it by a handler that only sets a flag. ``Pool.terminate`` (on an error)
    ends a worker at once with the defaults."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# ------------------------------------------------------------------------------------------
# parent side


class _Truth:
    """Writes landing parts in order and the matching rows of ``records.csv.gz``."""

    def __init__(self, out: Path, start: date, days: int) -> None:
        self.out, self.start, self.days = out, start, days
        truth = out / "_truth"
        self.records = OutFile(truth / "records.csv.gz", True, RECORDS_HEADER.encode())
        self.people = OutFile(
            truth / "people.csv.gz", True, (",".join(PEOPLE_HEADER) + "\n").encode()
        )
        self.files: dict[str, OutFile] = {}
        self.counts: dict[str, list[int]] = {}  # name -> [rows, loaded, quarantined, dup]
        self.resend_name = landing_name("orders", start, RESEND_DAY)
        self.resend_truth: list[str] = []

    def consume(self, parts: list[Part], ppart: tuple[bytes, int, int, int]) -> None:
        pbytes, pcrc, plen, pn = ppart
        self.people.write_part(pbytes, pcrc, plen, pn)
        buf: list[str] = []
        for src, day, _var, payload, crc, raw_len, n, truth, nl, nq, nd in parts:
            source = SOURCES[src]
            name = landing_name(source, self.start, day)
            f = self.files.get(name)
            if f is None:
                header = b""
                if source == "contacts":
                    header = (",".join(CONTACT_HEADER) + "\n").encode()
                elif source == "calls":
                    header = (",".join(CALL_HEADER) + "\n").encode()
                f = self.files[name] = OutFile(self.out / name, name.endswith(".gz"), header)
                self.counts[name] = [0, 0, 0, 0]
                f.write_raw(b"")  # creates the file and writes the header
            first = f.lines + 1
            f.write_part(payload, crc, raw_len, n)
            c = self.counts[name]
            c[0] += n
            c[1] += nl
            c[2] += nq
            c[3] += nd
            prefix = f"{source},{name},"
            buf.extend([f"{prefix}{first + i},{t}" for i, t in enumerate(truth)])
            if name == self.resend_name:
                self.resend_truth.extend(truth)
        self.records.write_raw("".join(buf).encode())

    def finish(self, seed: int) -> dict[str, tuple[str, list[int], str, bool]]:
        """Close everything; add the duplicate-bytes file and the unreadable gzip."""
        for f in self.files.values():
            f.close()
        table: dict[str, tuple[str, list[int], str, bool]] = {
            name: (name.split("/", 1)[0], c, "", False) for name, c in self.counts.items()
        }
        if self.days > RESEND_DAY and self.resend_name in self.files:
            copy = self.resend_name.replace(".jsonl", "_resend.jsonl")
            shutil.copyfile(self.out / self.resend_name, self.out / copy)
            n = len(self.resend_truth)
            lines = []
            for i, t in enumerate(self.resend_truth):
                srid, pid = t.split(",", 2)[:2]
                lines.append(f"orders,{copy},{i + 1},{srid},{pid},duplicate,duplicate_file\n")
            self.records.write_raw("".join(lines).encode())
            table[copy] = ("orders", [n, 0, 0, n], self.resend_name, False)
        if self.days > PARTIAL_DAY:
            name = landing_name("web", self.start, PARTIAL_DAY)
            name = name.split(".", 1)[0] + "-partial.jsonl.gz"
            blob = _partial_gzip(seed, self.start + timedelta(days=PARTIAL_DAY))
            (self.out / name).parent.mkdir(parents=True, exist_ok=True)
            (self.out / name).write_bytes(blob)
            table[name] = ("web", [0, 0, 0, 0], "", True)
        self.records.close()
        self.people.close()
        return table


def _partial_gzip(seed: int, day: date) -> bytes:
    """An upload cut short: a web-events gzip whose stream stops mid-way."""
    r = random.Random(seed * 31 + 9)
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    lines = []
    for i in range(400):
        ts = (base + timedelta(seconds=i * 97)).isoformat().replace("+00:00", "Z")
        lines.append(
            f'{{"type":"page","messageId":"{uuid_from(r)}","anonymousId":'
            f'"{uuid_from(r)}","timestamp":"{ts}","context":{{"page":{{"path":"/"}}}}}}\n'
        )
    blob = gzip_bytes("".join(lines).encode())
    return blob[: len(blob) * 3 // 5]


def _write_files_csv(out: Path, table: dict[str, tuple[str, list[int], str, bool]]) -> None:
    with open(out / "_truth" / "files.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write(FILES_HEADER)
        for name in sorted(table):
            source, (rows, nl, nq, nd), dup_of, unreadable = table[name]
            fh.write(
                f"{source},{name},{rows},{nl},{nq},{nd},{dup_of},"
                f"{'true' if unreadable else 'false'}\n"
            )


def generate(
    out_dir: Path,
    people: int,
    seed: int = 42,
    start: date = date(2025, 1, 1),
    days: int = 90,
    *,
    workers: int | None = None,
) -> GenerateSummary:
    """Write ``days`` days of landing files for ``people`` people into ``out_dir``.

    ``workers`` (default: up to 2, by CPU count) only changes speed, never bytes. Existing
    source folders and ``_truth`` in ``out_dir`` are replaced so that stale day files of a
    longer earlier run cannot linger. Prints nothing; returns the counts.
    """
    if people < 1 or days < 1:
        raise ValueError("people and days must be positive")
    began = time.perf_counter()
    out_dir = Path(out_dir)
    for sub in (*SOURCES, "_truth"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    (out_dir / "_truth").mkdir(parents=True, exist_ok=True)
    t0 = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
    end = t0 + days * DAY
    pools.locale_pools()  # build before forking so workers inherit them
    phones.phone_kinds()
    tasks = [(seed, lo, min(lo + CHUNK, people), t0, end) for lo in range(0, people, CHUNK)]
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    truth = _Truth(out_dir, start, days)
    if workers <= 1 or len(tasks) == 1:
        for task in tasks:
            parts, *pp = run_chunk(*task)
            truth.consume(parts, (*pp, task[2] - task[1]))
    else:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        # The workers end by close() and join(), not by the SIGTERM of Pool.__exit__: seen once
        # in the test suite, one worker had died of it and the other waited for ever on the task
        # queue's lock, and so did the parent, joining it.
        with ctx.Pool(workers, initializer=_worker_signals) as pool:
            pending: deque = deque()
            it = iter(tasks)
            for task in it:  # keep a bounded number of chunks in flight
                pending.append((task, pool.apply_async(_run_chunk_args, (task,))))
                if len(pending) >= workers * 2:
                    done_task, res = pending.popleft()
                    parts, *pp = res.get()
                    truth.consume(parts, (*pp, done_task[2] - done_task[1]))
            while pending:
                done_task, res = pending.popleft()
                parts, *pp = res.get()
                truth.consume(parts, (*pp, done_task[2] - done_task[1]))
            pool.close()
            pool.join()
    table = truth.finish(seed)
    _write_files_csv(out_dir, table)
    summary = GenerateSummary(
        out_dir,
        out_dir / "_truth",
        people,
        seed,
        start,
        days,
        {s: SourceSummary() for s in SOURCES},
    )
    for source, (rows, nl, nq, nd), _dup, unreadable in table.values():
        s = summary.sources[source]
        s.files += 1
        s.rows += rows
        s.loaded += nl
        s.quarantined += nq
        s.duplicate += nd
        s.unreadable_files += int(unreadable)
    summary.seconds = round(time.perf_counter() - began, 3)
    return summary
