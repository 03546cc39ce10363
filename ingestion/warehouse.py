"""The DuckDB warehouse file: connecting to it and the tables ingestion owns.

``raw`` holds every loaded record of each source with its lineage; ``audit`` holds what a person
needs to trust the load (which files, how many rows went where, and every rejected row);
``ingest`` holds the loader's own memory (normalised phone numbers, the hashes of loaded keys).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ingestion.sources import SOURCES, Source

DEFAULT_WAREHOUSE = Path("warehouse/crm360.duckdb")
DEFAULT_LANDING = Path("landing")

LINEAGE_COLUMNS = (
    ("_file_name", "VARCHAR NOT NULL"),
    ("_row_number", "BIGINT NOT NULL"),
    ("_file_sha256", "VARCHAR NOT NULL"),
    ("_loaded_at", "TIMESTAMP NOT NULL"),
)


def warehouse_path(override: str | os.PathLike | None = None) -> Path:
    """The warehouse file: an explicit path, else ``CRM360_WAREHOUSE``, else the default."""
    return Path(override or os.environ.get("CRM360_WAREHOUSE") or DEFAULT_WAREHOUSE)


def landing_path(override: str | os.PathLike | None = None) -> Path:
    """The landing folder: an explicit path, else ``CRM360_LANDING_DIR``, else the default."""
    return Path(override or os.environ.get("CRM360_LANDING_DIR") or DEFAULT_LANDING)


def memory_limit() -> str:
    """DuckDB memory limit for crm360's connections: ``CRM360_DUCKDB_MEMORY_LIMIT`` or 2GB."""
    return os.environ.get("CRM360_DUCKDB_MEMORY_LIMIT") or "2GB"


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that is always closed, so the next writer (dbt, another step) can open."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        # DuckDB's buffer pool defaults to 80% of RAM; bound it so a load of any size stays
        # within a predictable footprint (DuckDB spills to disk past it).
        conn.execute("SET memory_limit = ?", [memory_limit()])
        yield conn
    finally:
        conn.close()


def _stored(name: str, sql_type: str, source: Source) -> str:
    """A raw column definition. Text that is mostly distinct (ids, names, timestamps as written,
    JSON) is compressed with zstd: measured on web events, loading takes 40% less time and the
    table a seventh of the space of DuckDB's automatic choice (FSST), for scans as fast."""
    definition = f'"{name}" {sql_type}'
    if sql_type in ("VARCHAR", "JSON") and name not in source.categorical:
        definition += " USING COMPRESSION zstd"
    return definition


def raw_table_ddl(source: Source) -> str:
    columns = [_stored(name, sql_type, source) for name, _, sql_type in source.fields]
    columns += [_stored(name, sql_type, source) for name, sql_type, _ in source.derived]
    columns += [_stored(phone.column, "VARCHAR", source) for phone in source.phones]
    # _extra: the fields the contract does not list, kept whole.
    columns += [_stored("_extra", "JSON", source)]
    # lineage: a file's name and checksum repeat on each of its rows (dictionary-compressed)
    columns += [f"{name} {sql_type}" for name, sql_type in LINEAGE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {source.raw_table} (\n  " + ",\n  ".join(columns) + "\n)"


def key_index(source: Source) -> str:
    """The table of the source's loaded keys, as hashes (see :func:`key_hash_sql`)."""
    return f"ingest.{source.table}_keys"


def key_hash_sql(source: Source) -> str:
    """SQL for the 128-bit hash (MD5) of a row's key, over the raw table's key columns.

    Recognising a redelivered row means probing every key ever loaded. Probing 16-byte hashes
    takes less than half the time of scanning the raw key columns (measured: 0.37 s against
    0.93 s for 14 million web events), a cost every batch pays. The chance that two different
    keys share an MD5 is below 1e-20 even at a billion rows, far below that of a disk error.
    """
    parts = ", ".join(f"coalesce(CAST({quote_ident(k)} AS VARCHAR), chr(30))" for k in source.key)
    return f"md5_number(concat_ws(chr(31), {parts}))"


def quote_ident(name: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS audit.loaded_files (
  source VARCHAR NOT NULL,
  file_name VARCHAR NOT NULL,
  file_sha256 VARCHAR NOT NULL,
  size_bytes BIGINT NOT NULL,
  modified_at TIMESTAMP NOT NULL,
  status VARCHAR NOT NULL,          -- loaded | duplicate_file | unreadable
  duplicate_of VARCHAR,             -- for duplicate_file: the file already loaded with these bytes
  rows_in_file BIGINT NOT NULL,
  rows_loaded BIGINT NOT NULL,
  rows_quarantined BIGINT NOT NULL,
  rows_duplicate BIGINT NOT NULL,
  error VARCHAR,
  started_at TIMESTAMP NOT NULL,
  loaded_at TIMESTAMP NOT NULL,
  PRIMARY KEY (file_name, file_sha256)
);
CREATE TABLE IF NOT EXISTS audit.quarantine (
  source VARCHAR NOT NULL,
  file_name VARCHAR NOT NULL,
  row_number BIGINT,                -- line where the record starts; NULL when the whole file failed
  reason VARCHAR NOT NULL,
  raw_record VARCHAR,
  quarantined_at TIMESTAMP NOT NULL,
  file_sha256 VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest.phone_numbers (
  cleaned VARCHAR NOT NULL,
  region VARCHAR NOT NULL,          -- '' when the record had no country, or the number a '+'
  e164 VARCHAR                      -- NULL when not a valid number
);
"""


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ingestion schemas and tables if this is a new warehouse."""
    conn.execute(AUDIT_DDL)
    for source in SOURCES.values():
        conn.execute(raw_table_ddl(source))
        conn.execute(f"CREATE TABLE IF NOT EXISTS {key_index(source)} (key_hash UHUGEINT NOT NULL)")


def index_loaded_keys(conn: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Fill the source's key index from its raw table when it is empty but raw is not (a
    warehouse written before the index existed)."""
    if conn.execute(f"SELECT count(*) FROM {key_index(source)}").fetchone()[0]:
        return
    conn.execute(
        f"INSERT INTO {key_index(source)} "
        f"SELECT DISTINCT {key_hash_sql(source)} FROM {source.raw_table}"
    )
