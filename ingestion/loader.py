"""Exactly-once loading of landing files into ``raw``, with every row accounted for.

For each new file of a source, in one transaction: frame it into records (NumPy), decode and
validate every record in DuckDB SQL, quarantine the rows that break the contract with a reason,
recognise rows whose key was already loaded, insert the rest into ``raw.<table>`` with lineage,
and record the file in ``audit.loaded_files``. A crash at any point rolls the whole file back,
so a rerun loads exactly what is missing. The same bytes under another name are recorded as a
duplicate file and never loaded again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from ingestion.framing import (
    CsvRecords,
    Records,
    UnreadableFileError,
    decompressed,
    frame_csv,
    frame_lines,
)
from ingestion.normalise import PHONE_CLEAN_SQL, to_e164
from ingestion.sources import LANDING_SUFFIXES, SOURCES, Source
from ingestion.warehouse import ensure_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileResult:
    source: str
    file_name: str
    status: str
    rows_in_file: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    size_bytes: int
    seconds: float
    error: str | None = None
    duplicate_of: str | None = None


def landed_files(landing_dir: Path, source: Source) -> list[Path]:
    """The source's landing files in name order (the order in which they are loaded)."""
    folder = landing_dir / source.name
    if not folder.is_dir():
        return []
    suffixes = LANDING_SUFFIXES[source.format]
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sql_list(values: list[str]) -> str:
    return ", ".join(values)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Record text (with its trailing line end, which JSON ignores); NULL for bytes that are not UTF-8.
_DECODE = "CASE WHEN utf8_ok THEN decode(raw) END"


def _struct_type(source: Source) -> str:
    parts = [f'"{key}": "{sql_type}"' for _, key, sql_type in source.fields]
    return "{" + ", ".join(parts) + "}"


class _FileLoader:
    """Loads one file's records inside the caller's open transaction.

    The whole file is one batch: a single SQL statement decodes, parses, validates and keys
    every record (``_batch``); inserts into raw and quarantine then read from it. Duplicate
    detection probes the raw table with the batch's keys (the small side builds the hash table)
    rather than loading all keys ever seen.
    """

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        source: Source,
        file_name: str,
        sha256: str,
        loaded_at: datetime,
    ) -> None:
        self.conn = conn
        self.source = source
        self.file_name = file_name
        self.sha256 = sha256
        self.loaded_at = loaded_at

    # -- structure: JSON Lines ----------------------------------------------------------------
    def _jsonl_fields_sql(self) -> str:
        """SQL over ``_records`` giving row_number, _text, the fields and a structural reason."""
        s = self.source
        picks = ", ".join(f"s.{_quote(key)} AS {_quote(col)}" for col, key, _ in s.fields)
        required_all_null = " AND ".join(f"{_quote(c)} IS NULL" for c in s.required)
        known = ", ".join(_sql_literal(key) for _, key, _ in s.fields)
        patch = "{" + ", ".join(f'"{key}": null' for _, key, _ in s.fields) + "}"
        return f"""
            SELECT row_number, _text, {", ".join(_quote(c) for c in s.columns)},
                   CASE WHEN s IS NOT NULL AND len(list_filter(json_keys(_text),
                                                               lambda k: k NOT IN ({known}))) > 0
                        THEN json_merge_patch(_text, '{patch}') END AS _extra,
                   CASE
                     WHEN _text IS NULL THEN 'row is not valid UTF-8'
                     WHEN s IS NULL AND NOT coalesce(json_valid(_text), false)
                       THEN 'line is not valid JSON'
                     WHEN s IS NULL OR ({required_all_null} AND json_type(_text) <> 'OBJECT')
                       THEN format('line is a JSON {{}}, expected an object',
                                   lower(json_type(_text)))
                   END AS _structural
            FROM (
                SELECT row_number, _text, {picks}, s
                FROM (
                    SELECT row_number, _text,
                           CASE WHEN json_valid(_text)
                                THEN json_transform(_text, '{_struct_type(s)}') END AS s
                    FROM (SELECT row_number, {_DECODE} AS _text FROM _records)
                )
            )
        """

    # -- structure: CSV -----------------------------------------------------------------------
    def _csv_fields_sql(self, records: CsvRecords) -> str:
        """Register the file's records and its Polars-parsed well-formed rows; return the SQL
        giving row_number, _text, the fields, ``_extra`` and a structural reason."""
        s = self.source
        nulls = ", ".join(f"NULL::VARCHAR AS {_quote(c)}" for c in s.columns)
        if len(records) == 0:
            return (
                f"SELECT NULL::BIGINT AS row_number, {nulls}, "
                "NULL::JSON AS _extra, NULL::VARCHAR AS _structural WHERE false"
            )
        header = [
            h.strip()
            for h in pl.read_csv(
                records.text(0).lstrip("\ufeff").encode(),
                has_header=True,
                infer_schema=False,
                n_rows=0,
            ).columns
        ]
        width = len(header)
        missing = [c for c in s.required if c not in header]
        table = Records(
            records.data, records.starts[1:], records.ends[1:], records.line_numbers[1:]
        ).to_arrow()
        table = table.append_column("field_count", pa.array(records.field_counts[1:]))
        table = table.append_column("unterminated", pa.array(records.unterminated_quote[1:]))
        self.conn.register("_records", table)
        if missing:
            structural = (
                f"format('required column {missing[0]} is missing from the header "
                f"(columns: {{}})', {_sql_literal(', '.join(header))})"
            )
        else:
            structural = f"""CASE
                 WHEN _text IS NULL THEN 'row is not valid UTF-8'
                 WHEN unterminated THEN 'row has a quoted field that is never closed'
                 WHEN field_count <> {width}
                   THEN format('row has {{}} fields; the header has {width}', field_count)
               END"""
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _structure AS
            SELECT row_number, {structural} AS _structural
            FROM (SELECT row_number, field_count, unterminated,
                         CASE WHEN utf8_ok THEN '' END AS _text FROM _records)
        """)
        good = self.conn.execute(
            "SELECT row_number FROM _structure WHERE _structural IS NULL ORDER BY row_number"
        ).fetchnumpy()["row_number"]
        parsed = self._parse_good_csv(records, header, np.asarray(good, dtype=np.int64))
        self.conn.register("_csv", parsed)
        unknown = [c for c in parsed.column_names if c not in s.columns and c != "row_number"]
        picks = ", ".join(
            f"c.{_quote(col)}" if col in parsed.column_names else f"NULL::VARCHAR AS {_quote(col)}"
            for col in s.columns
        )
        extra = (
            "json_object(" + ", ".join(f"{_sql_literal(c)}, c.{_quote(c)}" for c in unknown) + ")"
            if unknown
            else "NULL::JSON"
        )
        return f"""
            SELECT r.row_number, {picks},
                   CASE WHEN r._structural IS NULL THEN {extra} END AS _extra, r._structural
            FROM _structure r LEFT JOIN _csv c USING (row_number)
        """

    def _parse_good_csv(self, records: CsvRecords, header: list[str], good: np.ndarray) -> pa.Table:
        """Parse the well-formed records with Polars; row numbers come from the framing."""
        data = records.data
        next_start = np.append(records.starts[1:], len(data))
        if len(good) == len(records) - 1:
            buffer = data[records.starts[0] :]
        else:
            keep = np.zeros(len(data), dtype=bool)
            keep[records.starts[0] : next_start[0]] = True  # header
            for i in np.searchsorted(records.line_numbers, good):
                keep[records.starts[i] : next_start[i]] = True
            buffer = np.frombuffer(data, dtype=np.uint8)[keep].tobytes()
        if len(good) == 0:
            frame = pl.DataFrame({name: pl.Series([], dtype=pl.String) for name in header})
        else:
            frame = pl.read_csv(
                buffer,
                has_header=True,
                infer_schema=False,
                quote_char='"',
                raise_if_empty=False,
                truncate_ragged_lines=False,
                encoding="utf8",
            )
            frame.columns = [c.lstrip("\ufeff").strip() for c in frame.columns]
        if frame.height != len(good):
            raise RuntimeError(
                f"{self.file_name}: CSV framing found {len(good)} rows but Polars parsed "
                f"{frame.height}; please report this file"
            )
        return frame.with_columns(pl.Series("row_number", good)).to_arrow()

    # -- the batch: contract rules, keys, normalised forms ------------------------------------
    def _build_batch(self, fields_sql: str) -> None:
        s = self.source
        branches = [
            f"WHEN nullif(trim(CAST({_quote(c)} AS VARCHAR)), '') IS NULL "
            f"THEN 'required field {c} is missing or empty'"
            for c in s.required
        ]
        branches += [f"WHEN {bad} THEN {reason}" for bad, reason in s.rules]
        derived = "".join(f", {sql} AS {_quote(name)}" for name, _, sql in s.derived)
        phones = "".join(
            f", {PHONE_CLEAN_SQL.format(expr=p.raw)} AS _phone_clean_{i}"
            f", coalesce(upper(trim({p.region})), '') AS _phone_region_{i}"
            for i, p in enumerate(s.phones)
        )
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _batch AS
            SELECT * EXCLUDE ({"_text, " if s.format == "jsonl" else ""}_structural)
                   {derived} {phones}
            FROM (
                SELECT *, coalesce(_structural, CASE {" ".join(branches)} END) AS _reason
                FROM ({fields_sql})
            )
        """)
        for view in ("_records", "_csv"):
            self.conn.execute(f"DROP VIEW IF EXISTS {view}")

    def _normalise_phones(self) -> None:
        """Parse each distinct (number, region) never seen before, once, with phonenumbers."""
        if not self.source.phones:
            return
        distinct = " UNION ".join(
            f"SELECT _phone_clean_{i} AS cleaned, _phone_region_{i} AS region FROM _batch "
            f"WHERE _reason IS NULL AND _phone_clean_{i} IS NOT NULL"
            for i in range(len(self.source.phones))
        )
        todo = self.conn.execute(f"""
            SELECT cleaned, region FROM ({distinct})
            EXCEPT SELECT cleaned, region FROM ingest.phone_numbers
        """).fetchnumpy()
        if len(todo["cleaned"]) == 0:
            return
        e164 = [to_e164(c, r) for c, r in zip(todo["cleaned"], todo["region"], strict=True)]
        self.conn.register(
            "_phones",
            pa.table(
                {
                    "cleaned": pa.array(todo["cleaned"], pa.string()),
                    "region": pa.array(todo["region"], pa.string()),
                    "e164": pa.array(e164, pa.string()),
                }
            ),
        )
        self.conn.execute("INSERT INTO ingest.phone_numbers SELECT * FROM _phones")
        self.conn.unregister("_phones")

    def _insert_new(self) -> int:
        """Insert the valid rows whose key is new; returns how many were inserted."""
        s = self.source
        key = ", ".join(_quote(k) for k in s.key)
        same_key = " AND ".join(f"x.{_quote(k)} = b.{_quote(k)}" for k in s.key)
        # Keys of this file already in raw: the batch builds the hash table, raw only probes it.
        seen = self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _seen AS
            SELECT DISTINCT {key} FROM {s.raw_table}
            SEMI JOIN (SELECT {key} FROM _batch WHERE _reason IS NULL) USING ({key})
        """).fetchone()[0]
        # Rows repeating a key earlier in this same file: only keys that occur twice matter.
        repeats = self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _repeats AS
            SELECT {key}, min(row_number) AS first_row FROM _batch WHERE _reason IS NULL
            GROUP BY ALL HAVING count(*) > 1
        """).fetchone()[0]
        duplicate_filter = ""
        if seen:
            duplicate_filter += f" AND NOT EXISTS (SELECT 1 FROM _seen x WHERE {same_key})"
        if repeats:
            duplicate_filter += (
                f" AND NOT EXISTS (SELECT 1 FROM _repeats x WHERE {same_key}"
                " AND x.first_row <> b.row_number)"
            )
        cols = [*s.columns, *(n for n, _, _ in s.derived)]
        select = [f"b.{_quote(c)}" for c in cols]
        joins = []
        for i, phone in enumerate(s.phones):
            joins.append(
                f"LEFT JOIN ingest.phone_numbers p{i} ON p{i}.cleaned = b._phone_clean_{i} "
                f"AND p{i}.region = b._phone_region_{i}"
            )
            select.append(f"p{i}.e164")
            cols.append(phone.column)
        inserted = self.conn.execute(
            f"""
            INSERT INTO {s.raw_table}
                ({_sql_list([_quote(c) for c in cols])}, _extra,
                 _file_name, _row_number, _file_sha256, _loaded_at)
            SELECT {_sql_list(select)}, b._extra, ?, b.row_number, ?, ?
            FROM _batch b {" ".join(joins)}
            WHERE b._reason IS NULL {duplicate_filter}
            """,
            [self.file_name, self.sha256, self.loaded_at],
        ).fetchone()[0]
        return int(inserted)

    def _quarantine(self, records: Records) -> int:
        """Insert the rejected rows with their reason and text; returns how many."""
        rejected = self.conn.execute(
            "SELECT row_number, _reason FROM _batch WHERE _reason IS NOT NULL ORDER BY row_number"
        ).fetchnumpy()
        rows = np.asarray(rejected["row_number"], dtype=np.int64)
        if len(rows) == 0:
            return 0
        index = np.searchsorted(records.line_numbers, rows)
        self.conn.register(
            "_rejected",
            pa.table(
                {
                    "row_number": pa.array(rows),
                    "reason": pa.array(rejected["_reason"], pa.string()),
                    "raw_record": pa.array([records.text(int(i)) for i in index], pa.string()),
                }
            ),
        )
        self.conn.execute(
            "INSERT INTO audit.quarantine SELECT ?, ?, row_number, reason, raw_record, ?, ? "
            "FROM _rejected ORDER BY row_number",
            [self.source.name, self.file_name, self.loaded_at, self.sha256],
        )
        self.conn.unregister("_rejected")
        return len(rows)

    def load(self, data: bytes) -> tuple[int, int, int, int]:
        """Load the decompressed bytes; returns (rows, loaded, quarantined, duplicate)."""
        if self.source.format == "csv":
            records: Records = frame_csv(data)
            fields_sql = self._csv_fields_sql(records)  # type: ignore[arg-type]
        else:
            records = frame_lines(data)
            self.conn.register("_records", records.to_arrow())
            fields_sql = self._jsonl_fields_sql()
        self._build_batch(fields_sql)
        self._normalise_phones()
        loaded = self._insert_new()
        quarantined = self._quarantine(records)
        rows = self.conn.execute("SELECT count(*) FROM _batch").fetchone()[0]
        for table in ("_structure", "_batch", "_seen", "_repeats"):
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        return rows, loaded, quarantined, rows - quarantined - loaded


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _record_file(
    conn: duckdb.DuckDBPyConnection,
    result: FileResult,
    sha256: str,
    modified_at: datetime,
    started_at: datetime,
    loaded_at: datetime,
) -> None:
    conn.execute(
        "INSERT INTO audit.loaded_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.source,
            result.file_name,
            sha256,
            result.size_bytes,
            modified_at,
            result.status,
            result.duplicate_of,
            result.rows_in_file,
            result.rows_loaded,
            result.rows_quarantined,
            result.rows_duplicate,
            result.error,
            started_at,
            loaded_at,
        ],
    )


def _count_rows(source: Source, data: bytes) -> int:
    if source.format == "csv":
        return max(len(frame_csv(data)) - 1, 0)
    return len(frame_lines(data))


def load_file(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    file_name: str,
    content: bytes,
    sha256: str,
    duplicate_of: str | None = None,
) -> FileResult:
    """Load one landed file in its own transaction and record it in ``audit.loaded_files``."""
    started = time.perf_counter()
    started_at = _now()
    stat = path.stat()
    modified_at = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
    conn.execute("BEGIN TRANSACTION")
    try:
        status, error = "loaded", None
        rows = loaded = quarantined = duplicate = 0
        try:
            data = decompressed(content, file_name)
        except UnreadableFileError as exc:
            status, error = "unreadable", str(exc)
        if status == "loaded" and duplicate_of is not None:
            status = "duplicate_file"
            rows = duplicate = _count_rows(source, data)
        elif status == "loaded":
            loader = _FileLoader(conn, source, file_name, sha256, started_at)
            rows, loaded, quarantined, duplicate = loader.load(data)
        if status == "unreadable":
            conn.execute(
                "INSERT INTO audit.quarantine VALUES (?, ?, NULL, ?, NULL, ?, ?)",
                [source.name, file_name, f"file cannot be read: {error}", started_at, sha256],
            )
        result = FileResult(
            source.name,
            file_name,
            status,
            rows,
            loaded,
            quarantined,
            duplicate,
            len(content),
            time.perf_counter() - started,
            error,
            duplicate_of,
        )
        _record_file(conn, result, sha256, modified_at, started_at, _now())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def load_source(
    conn: duckdb.DuckDBPyConnection, source: Source | str, landing_dir: Path
) -> list[FileResult]:
    """Load every file of the source not loaded before; returns what happened to each."""
    source = SOURCES[source] if isinstance(source, str) else source
    ensure_schema(conn)
    known = conn.execute(
        "SELECT file_name, file_sha256, size_bytes, modified_at FROM audit.loaded_files "
        "WHERE source = ?",
        [source.name],
    ).fetchall()
    # Each file commits on its own (exactly once), but checkpointing the WAL into the file after
    # every commit would rewrite table data per file: checkpoint once, after the batch.
    threshold = conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
    conn.execute("SET checkpoint_threshold = '4GB'")
    try:
        results = _load_new_files(conn, source, landing_dir, known)
    finally:
        conn.execute(f"SET checkpoint_threshold = '{threshold}'")
    if results:
        conn.execute("CHECKPOINT")
    return results


def _load_new_files(
    conn: duckdb.DuckDBPyConnection, source: Source, landing_dir: Path, known: list[tuple]
) -> list[FileResult]:
    seen_stat = {(name, size, mtime) for name, _, size, mtime in known}
    seen_name_sha = {(name, sha) for name, sha, _, _ in known}
    first_name_of: dict[str, str] = {}
    for name, sha, _, _ in sorted(known):
        first_name_of.setdefault(sha, name)
    results = []
    for path in landed_files(landing_dir, source):
        file_name = path.relative_to(landing_dir).as_posix()
        stat = path.stat()
        mtime = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
        if (file_name, stat.st_size, mtime) in seen_stat:
            continue
        content = path.read_bytes()
        sha256 = hashlib.sha256(content).hexdigest()
        if (file_name, sha256) in seen_name_sha:
            continue
        result = load_file(
            conn, source, path, file_name, content, sha256, duplicate_of=first_name_of.get(sha256)
        )
        first_name_of.setdefault(sha256, file_name)
        log.info(
            "%s: %s rows: %d loaded, %d quarantined, %d duplicates (%.2fs)",
            file_name,
            result.status,
            result.rows_loaded,
            result.rows_quarantined,
            result.rows_duplicate,
            result.seconds,
        )
        results.append(result)
    return results
