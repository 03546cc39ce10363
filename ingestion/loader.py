"""Exactly-once loading of landing files into ``raw``, with every row accounted for.

New files of a source are loaded in batches (consecutive files up to ``CRM360_INGEST_BATCH_MB``
of decompressed data, default 192). Each batch is one transaction: frame every file into records
(NumPy), decode and validate all records of the batch in one DuckDB SQL pass, quarantine the rows
that break the contract with a reason, recognise rows whose key was already loaded (earlier or in
an earlier file of the batch), insert the rest into ``raw.<table>`` with lineage, and record each
file in ``audit.loaded_files``. A crash at any point rolls the whole batch back, so a rerun loads
exactly what is missing. The same bytes under another name are recorded as a duplicate file and
never loaded again.

Why batches: a file of a few thousand rows is smaller than one DuckDB row group, so per-file SQL
runs on one core and pays fixed costs (statements, commit) for every file; a batch of files
keeps both cores busy and pays them once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
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
    valid_utf8,
)
from ingestion.normalise import PHONE_CLEAN_SQL, PhoneParser
from ingestion.sources import LANDING_SUFFIXES, SOURCES, Source
from ingestion.warehouse import (
    ensure_schema,
    index_loaded_keys,
    key_hash_sql,
    key_index,
    quote_ident,
)

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
    seconds: float  # of the whole batch the file was loaded in
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


DEFAULT_BATCH_MB = 192

MAX_EXTRA_KEYS = 200
"""More distinct unknown keys than this in one batch (keys that are data, such as ids) are
removed from the record as a whole document rather than extracted one by one."""


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_pointer(key: str) -> str:
    """RFC 6901 pointer to a top-level key."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def batch_bytes() -> int:
    """How much decompressed landing data one batch (one transaction) may hold."""
    return int(float(os.environ.get("CRM360_INGEST_BATCH_MB", DEFAULT_BATCH_MB)) * 1024 * 1024)


@dataclass
class _Landed:
    """A new landing file: its bytes, checksum and, once read, its decompressed data."""

    path: Path
    file_name: str
    size_bytes: int  # as landed (compressed for .gz)
    sha256: str
    modified_at: datetime
    duplicate_of: str | None
    data: bytes = b""
    error: str | None = None  # why the file cannot be read at all
    records: Records | None = None  # framed, for the rows' text in quarantine
    table: pa.Table | None = None  # the records as the batch's SQL reads them

    def frame(self, source: Source) -> None:
        """Split the data into records and shape them for the batch (no DuckDB needed)."""
        if source.format == "csv":
            self.records = frame_csv(self.data)
            self.table = _csv_rows(source, self.records, self.file_name).to_arrow()
        else:
            self.records = frame_lines(self.data)
            self.table = self.records.to_arrow()

    @property
    def loadable(self) -> bool:
        return self.error is None and self.duplicate_of is None


def _csv_rows(source: Source, records: CsvRecords, file_name: str) -> pl.DataFrame:
    """One row per CSV record after the header: row_number, the contract's columns as text,
    ``_extra`` (unknown columns as a JSON object) and ``_structural`` (why the row cannot be
    read as a row of this file, or null).

    Each file has its own header (columns in any order, unknown ones too), so rows are shaped
    per file here and only then stacked into the batch.
    """
    schema = {
        "row_number": pl.Int64,
        **{c: pl.String for c in source.columns},
        "_extra": pl.String,
        "_structural": pl.String,
    }
    if len(records) <= 1:
        return pl.DataFrame(schema=schema)
    header = [
        h.strip()
        for h in pl.read_csv(
            records.text(0).lstrip("\ufeff").encode(), has_header=True, infer_schema=False, n_rows=0
        ).columns
    ]
    width = len(header)
    body = Records(records.data, records.starts[1:], records.ends[1:], records.line_numbers[1:])
    field_counts = records.field_counts[1:]
    reasons = np.full(len(body), None, dtype=object)
    missing = [c for c in source.required if c not in header]
    if missing:
        reasons[:] = (
            f"required column {missing[0]} is missing from the header "
            f"(columns: {', '.join(header)})"
        )
    else:  # assigned from the least to the most fundamental reason, which wins
        for i in np.flatnonzero(field_counts != width):
            reasons[i] = f"row has {field_counts[i]} fields; the header has {width}"
        reasons[records.unterminated_quote[1:]] = "row has a quoted field that is never closed"
        reasons[~valid_utf8(body)] = "row is not valid UTF-8"
    good = body.line_numbers[np.equal(reasons, None)]
    parsed = _parse_good_csv(records, header, good, file_name)
    unknown = [c for c in parsed.columns if c not in source.columns and c != "row_number"]
    parsed = parsed.select(
        "row_number",
        *(
            pl.col(c) if c in parsed.columns else pl.lit(None, pl.String).alias(c)
            for c in source.columns
        ),
        (pl.struct(unknown).struct.json_encode() if unknown else pl.lit(None, pl.String)).alias(
            "_extra"
        ),
    )
    rows = pl.DataFrame(
        {
            "row_number": pl.Series(body.line_numbers, dtype=pl.Int64),
            "_structural": pl.Series(reasons.tolist(), dtype=pl.String),
        }
    )
    return rows.join(parsed, on="row_number", how="left").select(list(schema))


def _parse_good_csv(
    records: CsvRecords, header: list[str], good: np.ndarray, file_name: str
) -> pl.DataFrame:
    """Parse the well-formed records (by line number) with Polars, all columns as text."""
    data = records.data
    next_start = np.append(records.starts[1:], len(data))
    if len(good) == len(records) - 1:
        buffer = data[records.starts[0] :]
    else:
        # The bytes of the header and of each good record (up to the next record): +1 where a
        # kept span starts, -1 where it ends, summed along the buffer (no loop over records).
        kept = np.concatenate(([0], np.searchsorted(records.line_numbers, good)))
        edges = np.zeros(len(data) + 1, dtype=np.int8)
        np.add.at(edges, records.starts[kept], 1)
        np.add.at(edges, next_start[kept], -1)
        keep = np.cumsum(edges[:-1], dtype=np.int8) > 0
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
            f"{file_name}: CSV framing found {len(good)} rows but Polars parsed "
            f"{frame.height}; please report this file"
        )
    return frame.with_columns(pl.Series("row_number", good, dtype=pl.Int64))


class _BatchLoader:
    """Loads a batch of files' records inside the caller's open transaction.

    The batch is one SQL statement that decodes, parses, validates and keys every record of
    every file (``_batch``); inserts into raw and quarantine then read from it. ``file_index``
    tells the files apart and ``_seq`` orders records by file, then line, so that of two rows
    with one key the earlier one loads. Duplicate detection probes the raw table with the
    batch's keys (the small side builds the hash table) rather than loading all keys ever seen.
    """

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        source: Source,
        files: list[_Landed],
        loaded_at: datetime,
        phones: PhoneParser,
    ) -> None:
        self.conn = conn
        self.phones = phones
        self.source = source
        self.files = files
        self.loaded_at = loaded_at

    # -- structure: JSON Lines ----------------------------------------------------------------
    # Parsing JSON is most of a batch's cost, so each record is parsed as few times as it can
    # be: once to tell valid JSON, once for its keys (to find the batch's unknown ones), once to
    # read every field, known and unknown, into a struct (json_transform). Only records whose
    # text holds a null somewhere are parsed a fourth time (see _extra_sql).

    def _discover(self) -> tuple[list[str], bool]:
        """Lists the records that are not valid JSON in ``_invalid``; returns the top-level keys
        of the batch's objects that the contract does not list, and whether any record is
        invalid."""
        invalid = self.conn.execute("""
            CREATE OR REPLACE TEMP TABLE _invalid AS
            SELECT file_index, row_number FROM _records WHERE NOT json_valid(text)
        """).fetchone()[0]
        known = ", ".join(_sql_literal(key) for _, key, _ in self.source.fields)
        skip = "ANTI JOIN _invalid USING (file_index, row_number)" if invalid else ""
        rows = self.conn.execute(f"""
            SELECT DISTINCT key FROM (
                SELECT unnest(json_keys(text)) AS key FROM _records {skip}
                WHERE text IS NOT NULL
            )
            WHERE key NOT IN ({known})
            ORDER BY key
        """).fetchall()
        return [key for (key,) in rows], bool(invalid)

    def _extra_sql(self, unknown: list[str]) -> tuple[list[str], str, str]:
        """How ``_extra`` (the record's unknown top-level fields as a JSON object, or NULL) is
        made: (keys read into the struct ``s`` with the known fields, SQL for ``_x`` over
        ``_text`` and ``s``, SQL for ``_extra`` over ``s`` and ``_x``).

        An unknown key is read into ``s`` as JSON with the known ones, in the same parse. That
        read cannot tell a key given as null from an absent one (both NULL), so a record whose
        text holds "null" anywhere also has its unknown values taken with ``json_extract`` of
        JSON pointers (an absent key is NULL there, a null one 'null'), and those win. Keys that
        differ only in case, an empty key and keys with control characters cannot be fields of
        a struct: then every record's unknown values are taken with ``json_extract``. More than
        MAX_EXTRA_KEYS unknown keys (keys that are data, such as ids) are left to
        ``json_merge_patch``, which rebuilds the whole document without the known keys (it used
        to do so for every batch: half of web events' SQL).
        """
        if not unknown:
            return [], "NULL", "NULL"
        if len(unknown) > MAX_EXTRA_KEYS:
            patch = "{" + ", ".join(f"{json.dumps(key)}: null" for _, key, _ in self.source.fields)
            return (
                [],
                "NULL",
                (f"nullif(json_merge_patch(_text, {_sql_literal(patch + '}')}), '{{}}')"),
            )
        pointers = ", ".join(_sql_literal(_json_pointer(key)) for key in unknown)
        names = [key.lower() for _, key, _ in self.source.fields] + [k.lower() for k in unknown]
        if (
            len(set(names)) == len(names)
            and all(k.isprintable() for k in unknown)
            and "" not in unknown
        ):
            in_struct = unknown
            x = f"CASE WHEN contains(_text, 'null') THEN json_extract(_text, [{pointers}]) END"
            values = [f"coalesce(_x[{i}], s.{quote_ident(k)})" for i, k in enumerate(unknown, 1)]
        else:
            in_struct = []
            x = f"json_extract(_text, [{pointers}])"
            values = [f"_x[{i}]" for i in range(1, len(unknown) + 1)]
        members = ", ".join(
            f"{_sql_literal(json.dumps(key) + ':')} || {value}"
            for key, value in zip(unknown, values, strict=True)
        )
        return in_struct, x, f"nullif('{{' || concat_ws(',', {members}) || '}}', '{{}}')"

    def _jsonl_fields_sql(self) -> str:
        """SQL over ``_records`` giving the keys, _text, the fields and a structural reason."""
        s = self.source
        picks = ", ".join(f"s.{quote_ident(key)} AS {quote_ident(col)}" for col, key, _ in s.fields)
        required_all_null = " AND ".join(f"{quote_ident(c)} IS NULL" for c in s.required)
        unknown, invalid = self._discover()
        in_struct, x, extra = self._extra_sql(unknown)
        struct = {key: sql_type for _, key, sql_type in s.fields} | dict.fromkeys(in_struct, "JSON")
        records = "(SELECT file_index, row_number, text AS _text FROM _records)"
        if invalid:
            records = """(
                SELECT r.file_index, r.row_number, CASE WHEN i.row_number IS NULL THEN r.text END
                       AS _text_ok, r.text AS _text
                FROM _records r
                LEFT JOIN _invalid i ON i.file_index = r.file_index AND i.row_number = r.row_number
            )"""
        parsed = "_text_ok" if invalid else "_text"
        return f"""
            SELECT file_index, row_number, _text, {", ".join(quote_ident(c) for c in s.columns)},
                   CASE WHEN s IS NOT NULL THEN {extra} END AS _extra,
                   CASE
                     WHEN _text IS NULL THEN 'row is not valid UTF-8'
                     WHEN s IS NULL AND NOT coalesce(json_valid(_text), false)
                       THEN 'line is not valid JSON'
                     WHEN s IS NULL OR ({required_all_null} AND json_type(_text) <> 'OBJECT')
                       THEN format('line is a JSON {{}}, expected an object',
                                   lower(json_type(_text)))
                   END AS _structural
            FROM (
                SELECT file_index, row_number, _text, {picks}, s, _x
                FROM (
                    SELECT file_index, row_number, _text, s,
                           CASE WHEN s IS NOT NULL THEN {x} END AS _x
                    FROM (
                        SELECT file_index, row_number, _text,
                               json_transform({parsed}, {_sql_literal(json.dumps(struct))}) AS s
                        FROM {records}
                    )
                )
            )
        """

    def _register_records(self) -> str:
        """Stack the files' framed records as ``_records``; returns the SQL giving the fields
        and structural reasons."""
        s = self.source
        tables = []
        for index, landed in enumerate(self.files):
            table = landed.table
            file_index = pa.array(np.full(table.num_rows, index, np.int32))
            tables.append(table.append_column("file_index", file_index))
        self.conn.register("_records", pa.concat_tables(tables, promote_options="permissive"))
        if s.format == "jsonl":
            return self._jsonl_fields_sql()
        columns = ", ".join(quote_ident(c) for c in s.columns)
        return (
            f"SELECT file_index, row_number, {columns}, CAST(_extra AS JSON) AS _extra, "
            "_structural FROM _records"
        )

    # -- the batch: contract rules, keys, normalised forms ------------------------------------
    def _build_batch(self, fields_sql: str) -> None:
        s = self.source
        # The first broken rule gives the reason. Written as a coalesce of one-rule CASEs, not one
        # CASE of many WHENs: DuckDB 2.0 evaluates the latter three times slower here (0.20 s
        # against 0.06 s for a batch of 466,000 web events; each rule alone takes 0.01 s).
        # Each rule's reason is non-null whenever the rule is broken, so the answer is the same.
        checks = [
            f"CASE WHEN nullif(trim(CAST({quote_ident(c)} AS VARCHAR)), '') IS NULL "
            f"THEN 'required field {c} is missing or empty' END"
            for c in s.required
        ]
        checks += [f"CASE WHEN {bad} THEN {reason} END" for bad, reason in s.rules]
        derived = "".join(f", {sql} AS {quote_ident(name)}" for name, _, sql in s.derived)
        phones = "".join(
            f", {PHONE_CLEAN_SQL.format(expr=p.raw)} AS _phone_clean_{i}"
            # a number written with '+' reads the same in every country: parsed once for all
            f", CASE WHEN starts_with(_phone_clean_{i}, '+') THEN '' "
            f"ELSE coalesce(upper(trim({p.region})), '') END AS _phone_region_{i}"
            for i, p in enumerate(s.phones)
        )
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _batch AS
            SELECT * EXCLUDE ({"_text, " if s.format == "jsonl" else ""}_structural)
                   {derived} {phones},
                   CAST(file_index AS BIGINT) * 4294967296 + row_number AS _seq,
                   CASE WHEN _reason IS NULL THEN {key_hash_sql(s)} END AS _key_hash
            FROM (
                SELECT *, coalesce(_structural, {", ".join(checks)}) AS _reason
                FROM ({fields_sql})
            )
        """)
        self.conn.execute("DROP VIEW IF EXISTS _records")

    def _normalise_phones(self) -> None:
        """Parse each distinct (number, region) never seen before, once, with phonenumbers.

        ``_batch_phones`` gets the E.164 form of every distinct phone of the batch. The batch's
        values build the hash tables; the ever-growing ``ingest.phone_numbers`` is only probed.
        """
        if not self.source.phones:
            return
        distinct = (
            "SELECT DISTINCT * FROM ("
            + " UNION ALL ".join(
                f"SELECT _phone_clean_{i} AS cleaned, _phone_region_{i} AS region FROM _batch "
                f"WHERE _reason IS NULL AND _phone_clean_{i} IS NOT NULL"
                for i in range(len(self.source.phones))
            )
            + ")"
        )
        self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _batch_phones AS
            SELECT * FROM ingest.phone_numbers SEMI JOIN ({distinct}) USING (cleaned, region)
        """)
        todo = self.conn.execute(f"""
            SELECT * FROM ({distinct}) ANTI JOIN _batch_phones USING (cleaned, region)
        """).fetchnumpy()
        if len(todo["cleaned"]) == 0:
            return
        started = time.perf_counter()
        e164 = self.phones.many(list(todo["cleaned"]), list(todo["region"]))
        log.debug(
            "%s: parsed %d new phone numbers in %.2fs",
            self.source.name,
            len(e164),
            time.perf_counter() - started,
        )
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
        # appended, not updated: an update inside the open transaction slows every later scan
        self.conn.execute("INSERT INTO _batch_phones SELECT * FROM _phones")
        self.conn.unregister("_phones")

    def _find_duplicates(self) -> None:
        """Which valid rows repeat a key: one loaded before, or one earlier in this batch."""
        s = self.source
        # Keys of this batch already loaded: the batch builds the hash table, the source's key
        # index (16 bytes a row, see key_hash_sql) only probes it.
        seen = self.conn.execute(f"""
            CREATE OR REPLACE TEMP TABLE _seen AS
            SELECT DISTINCT key_hash FROM {key_index(s)}
            SEMI JOIN (SELECT _key_hash AS key_hash FROM _batch WHERE _reason IS NULL)
                 USING (key_hash)
        """).fetchone()[0]
        # Rows repeating a key earlier in this batch: only keys that occur twice matter. Their
        # _seq is listed in a small table, so that the insert filters by an anti join on it
        # (a correlated NOT EXISTS was planned as a join over the whole batch: 0.2 s a batch).
        repeats = self.conn.execute("""
            CREATE OR REPLACE TEMP TABLE _later_repeats AS
            SELECT b._seq FROM _batch b
            JOIN (
                SELECT _key_hash, min(_seq) AS first_seq FROM _batch WHERE _reason IS NULL
                GROUP BY _key_hash HAVING count(*) > 1
            ) r ON r._key_hash = b._key_hash AND b._seq <> r.first_seq
            WHERE b._reason IS NULL
        """).fetchone()[0]
        self.seen_before = " AND b._key_hash NOT IN (SELECT key_hash FROM _seen)" if seen else ""
        self.seen_earlier = (
            " AND b._seq NOT IN (SELECT _seq FROM _later_repeats)" if repeats else ""
        )

    def _insert_new(self) -> None:
        """Insert the valid rows whose key is new, and their keys into the source's key index."""
        s = self.source
        cols = [*s.columns, *(n for n, _, _ in s.derived)]
        select = [f"b.{quote_ident(c)}" for c in cols]
        joins = []
        for i, phone in enumerate(s.phones):
            joins.append(
                f"LEFT JOIN _batch_phones p{i} ON p{i}.cleaned = b._phone_clean_{i} "
                f"AND p{i}.region = b._phone_region_{i}"
            )
            select.append(f"p{i}.e164")
            cols.append(phone.column)
        self.conn.execute(
            f"""
            INSERT INTO {s.raw_table}
                ({_sql_list([quote_ident(c) for c in cols])}, _extra,
                 _file_name, _row_number, _file_sha256, _loaded_at)
            SELECT {_sql_list(select)}, b._extra, f.file_name, b.row_number, f.sha256, ?
            FROM _batch b JOIN _files f ON f.file_index = b.file_index {" ".join(joins)}
            WHERE b._reason IS NULL {self.seen_before} {self.seen_earlier}
            """,
            [self.loaded_at],
        )
        self.conn.execute(f"""
            INSERT INTO {key_index(s)}
            SELECT DISTINCT _key_hash FROM _batch b WHERE b._reason IS NULL {self.seen_before}
        """)

    def _quarantine(self) -> None:
        """Insert the rejected rows with their reason and their text as written in the file."""
        rejected = self.conn.execute(
            "SELECT file_index, row_number, _reason FROM _batch WHERE _reason IS NOT NULL "
            "ORDER BY file_index, row_number"
        ).fetchnumpy()
        if len(rejected["row_number"]) == 0:
            return
        texts = []
        for index, row in zip(rejected["file_index"], rejected["row_number"], strict=True):
            records = self.files[index].records
            texts.append(records.text(int(np.searchsorted(records.line_numbers, row))))
        self.conn.register(
            "_rejected",
            pa.table(
                {
                    "file_index": pa.array(rejected["file_index"], pa.int32()),
                    "row_number": pa.array(rejected["row_number"], pa.int64()),
                    "reason": pa.array(rejected["_reason"], pa.string()),
                    "raw_record": pa.array(texts, pa.string()),
                }
            ),
        )
        self.conn.execute(
            "INSERT INTO audit.quarantine SELECT ?, f.file_name, r.row_number, r.reason, "
            "r.raw_record, ?, f.sha256 FROM _rejected r JOIN _files f USING (file_index) "
            "ORDER BY r.file_index, r.row_number",
            [self.source.name, self.loaded_at],
        )
        self.conn.unregister("_rejected")

    def _counts(self) -> dict[str, tuple[int, int, int]]:
        """Per file: (rows, loaded, quarantined)."""
        rows = self.conn.execute(
            "SELECT f.file_name, count(b.file_index), count(b._reason) "
            "FROM _files f LEFT JOIN _batch b USING (file_index) GROUP BY f.file_name"
        ).fetchall()
        loaded = dict(
            self.conn.execute(
                f"SELECT _file_name, count(*) FROM {self.source.raw_table} "
                "WHERE _loaded_at = ? GROUP BY _file_name",
                [self.loaded_at],
            ).fetchall()
        )
        return {name: (total, loaded.get(name, 0), bad) for name, total, bad in rows}

    def load(self) -> dict[str, tuple[int, int, int]]:
        """Load the batch; returns per file name (rows, loaded, quarantined)."""
        self.conn.register(
            "_files",
            pa.table(
                {
                    "file_index": pa.array(range(len(self.files)), pa.int32()),
                    "file_name": pa.array([f.file_name for f in self.files], pa.string()),
                    "sha256": pa.array([f.sha256 for f in self.files], pa.string()),
                }
            ),
        )
        phases = {}
        for name, step in (
            ("build", lambda: self._build_batch(self._register_records())),
            ("phones", self._normalise_phones),
            ("duplicates", self._find_duplicates),
            ("insert", self._insert_new),
            ("quarantine", self._quarantine),
        ):
            started = time.perf_counter()
            step()
            phases[name] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        counts = self._counts()
        phases["counts"] = round(time.perf_counter() - started, 2)
        log.debug("%s: batch phases (s): %s", self.source.name, phases)
        for table in ("_batch", "_seen", "_later_repeats", "_batch_phones", "_invalid"):
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.unregister("_files")
        return counts


def _record_file(
    conn: duckdb.DuckDBPyConnection, result: FileResult, landed: _Landed, started_at: datetime
) -> None:
    conn.execute(
        "INSERT INTO audit.loaded_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.source,
            result.file_name,
            landed.sha256,
            result.size_bytes,
            landed.modified_at,
            result.status,
            result.duplicate_of,
            result.rows_in_file,
            result.rows_loaded,
            result.rows_quarantined,
            result.rows_duplicate,
            result.error,
            started_at,
            _now(),
        ],
    )


def _count_rows(source: Source, data: bytes) -> int:
    if source.format == "csv":
        return max(len(frame_csv(data)) - 1, 0)
    return len(frame_lines(data))


def load_batch(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    batch: list[_Landed],
    phones: PhoneParser,
) -> list[FileResult]:
    """Load a batch of landed files in one transaction, recording each in audit.loaded_files."""
    started = time.perf_counter()
    started_at = _now()
    conn.execute("BEGIN TRANSACTION")
    try:
        loadable = [f for f in batch if f.loadable]
        counts = _BatchLoader(conn, source, loadable, started_at, phones).load() if loadable else {}
        outcomes = []
        for landed in batch:
            if landed.error is not None:
                conn.execute(
                    "INSERT INTO audit.quarantine VALUES (?, ?, NULL, ?, NULL, ?, ?)",
                    [
                        source.name,
                        landed.file_name,
                        f"file cannot be read: {landed.error}",
                        started_at,
                        landed.sha256,
                    ],
                )
                outcomes.append(("unreadable", 0, 0, 0, 0))
            elif landed.duplicate_of is not None:
                rows = _count_rows(source, landed.data)
                outcomes.append(("duplicate_file", rows, 0, 0, rows))
            else:
                rows, loaded, quarantined = counts[landed.file_name]
                outcomes.append(("loaded", rows, loaded, quarantined, rows - loaded - quarantined))
        seconds = time.perf_counter() - started
        results = []
        for landed, (status, rows, loaded, quarantined, duplicate) in zip(
            batch, outcomes, strict=True
        ):
            result = FileResult(
                source.name,
                landed.file_name,
                status,
                rows,
                loaded,
                quarantined,
                duplicate,
                landed.size_bytes,
                seconds,
                landed.error,
                landed.duplicate_of,
            )
            _record_file(conn, result, landed, started_at)
            results.append(result)
        committing = time.perf_counter()
        conn.execute("COMMIT")
        log.debug("%s: commit in %.2fs", source.name, time.perf_counter() - committing)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def load_source(
    conn: duckdb.DuckDBPyConnection,
    source: Source | str,
    landing_dir: Path,
    max_batch_bytes: int | None = None,
) -> list[FileResult]:
    """Load every file of the source not loaded before; returns what happened to each.

    ``max_batch_bytes`` bounds the decompressed data of one batch (default: ``batch_bytes()``);
    a file larger than that is a batch of its own.
    """
    source = SOURCES[source] if isinstance(source, str) else source
    ensure_schema(conn)
    index_loaded_keys(conn, source)
    known = conn.execute(
        "SELECT file_name, file_sha256, size_bytes, modified_at FROM audit.loaded_files "
        "WHERE source = ?",
        [source.name],
    ).fetchall()
    limit = batch_bytes() if max_batch_bytes is None else max_batch_bytes
    # Each batch commits on its own (exactly once), but checkpointing the WAL into the file after
    # every commit would rewrite table data per batch: checkpoint once, at the end. Rows of a
    # batch need not keep their order inside the table (each carries its file and line): without
    # that order DuckDB's threads append whole row groups each, and writing raw takes 40% less
    # time (measured on web events at 1M people, insert plus checkpoint). Each batch leaves a
    # partly filled row group per thread; the checkpoint's vacuum would merge them by rewriting
    # the row groups after them, which took 15 of the 115 s of web events at 1M people. Scans
    # lose nothing measurable to smaller row groups, so the raw tables keep them.
    settings = {
        "checkpoint_threshold": "'4GB'",
        "preserve_insertion_order": "false",
        "max_vacuum_tasks": "0",
    }
    before = {
        name: conn.execute(f"SELECT current_setting('{name}')").fetchone()[0] for name in settings
    }
    for name, value in settings.items():
        conn.execute(f"SET {name} = {value}")
    results: list[FileResult] = []
    try:
        with PhoneParser() as phones:  # one helper process for every batch
            for batch in _prefetched(_batches(_new_files(landing_dir, source, known), limit)):
                done = load_batch(conn, source, batch, phones)
                _release(batch)
                for r in done:
                    log.info(
                        "%s: %s rows: %d loaded, %d quarantined, %d duplicates",
                        r.file_name,
                        r.status,
                        r.rows_loaded,
                        r.rows_quarantined,
                        r.rows_duplicate,
                    )
                log.info("%s: batch of %d files in %.2fs", source.name, len(done), done[0].seconds)
                results += done
        if results:
            started = time.perf_counter()
            conn.execute("CHECKPOINT")
            log.debug("%s: checkpoint in %.2fs", source.name, time.perf_counter() - started)
    finally:
        for name, value in before.items():
            conn.execute(f"SET {name} = {_sql_literal(str(value))}")
    return results


def _release(batch: list[_Landed]) -> None:
    """Drops a loaded batch's data, so that its memory is free before the next batch is taken
    (the loop still holds the list while it waits for the next one)."""
    for landed in batch:
        landed.data, landed.records, landed.table = b"", None, None


def _batches(files: Iterable[_Landed], limit: int) -> Iterator[list[_Landed]]:
    """Consecutive files grouped up to ``limit`` decompressed bytes (at least one per batch)."""
    batch: list[_Landed] = []
    size = 0
    for landed in files:
        if batch and size + len(landed.data) > limit:
            yield batch
            batch, size = [], 0
        batch.append(landed)
        size += len(landed.data)
    if batch:
        yield batch


def _new_files(landing_dir: Path, source: Source, known: list[tuple]) -> Iterator[_Landed]:
    """The source's files not loaded before, read and decompressed, in loading order."""
    seen_stat = {(name, size, mtime) for name, _, size, mtime in known}
    seen_name_sha = {(name, sha) for name, sha, _, _ in known}
    first_name_of: dict[str, str] = {}
    for name, sha, _, _ in sorted(known):
        first_name_of.setdefault(sha, name)
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
        landed = _Landed(path, file_name, len(content), sha256, mtime, first_name_of.get(sha256))
        first_name_of.setdefault(sha256, file_name)
        try:
            landed.data = decompressed(content, file_name)
        except UnreadableFileError as exc:
            landed.error = str(exc)
        if landed.loadable:
            landed.frame(source)
        yield landed


def _prefetched(batches: Iterator[list[_Landed]]) -> Iterator[list[_Landed]]:
    """The batches, each read, checksummed and framed in a thread while the previous one loads.

    Reading, hashing, gunzip and NumPy framing release the GIL for their heavy parts, as DuckDB
    does while it executes, so the two overlap on separate cores. One batch waits at most, and
    the next is read only once the waiting one is taken: at most two batches are in memory (the
    one loading and the one read ahead), not a third read while the second waits.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    taken = threading.Semaphore(0)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                handoff.put(batch)  # never blocks: the queue is empty (see below)
                del batch
                # Wait until the consumer takes it before reading the next one.
                while not taken.acquire(timeout=0.1):
                    if stop.is_set():
                        return
            handoff.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.put(exc)

    worker = threading.Thread(target=produce, name="crm360-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            waiting = time.perf_counter()
            item = handoff.get()
            taken.release()
            log.debug("waited %.2fs for the next batch to be read", time.perf_counter() - waiting)
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            handoff.get_nowait()
        worker.join()
