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


def _struct_type(source: Source) -> str:
    parts = [f'"{key}": "{sql_type}"' for _, key, sql_type in source.fields]
    return "{" + ", ".join(parts) + "}"


class _FileLoader:
    """Loads one file's records inside the caller's open transaction."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, source: Source, file_name: str,
                 sha256: str, loaded_at: datetime) -> None:
        self.conn = conn
        self.source = source
        self.file_name = file_name
        self.sha256 = sha256
        self.loaded_at = loaded_at

    # -- decoding and structure -------------------------------------------------------------
    def _register_rows(self, records: Records, structural: str, extra_cols: dict) -> None:
        table = records.to_arrow()
        for name, values in extra_cols.items():
            table = table.append_column(name, pa.array(values))
        self.conn.register("_records", table)
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rows AS
            SELECT row_number, _text, {structural} AS _reason
            FROM (
                SELECT *, rtrim(try(decode(raw)), chr(13) || chr(10)) AS _text FROM _records
            )
        """)
        self.conn.unregister("_records")

    def _fields_from_jsonl(self, records: Records) -> None:
        self._register_rows(
            records,
            """CASE
                 WHEN _text IS NULL THEN 'row is not valid UTF-8'
                 WHEN NOT coalesce(try(json_valid(_text)), false) THEN 'line is not valid JSON'
                 WHEN json_type(_text) <> 'OBJECT'
                   THEN format('line is a JSON {}, expected an object', lower(json_type(_text)))
               END""",
            {},
        )
        picks = ", ".join(f"s.{_quote(key)} AS {_quote(col)}" for col, key, _ in self.source.fields)
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _fields AS
            SELECT row_number, _text, _reason, {picks}, CAST(s AS VARCHAR) IS NOT NULL AS _parsed
            FROM (
                SELECT *, CASE WHEN _reason IS NULL
                               THEN json_transform(_text, '{_struct_type(self.source)}') END AS s
                FROM _rows
            )
        """)

    def _fields_from_csv(self, records: CsvRecords) -> None:
        if len(records) == 0:
            self.conn.execute(
                "CREATE OR REPLACE TEMP TABLE _fields AS SELECT NULL::BIGINT AS row_number, "
                "NULL::VARCHAR AS _text, NULL::VARCHAR AS _reason, "
                + ", ".join(f"NULL::VARCHAR AS {_quote(c)}" for c in self.source.columns)
                + ", NULL::JSON AS _extra WHERE false"
            )
            return
        header_text = records.text(0).lstrip("\ufeff")
        header = [h.strip() for h in pl.read_csv(
            header_text.encode(), has_header=True, infer_schema=False, n_rows=0
        ).columns]
        missing = [c for c in self.source.required if c not in header]
        width = len(header)
        body = Records(records.data, records.starts[1:], records.ends[1:], records.line_numbers[1:])
        if missing:
            structural = (
                f"format('required column {missing[0]} is missing from the header (columns: {{}})', "
                f"{_sql_literal(', '.join(header))})"
            )
        else:
            structural = f"""CASE
                 WHEN _text IS NULL THEN 'row is not valid UTF-8'
                 WHEN unterminated THEN 'row has a quoted field that is never closed'
                 WHEN field_count <> {width}
                   THEN format('row has {{}} fields; the header has {width}', field_count)
               END"""
        self._register_rows(body, structural, {
            "field_count": records.field_counts[1:],
            "unterminated": records.unterminated_quote[1:],
        })
        good = self.conn.execute(
            "SELECT row_number FROM _rows WHERE _reason IS NULL ORDER BY row_number"
        ).fetchnumpy()["row_number"]
        parsed = self._parse_good_csv(records, header, np.asarray(good, dtype=np.int64))
        self.conn.register("_csv", parsed)
        known = [c for c in self.source.columns if c in header]
        unknown = [c for c in parsed.column_names if c not in self.source.columns
                   and c != "row_number"]
        picks = ", ".join(
            f"c.{_quote(col)}" if col in known else f"NULL::VARCHAR AS {_quote(col)}"
            for col in self.source.columns
        )
        extra = (
            "json_object(" + ", ".join(f"{_sql_literal(c)}, c.{_quote(c)}" for c in unknown) + ")"
            if unknown else "NULL::JSON"
        )
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _fields AS
            SELECT r.row_number, r._text, r._reason, {picks},
                   CASE WHEN r._reason IS NULL THEN {extra} END AS _extra
            FROM _rows r LEFT JOIN _csv c USING (row_number)
        """)
        self.conn.unregister("_csv")

    def _parse_good_csv(self, records: CsvRecords, header: list[str], good: np.ndarray
                        ) -> pa.Table:
        """Parse the well-formed records with Polars; row numbers come from the framing."""
        data = records.data
        arr = np.frombuffer(data, dtype=np.uint8)
        body_lines = records.line_numbers[1:]
        if len(good) == len(body_lines):
            buffer = data[records.starts[0]:]
        else:
            keep = np.zeros(len(arr), dtype=bool)
            idx = np.searchsorted(records.line_numbers, good)
            next_start = np.append(records.starts[1:], len(data))
            keep[records.starts[0]:next_start[0]] = True  # header
            for i in idx:
                keep[records.starts[i]:next_start[i]] = True
            buffer = arr[keep].tobytes()
        if len(good) == 0:
            frame = pl.DataFrame({name: pl.Series([], dtype=pl.String) for name in header})
        else:
            frame = pl.read_csv(
                buffer, has_header=True, infer_schema=False, quote_char='"',
                raise_if_empty=False, truncate_ragged_lines=False, encoding="utf8",
            )
            frame.columns = [c.lstrip("\ufeff").strip() for c in frame.columns]
        if frame.height != len(good):
            raise RuntimeError(
                f"{self.file_name}: CSV framing found {len(good)} rows but Polars parsed "
                f"{frame.height}; please report this file"
            )
        return frame.with_columns(pl.Series("row_number", good)).to_arrow()

    # -- contract rules, duplicates, insert ---------------------------------------------------
    def _check(self) -> None:
        branches = [
            f"WHEN nullif(trim(CAST({_quote(c)} AS VARCHAR)), '') IS NULL "
            f"THEN 'required field {c} is missing or empty'"
            for c in self.source.required
        ]
        branches += [f"WHEN {bad} THEN {reason}" for bad, reason in self.source.rules]
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _checked AS
            SELECT * REPLACE (coalesce(_reason, CASE {' '.join(branches)} END) AS _reason)
            FROM _fields
        """)

    def _valid_with_keys(self) -> None:
        derived = "".join(f", {sql} AS {_quote(name)}" for name, _, sql in self.source.derived)
        phones = "".join(
            f", {PHONE_CLEAN_SQL.format(expr=p.raw)} AS _phone_clean_{i}"
            f", coalesce(upper(trim({p.region})), '') AS _phone_region_{i}"
            for i, p in enumerate(self.source.phones)
        )
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _valid AS
            SELECT *, {self.source.key} AS _key {derived} {phones}
            FROM _checked WHERE _reason IS NULL
        """)
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _new AS
            SELECT * FROM _valid v
            WHERE NOT EXISTS (SELECT 1 FROM {self.source.raw_table} r WHERE r._key = v._key)
            QUALIFY row_number() OVER (PARTITION BY _key ORDER BY row_number) = 1
        """)

    def _normalise_phones(self) -> None:
        """Parse each distinct (number, region) never seen before, once, with phonenumbers."""
        if not self.source.phones:
            return
        distinct = " UNION ".join(
            f"SELECT _phone_clean_{i} AS cleaned, _phone_region_{i} AS region FROM _new "
            f"WHERE _phone_clean_{i} IS NOT NULL"
            for i in range(len(self.source.phones))
        )
        todo = self.conn.execute(f"""
            SELECT cleaned, region FROM ({distinct})
            EXCEPT SELECT cleaned, region FROM ingest.phone_numbers
        """).fetchnumpy()
        if len(todo["cleaned"]) == 0:
            return
        e164 = [to_e164(c, r) for c, r in zip(todo["cleaned"], todo["region"], strict=True)]
        self.conn.register("_phones", pa.table({
            "cleaned": pa.array(todo["cleaned"], pa.string()),
            "region": pa.array(todo["region"], pa.string()),
            "e164": pa.array(e164, pa.string()),
        }))
        self.conn.execute("INSERT INTO ingest.phone_numbers SELECT * FROM _phones")
        self.conn.unregister("_phones")

    def _insert(self) -> None:
        s = self.source
        cols = [*s.columns, *(n for n, _, _ in s.derived)]
        select = [f"n.{_quote(c)}" for c in cols]
        joins = []
        for i, phone in enumerate(s.phones):
            joins.append(
                f"LEFT JOIN ingest.phone_numbers p{i} ON p{i}.cleaned = n._phone_clean_{i} "
                f"AND p{i}.region = n._phone_region_{i}"
            )
            select.append(f"p{i}.e164")
            cols.append(phone.column)
        payload = "_extra" if s.format == "csv" else "_record"
        payload_sql = "n._extra" if s.format == "csv" else "CAST(n._text AS JSON)"
        self.conn.execute(
            f"""
            INSERT INTO {s.raw_table}
                ({_sql_list([_quote(c) for c in cols])}, _key, {payload},
                 _file_name, _row_number, _file_sha256, _loaded_at)
            SELECT {_sql_list(select)}, n._key, {payload_sql}, ?, n.row_number, ?, ?
            FROM _new n {' '.join(joins)}
            ORDER BY n.row_number
            """,
            [self.file_name, self.sha256, self.loaded_at],
        )

    def _quarantine(self, records: Records) -> None:
        self.conn.execute(
            """
            INSERT INTO audit.quarantine
            SELECT ?, ?, row_number, _reason, _text, ?, ? FROM _checked
            WHERE _reason IS NOT NULL ORDER BY row_number
            """,
            [self.source.name, self.file_name, self.loaded_at, self.sha256],
        )
        undecodable = self.conn.execute(
            "SELECT row_number FROM _checked WHERE _reason IS NOT NULL AND _text IS NULL"
        ).fetchall()
        for (row_number,) in undecodable:
            i = int(np.searchsorted(records.line_numbers, row_number))
            self.conn.execute(
                "UPDATE audit.quarantine SET raw_record = ? "
                "WHERE file_sha256 = ? AND file_name = ? AND row_number = ?",
                [records.text(i), self.sha256, self.file_name, row_number],
            )

    def load(self, data: bytes) -> tuple[int, int, int, int]:
        """Load the decompressed bytes; returns (rows, loaded, quarantined, duplicate)."""
        if self.source.format == "csv":
            records: Records = frame_csv(data)
            self._fields_from_csv(records)  # type: ignore[arg-type]
        else:
            records = frame_lines(data)
            self._fields_from_jsonl(records)
        self._check()
        self._valid_with_keys()
        self._normalise_phones()
        self._insert()
        self._quarantine(records)
        rows, quarantined, valid, new = self.conn.execute("""
            SELECT (SELECT count(*) FROM _checked),
                   (SELECT count(*) FROM _checked WHERE _reason IS NOT NULL),
                   (SELECT count(*) FROM _valid), (SELECT count(*) FROM _new)
        """).fetchone()
        for table in ("_rows", "_fields", "_checked", "_valid", "_new"):
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        return rows, new, quarantined, valid - new


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _record_file(conn: duckdb.DuckDBPyConnection, result: FileResult, sha256: str,
                 modified_at: datetime, started_at: datetime, loaded_at: datetime) -> None:
    conn.execute(
        "INSERT INTO audit.loaded_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [result.source, result.file_name, sha256, result.size_bytes, modified_at, result.status,
         result.duplicate_of, result.rows_in_file, result.rows_loaded, result.rows_quarantined,
         result.rows_duplicate, result.error, started_at, loaded_at],
    )


def _count_rows(source: Source, data: bytes) -> int:
    if source.format == "csv":
        return max(len(frame_csv(data)) - 1, 0)
    return len(frame_lines(data))


def load_file(conn: duckdb.DuckDBPyConnection, source: Source, path: Path, file_name: str,
              content: bytes, sha256: str, duplicate_of: str | None = None) -> FileResult:
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
            source.name, file_name, status, rows, loaded, quarantined, duplicate,
            len(content), time.perf_counter() - started, error, duplicate_of,
        )
        _record_file(conn, result, sha256, modified_at, started_at, _now())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def load_source(conn: duckdb.DuckDBPyConnection, source: Source | str, landing_dir: Path
                ) -> list[FileResult]:
    """Load every file of the source not loaded before; returns what happened to each."""
    source = SOURCES[source] if isinstance(source, str) else source
    ensure_schema(conn)
    known = conn.execute(
        "SELECT file_name, file_sha256, size_bytes, modified_at FROM audit.loaded_files "
        "WHERE source = ?", [source.name],
    ).fetchall()
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
        result = load_file(conn, source, path, file_name, content, sha256,
                           duplicate_of=first_name_of.get(sha256))
        first_name_of.setdefault(sha256, file_name)
        log.info(
            "%s: %s rows: %d loaded, %d quarantined, %d duplicates (%.2fs)",
            file_name, result.status, result.rows_loaded, result.rows_quarantined,
            result.rows_duplicate, result.seconds,
        )
        results.append(result)
    return results
