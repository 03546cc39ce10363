"""The published warehouse: a read-only copy of the marts for analysts and BI tools.

DuckDB lets one process write a file or many read it, never both, so readers must never open
the file the pipeline writes. The ``publish`` asset runs last, after every blocking check
upstream passed, and copies the marts into ``published.duckdb`` next to the warehouse (and as
Parquet files into ``published_parquet/``). The Parquet files are written first, pseudonymised;
another process, which never holds the key, builds the DuckDB copy from them aside in the same
folder; it is then ``os.replace``-d onto the target, so a reader opening it sees the previous
copy or the new one, never a half-written one, and never holds a lock the pipeline needs.

Direct identifiers (see :data:`PII_COLUMNS`) are offered pseudonymised by HMAC-SHA256 under a
key that is only ever in the environment (``CRM360_PSEUDONYM_KEY``), in schema ``marts``, and/or
with their raw values in schema ``marts_identified`` (``CRM360_PUBLISH_PII``).
"""

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from dagster import AssetChecksDefinition, AssetKey, AssetsDefinition

PSEUDONYMISED_SCHEMA = "marts"
IDENTIFIED_SCHEMA = "marts_identified"
PUBLICATION_SCHEMA = "publication"
PII_MODES = {
    "pseudonymised": (PSEUDONYMISED_SCHEMA,),
    "identified": (IDENTIFIED_SCHEMA,),
    "both": (IDENTIFIED_SCHEMA, PSEUDONYMISED_SCHEMA),
}
"""``CRM360_PUBLISH_PII``: which schemas the published copy holds. A DuckDB file has no
per-user permissions: whoever can read the file reads every schema in it, so ``both`` is for
the few who may see raw identifiers, and the default gives everyone else pseudonyms only."""
DEFAULT_PII_MODE = "pseudonymised"

PII_COLUMNS = frozenset(
    {
        # people
        "first_name",
        "last_name",
        "traits_name",
        "date_of_birth",
        "company",
        # addresses (city, region and country stay: analysts group by them)
        "address1",
        "address2",
        "postal_code",
        # contact points, as written and normalised
        "email",
        "email_normalized",
        "traits_email",
        "traits_email_normalized",
        "phone",
        "traits_phone",
        "traits_phone_e164",
        "customer_number",
        "customer_number_e164",
        # network and free-form identifiers
        "ip",
        "identifier_value",
        "customer_identifier_id",  # customer id | type : value
    }
)
"""The one declaration of which mart columns are direct identifiers, by column name, in every
mart (a new mart with a column ``email`` is covered without a change here). A column's dbt
``meta: {pii: true}`` or ``meta: {pii: false}`` in the marts YAML overrides this list for that
model (read from the dbt manifest), so the dbt docs can carry the same facts. Free-form
columns (web event ``properties_json``, URLs) are kept: they hold products and pages, and the
leak guard (:func:`identifier_leaks`) stops a publication in which they carry a known email
address or phone number."""

_HMAC_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


class PublishError(RuntimeError):
    """Publishing stopped before the swap: the previous published copy is untouched."""


@dataclass
class PublishResult:
    target: Path
    parquet_dir: Path
    run_id: str
    pii_mode: str
    key_source: str
    rows: dict[str, int]
    """``schema.table`` -> rows in the published copy"""
    pii: dict[str, list[str]] = field(default_factory=dict)
    """table -> pseudonymised columns"""
    seconds: float = 0.0


def published_path(override: str | os.PathLike | None = None) -> Path:
    """The published copy: an explicit path, else ``CRM360_PUBLISHED``, else
    ``published.duckdb`` in the warehouse's folder."""
    from ingestion.warehouse import warehouse_path

    chosen = override or os.environ.get("CRM360_PUBLISHED")
    return Path(chosen) if chosen else warehouse_path().parent / "published.duckdb"


def parquet_dir_of(target: Path) -> Path:
    """The Parquet folder published with ``target``: ``published.duckdb`` ->
    ``published_parquet``, holding ``<schema>/<table>.parquet``."""
    return target.with_name(f"{target.stem}_parquet")


def pii_mode(value: str | None = None) -> str:
    mode = (value or os.environ.get("CRM360_PUBLISH_PII") or DEFAULT_PII_MODE).strip().lower()
    if mode not in PII_MODES:
        raise PublishError(
            f"CRM360_PUBLISH_PII is {mode!r}; expected one of {', '.join(PII_MODES)}"
        )
    return mode


def pseudonym_key() -> tuple[bytes, str]:
    """The HMAC key and where it came from. Without ``CRM360_PSEUDONYM_KEY`` each publication
    draws a random key: pseudonyms stay consistent within one published copy (joins work) but
    change at every run, and nobody, not even the operator, can reverse or recompute them."""
    env = os.environ.get("CRM360_PSEUDONYM_KEY")
    if env:
        return env.encode(), "CRM360_PSEUDONYM_KEY"
    return secrets.token_bytes(32), "random key of this publication (CRM360_PSEUDONYM_KEY unset)"


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104), so DuckDB computes
    ``sha256(opad || sha256(ipad || value))`` in SQL, vectorised, with no Python per row."""
    if len(key) > _HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_HMAC_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _hmac_sql(expr: str) -> str:
    """SQL for the hex HMAC-SHA256 of an expression's text; NULL stays NULL. The padded keys
    are query parameters ($ipad, $opad): they never appear in SQL text a view would store."""
    return f"sha256($opad || unhex(sha256($ipad || encode(CAST({expr} AS VARCHAR)))))"


REPEATED = 0.5
"""A PII column with fewer distinct values than this share of its values (the email of every
event of a person, a first name) is pseudonymised through a table of its distinct values, each
hashed once, joined back to the rows; other columns are hashed row by row. HMAC-SHA256 costs
about 0.5 µs a value; at 100,000 people the emails and IPs of 1 M email events have 82,000
distinct values, and their copy took 0.4 s instead of 1.2 s."""


def _pseudonymised_select(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    columns: Sequence[str],
    hidden: Sequence[str],
    pads: Mapping[str, bytes],
) -> tuple[str, dict[str, bytes]]:
    """SQL selecting ``columns`` of ``source`` with the ``hidden`` ones as keyed pseudonyms, and
    its parameters. Builds TEMP table ``_pseudonyms`` (in memory, never in the published file)
    for the repeated columns (:data:`REPEATED`); drop it after running the SQL."""
    measures = ", ".join(f"count({_q(c)}), approx_count_distinct({_q(c)})" for c in hidden)
    stats = conn.execute(f"SELECT {measures} FROM {source}").fetchone() if hidden else ()
    repeated = [c for i, c in enumerate(hidden) if stats[2 * i + 1] < REPEATED * stats[2 * i]]
    if repeated:
        values = " UNION ALL ".join(
            f"SELECT CAST({_q(c)} AS VARCHAR) AS v FROM {source} WHERE {_q(c)} IS NOT NULL"
            for c in repeated
        )
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _pseudonyms AS SELECT v, {_hmac_sql('v')} AS p "
            f"FROM (SELECT DISTINCT v FROM ({values}))",
            dict(pads),
        )
    select, joins = [], []
    for c in columns:
        if c in repeated:
            alias = f"_p{len(joins)}"
            joins.append(f"LEFT JOIN _pseudonyms {alias} ON {alias}.v = CAST(s.{_q(c)} AS VARCHAR)")
            select.append(f"{alias}.p AS {_q(c)}")
        elif c in hidden:
            select.append(f"{_hmac_sql(f's.{_q(c)}')} AS {_q(c)}")
        else:
            select.append(f"s.{_q(c)}")
    sql = f"SELECT {', '.join(select)} FROM {source} s {' '.join(joins)}"
    return sql, (dict(pads) if len(repeated) < len(hidden) else {})


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def manifest_pii(manifest: Path | None = None) -> dict[str, dict[str, bool]]:
    """``meta.pii`` of mart columns in the dbt manifest: model -> column -> flag."""
    if manifest is None:
        from orchestration.transform import dbt_project

        manifest = Path(dbt_project.manifest_path)
    if not manifest.exists():
        return {}
    flags: dict[str, dict[str, bool]] = {}
    for node in json.loads(manifest.read_text())["nodes"].values():
        if node.get("resource_type") != "model" or node.get("schema") != "marts":
            continue
        for name, column in node.get("columns", {}).items():
            meta = {**column.get("config", {}).get("meta", {}), **column.get("meta", {})}
            if "pii" in meta:
                flags.setdefault(node["name"], {})[name] = bool(meta["pii"])
    return flags


def pii_columns_of(
    table: str, columns: Sequence[str], overrides: Mapping[str, Mapping[str, bool]]
) -> list[str]:
    """The columns of a mart to pseudonymise: :data:`PII_COLUMNS` by name, then dbt meta."""
    flags = overrides.get(table, {})
    return [c for c in columns if flags.get(c, c.lower() in PII_COLUMNS)]


def publish(
    warehouse: Path,
    target: Path,
    tables: Sequence[str],
    *,
    mode: str = DEFAULT_PII_MODE,
    key: bytes | None = None,
    key_source: str = "given",
    pii_overrides: Mapping[str, Mapping[str, bool]] | None = None,
    run_id: str | None = None,
) -> PublishResult:
    """Copy the marts ``tables`` (names in schema ``marts`` of ``warehouse``) to ``target`` and
    to Parquet beside it, each swapped in atomically. Raises :class:`PublishError` before
    any swap when the copy is not whole; the previous copy then stays."""
    started = time.perf_counter()
    mode = pii_mode(mode)
    run_id = run_id or uuid.uuid4().hex
    if key is None:
        key, key_source = pseudonym_key()
    overrides = manifest_pii() if pii_overrides is None else pii_overrides
    warehouse, target = Path(warehouse).resolve(), Path(target).resolve()
    if warehouse == target:
        raise PublishError(f"the published copy cannot be the warehouse itself ({warehouse})")
    if not warehouse.exists():
        raise PublishError(f"no warehouse at {warehouse}: run the pipeline first")
    target.parent.mkdir(parents=True, exist_ok=True)
    aside = target.with_name(f".{target.name}.{run_id}.building")
    parquet_aside = target.with_name(f".{parquet_dir_of(target).name}.{run_id}")
    if parquet_aside.exists():  # published before under this run id: never overwrite in place
        parquet_aside = parquet_aside.with_name(f"{parquet_aside.name}-{uuid.uuid4().hex[:8]}")
    try:
        plan = _build_parquet(
            warehouse, parquet_aside, tables, mode, key, key_source, overrides, run_id
        )
        _write_file_apart(plan, aside)
        rows, pii = plan["rows"], plan["pii"]
        _refuse_wal(aside)
        os.replace(aside, target)  # readers see the old file or this one
        _swap_folder(parquet_aside, parquet_dir_of(target))
    finally:
        for leftover in (aside, Path(f"{aside}.wal")):
            leftover.unlink(missing_ok=True)
        if parquet_aside.exists() and parquet_dir_of(target).resolve() != parquet_aside:
            shutil.rmtree(parquet_aside, ignore_errors=True)
    return PublishResult(
        target=target,
        parquet_dir=parquet_dir_of(target),
        run_id=run_id,
        pii_mode=mode,
        key_source=key_source,
        rows=rows,
        pii=pii,
        seconds=round(time.perf_counter() - started, 3),
    )


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return list(_column_types(conn, table))


def _column_types(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """A mart's columns in order, each with its SQL type."""
    return dict(
        conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'wh' "
            "AND schema_name = 'marts' AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
    )


UNIQUE_TEXT = 0.5
"""A text column with at least this share of distinct values among its rows (record keys,
event ids, customer ids in a table of events) is stored uncompressed in the published copy.
DuckDB's dictionary/FSST compression finds little to share in such values and costs three
times the time of writing them plain (identity_map at 100,000 people: 1.6 s of its 1.8 s copy
went to three such columns); scans of them get faster, the file about a third larger."""


UNSURE_TEXT = UNIQUE_TEXT / 4
"""DuckDB's distinct count statistics are estimated from a sample of the inserted rows, and the
sample differs from one build to the next: one table of 3,417 rows whose column held 2,770
distinct values was estimated at 2,770 in one build and at 1,562 in another. A column estimated
between this share and UNIQUE_TEXT is counted instead (one scan of those columns)."""


def _unique_text_columns(
    conn: duckdb.DuckDBPyConnection, source: str, types: Mapping[str, str]
) -> set[str]:
    """The VARCHAR columns of ``source`` whose values are mostly distinct: from the table's
    statistics (DuckDB keeps an approximate distinct count per column: no scan), and, for the
    columns those estimate near or without a count, from a count of their values."""
    texts = [c for c, t in types.items() if t == "VARCHAR"]
    if not texts:
        return set()
    rows = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    if not rows:
        return set()
    stats = conn.execute(
        f"SELECT {', '.join(f'stats({_q(c)})' for c in texts)} FROM {source} LIMIT 1"
    ).fetchone()
    unique, unsure = set(), []
    for column, stat in zip(texts, stats, strict=True):
        distinct = stat.get("approx_unique") if isinstance(stat, dict) else None
        if distinct is not None and distinct >= UNIQUE_TEXT * rows:
            unique.add(column)
        elif distinct is None or distinct >= UNSURE_TEXT * rows:
            unsure.append(column)
    if unsure:
        counted = conn.execute(
            f"SELECT {', '.join(f'approx_count_distinct({_q(c)})' for c in unsure)} FROM {source}"
        ).fetchone()
        unique.update(c for c, n in zip(unsure, counted, strict=True) if n >= UNIQUE_TEXT * rows)
    return unique


def _create_copy(
    conn: duckdb.DuckDBPyConnection,
    target: str,
    types: Mapping[str, str],
    plain: set[str],
    select: str,
    params: Mapping[str, bytes] | None = None,
) -> None:
    """``target`` with the columns ``types`` (``plain`` ones stored uncompressed), filled by
    ``select``."""
    columns = ", ".join(
        f"{_q(c)} {t}{' USING COMPRESSION uncompressed' if c in plain else ''}"
        for c, t in types.items()
    )
    conn.execute(f"CREATE TABLE {target} ({columns})")
    conn.execute(f"INSERT INTO {target} {select}", dict(params or {}))


def _build_parquet(
    warehouse: Path,
    folder: Path,
    tables: Sequence[str],
    mode: str,
    key: bytes,
    key_source: str,
    overrides: Mapping[str, Mapping[str, bool]],
    run_id: str,
) -> dict:
    """Every published table as ``<schema>/<table>.parquet`` in ``folder``, pseudonymised here,
    plus ``_publication.json``; returns the plan :func:`write_file` builds the DuckDB copy from.

    The published DuckDB file is written by another process (:func:`_write_file_apart`), which
    never holds the key nor, pseudonymised, a raw identifier: DuckDB writes the unused tail of
    a compressed string segment's buffer to the file as it finds it in memory (DuckDB issue
    23382), and in this process that memory holds the key's HMAC pads and the raw values just
    hashed: written here, the file held pads or raw email addresses in two of three
    publications of a 20,000-person warehouse. A Parquet page is written as encoded, with no
    such tail. This connection is in memory: it writes no DuckDB file."""
    from ingestion.warehouse import connect

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ipad, opad = hmac_pads(key)
    schemas = PII_MODES[mode]
    rows: dict[str, int] = {}
    pii: dict[str, list[str]] = {}
    planned: list[dict] = []
    with connect(Path(":memory:")) as conn:  # UTC, within the pipeline's memory limit
        # a spill of the in-memory tables goes beside the copy, not into the working directory
        conn.execute(f"SET temp_directory = '{_sql_text(str(folder / '.spill'))}'")
        # The pipeline's file, read-only: steps run one at a time, so nobody writes it now.
        conn.execute(f"ATTACH '{_sql_text(str(warehouse))}' AS wh (READ_ONLY)")
        for schema in schemas:
            conn.execute(f"CREATE SCHEMA {schema}")
            (folder / schema).mkdir()

        def emit(table, expected, plain, schema, schema_types, select, params=None, copy_of=None):
            """One published ``table`` in ``schema``: its Parquet file (written, or a copy of
            schema ``copy_of``'s), checked against the warehouse's ``expected`` row count,
            readable by the leak check, and planned for the DuckDB file."""
            out = folder / schema / f"{table}.parquet"
            if copy_of is None:
                got = _write_parquet(conn, select, out, params)
            else:
                shutil.copyfile(folder / copy_of / f"{table}.parquet", out)
                got = expected
            if got != expected:
                raise PublishError(
                    f"{schema}.{table} has {got} rows in the copy, the warehouse {expected}"
                )
            rows[f"{schema}.{table}"] = got
            conn.execute(
                f"CREATE VIEW {schema}.{_q(table)} AS FROM read_parquet('{_sql_text(str(out))}')"
            )
            view_of = f"{copy_of}.{_q(table)}" if copy_of else None
            planned.append(
                {
                    "schema": schema,
                    "table": table,
                    "types": schema_types,
                    "plain": plain,
                    "parquet": str(out),
                    "view_of": view_of,
                }
            )

        for table in sorted(set(tables)):
            types = _column_types(conn, table)
            columns = list(types)
            if not columns:
                raise PublishError(
                    f"mart marts.{table} is not in the warehouse {warehouse}; "
                    "run the pipeline to build it"
                )
            source = f"wh.marts.{_q(table)}"
            expected = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            plain = sorted(_unique_text_columns(conn, source, types))

            if IDENTIFIED_SCHEMA in schemas:
                emit(table, expected, plain, IDENTIFIED_SCHEMA, types, f"FROM {source}")
            if PSEUDONYMISED_SCHEMA in schemas:
                hidden = pii_columns_of(table, columns, overrides)
                pii[table] = hidden
                if not hidden and IDENTIFIED_SCHEMA in schemas:
                    # nothing to hide beside the raw copy: one table serves both schemas
                    emit(
                        table,
                        expected,
                        plain,
                        PSEUDONYMISED_SCHEMA,
                        types,
                        None,
                        copy_of=IDENTIFIED_SCHEMA,
                    )
                else:
                    select, params = _pseudonymised_select(
                        conn, source, columns, hidden, {"ipad": ipad, "opad": opad}
                    )
                    hidden_types = {c: "VARCHAR" if c in hidden else t for c, t in types.items()}
                    emit(table, expected, plain, PSEUDONYMISED_SCHEMA, hidden_types, select, params)
                    conn.execute("DROP TABLE IF EXISTS _pseudonyms")
        if PSEUDONYMISED_SCHEMA in schemas:
            leaks = identifier_leaks(conn, PSEUDONYMISED_SCHEMA, sorted(set(tables)))
            if leaks:
                raise PublishError(
                    "raw identifiers in the pseudonymised marts (declare the columns as PII in "
                    "PII_COLUMNS of orchestration/publish.py or with dbt meta pii: true): "
                    + "; ".join(f"{where}: {n} rows" for where, n in leaks.items())
                )
    shutil.rmtree(folder / ".spill", ignore_errors=True)
    (folder / "_publication.json").write_text(
        json.dumps({"run_id": run_id, "rows": dict(rows)}, indent=2) + "\n"
    )
    return {
        "run_id": run_id,
        "mode": mode,
        "key_source": key_source,
        "schemas": list(schemas),
        "tables": planned,
        "rows": rows,
        "pii": pii,
    }


def _write_parquet(
    conn: duckdb.DuckDBPyConnection, select: str, out: Path, params: Mapping[str, bytes] | None
) -> int:
    """``select``'s rows into the Parquet file ``out``; returns how many. Rows keep their
    order. zstd at level 1: as small as the default level 3 here (415 against 418 MB at
    100,000 people) in 25% less time; snappy was as fast and 1.7x larger."""
    return conn.execute(
        f"COPY ({select}) TO '{_sql_text(str(out))}' "
        "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)",
        dict(params or {}),
    ).fetchone()[0]


def _write_file_apart(plan: Mapping, aside: Path) -> None:
    """:func:`write_file` in a new Python process: its memory never held the key."""
    for stale in (aside, Path(f"{aside}.wal")):
        stale.unlink(missing_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from orchestration.publish import write_file_main; "
            "sys.exit(write_file_main())",
        ],
        input=json.dumps({**plan, "aside": str(aside)}),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PublishError(f"writing {aside} failed: {(done.stdout + done.stderr)[-2000:]}")


def write_file_main() -> int:
    """Entry of :func:`_write_file_apart`'s process: the plan as JSON on standard input."""
    plan = json.loads(sys.stdin.read())
    write_file(plan, Path(plan["aside"]))
    return 0


def write_file(plan: Mapping, aside: Path) -> None:
    """The published DuckDB file at ``aside``, from the Parquet files of ``plan``
    (:func:`_build_parquet`): each table with its mart's column types, the mostly distinct text
    columns stored uncompressed (:data:`UNIQUE_TEXT`), and the schema ``publication``."""
    from ingestion.warehouse import connect

    with connect(aside) as conn:  # UTC, within the pipeline's memory limit, always closed
        # Kept in order, a parallel read of a Parquet file is inserted batch by batch into part
        # filled row groups: at 1,000,000 people fct_web_events took 150 row groups, 1,525 MB
        # and 29.9 s instead of 115, 1,072 MB and 19.9 s. Readers get no order from a table.
        conn.execute("SET preserve_insertion_order = false")
        for schema in plan["schemas"]:
            conn.execute(f"CREATE SCHEMA {schema}")
        for item in plan["tables"]:
            name = f"{item['schema']}.{_q(item['table'])}"
            if item["view_of"]:
                conn.execute(f"CREATE VIEW {name} AS FROM {item['view_of']}")
            else:
                source = f"FROM read_parquet('{_sql_text(item['parquet'])}')"
                _create_copy(conn, name, item["types"], set(item["plain"]), source)
            got = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            expected = plan["rows"][f"{item['schema']}.{item['table']}"]
            if got != expected:
                raise PublishError(f"{name} has {got} rows in the file, the Parquet {expected}")
        _write_publication(
            conn, plan["run_id"], plan["mode"], plan["key_source"], plan["rows"], plan["pii"]
        )
        conn.execute("CHECKPOINT")


IDENTIFIER_TOKEN = r"[a-z0-9._%+'-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+|\+[0-9]{6,15}"
"""An email address or an E.164 phone number inside a text."""


def identifier_leaks(
    conn: duckdb.DuckDBPyConnection, schema: str, tables: Sequence[str]
) -> dict[str, int]:
    """``table.column`` -> rows of the copy's ``schema`` holding an email address or phone
    number the warehouse knows (the normalised ``*email_normalized`` / ``*e164`` columns of
    ``wh.raw``): a value equal to one, or one anywhere in the text. The known
    values live in a TEMP table, in memory only: never in the published file.

    An email address has an '@' and an E.164 number a '+': only the rows whose text has one
    of them are compared (a scan for a character), so ids, pseudonyms and categories, most of
    the copy, cost no lookup. A known value with neither (an email field holding "n/a") is
    not an address to leak and not looked for."""
    sources = conn.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'wh' "
        "AND schema_name = 'raw' AND (column_name LIKE '%email_normalized' "
        "OR column_name LIKE '%e164') ORDER BY ALL"
    ).fetchall()
    if not sources:
        return {}
    union = " UNION ALL ".join(f"SELECT {_q(c)} AS v FROM wh.raw.{_q(t)}" for t, c in sources)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE known_identifiers AS SELECT DISTINCT lower(v) AS v "
        f"FROM ({union}) WHERE length(v) >= 5 AND (v LIKE '%@%' OR v LIKE '%+%')"
    )
    leaks = {}
    for table in tables:
        text_columns = [
            c
            for (c,) in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
                " AND schema_name = ? AND table_name = ? "
                "AND data_type IN ('VARCHAR', 'JSON') ORDER BY column_index",
                [schema, table],
            ).fetchall()
        ]
        if not text_columns:
            continue
        # one scan of the table: its rows with an '@' or a '+' in any text column, one
        # (row, column, text) each, then the lookups
        marked = " OR ".join(f"{_q(c)} LIKE '%@%' OR {_q(c)} LIKE '%+%'" for c in text_columns)
        values = ", ".join(f"({_sql_literal(c)}, CAST({_q(c)} AS VARCHAR))" for c in text_columns)
        found = conn.execute(
            f"""
            WITH marked AS (
                SELECT row_number() OVER () AS row_id, {", ".join(_q(c) for c in text_columns)}
                FROM {schema}.{_q(table)} WHERE {marked}
            ),
            candidates AS (
                SELECT row_id, c.name, lower(c.text) AS text
                FROM marked, (VALUES {values}) c(name, text)
                WHERE c.text LIKE '%@%' OR c.text LIKE '%+%'
            )
            SELECT name, count(DISTINCT row_id) FROM (
                SELECT row_id, name FROM candidates WHERE text IN (FROM known_identifiers)
                UNION ALL
                SELECT row_id, name FROM (
                    SELECT row_id, name, unnest(regexp_extract_all(text, $token)) AS v
                    FROM candidates
                ) WHERE v IN (FROM known_identifiers)
            )
            GROUP BY name
            """,
            {"token": IDENTIFIER_TOKEN},
        ).fetchall()
        leaks.update({f"{table}.{name}": n for name, n in sorted(found)})
    conn.execute("DROP TABLE known_identifiers")
    return leaks


def _sql_literal(value: str) -> str:
    return "'" + _sql_text(value) + "'"


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _write_publication(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    mode: str,
    key_source: str,
    rows: Mapping[str, int],
    pii: Mapping[str, Sequence[str]],
) -> None:
    """What this copy is, for readers: which run, which schemas, how many rows each table
    has (a reader can tell a whole copy from a partial one), which columns are pseudonyms."""
    conn.execute(f"CREATE SCHEMA {PUBLICATION_SCHEMA}")
    conn.execute(
        f"CREATE TABLE {PUBLICATION_SCHEMA}.about AS SELECT ? AS run_id, "
        "CAST(? AS TIMESTAMP) AS published_at, ? AS pii_mode, ? AS pseudonym_key, "
        "? AS pseudonym_method, CAST(? AS BIGINT) AS total_rows",
        [
            run_id,
            datetime.now(UTC).replace(tzinfo=None),
            mode,
            key_source,
            "hex HMAC-SHA256 of the value's text under the pseudonym key; NULL stays NULL",
            sum(rows.values()),
        ],
    )
    conn.execute(
        f"CREATE TABLE {PUBLICATION_SCHEMA}.tables "
        "(schema_name VARCHAR, table_name VARCHAR, row_count BIGINT)"
    )
    conn.executemany(
        f"INSERT INTO {PUBLICATION_SCHEMA}.tables VALUES (?, ?, ?)",
        [[*name.split(".", 1), n] for name, n in sorted(rows.items())],
    )
    conn.execute(
        f"CREATE TABLE {PUBLICATION_SCHEMA}.pseudonymised_columns "
        "(schema_name VARCHAR, table_name VARCHAR, column_name VARCHAR)"
    )
    pairs = [[PSEUDONYMISED_SCHEMA, t, c] for t, cols in sorted(pii.items()) for c in cols]
    if pairs:
        conn.executemany(
            f"INSERT INTO {PUBLICATION_SCHEMA}.pseudonymised_columns VALUES (?, ?, ?)", pairs
        )


def _refuse_wal(db: Path) -> None:
    wal = Path(f"{db}.wal")
    if wal.exists():
        raise PublishError(f"{db} still has a write-ahead log after CHECKPOINT; not swapped in")


def _swap_folder(new: Path, link: Path) -> None:
    """Point ``link`` at the folder ``new`` in one rename: ``link`` is a symlink to a versioned
    folder, replaced by a fresh symlink (a rename of a symlink is atomic; a folder cannot be
    renamed onto a non-empty one). The previous version stays until the next publication, so
    a reader in the middle of it can finish; older ones are removed."""
    previous = link.resolve() if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a real folder from elsewhere: move it aside
        os.replace(link, link.with_name(f".{link.name}.{uuid.uuid4().hex}"))
    tmp_link = link.with_name(f".{link.name}.link-{new.name}")
    tmp_link.unlink(missing_ok=True)
    os.symlink(new.name, tmp_link)
    os.replace(tmp_link, link)
    keep = {new.resolve(), previous}
    for old in link.parent.glob(f".{link.name}.*"):
        if old.is_dir() and not old.is_symlink() and old.resolve() not in keep:
            shutil.rmtree(old, ignore_errors=True)


# --- reading the published copy ---------------------------------------------------------


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    """The published copy, read-only, unable to open any other file: a query cannot ATTACH
    the pipeline's warehouse (which would lock the pipeline out) or write files."""
    if not path.exists():
        raise PublishError(
            f"no published copy at {path}: `crm360 run` writes it (or set CRM360_PUBLISHED)"
        )
    conn = duckdb.connect(str(path), read_only=True)
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_external_access = false")
    return conn


TABLES_SQL = """
SELECT schema_name, table_name, estimated_size AS approximate_rows FROM duckdb_tables()
UNION ALL SELECT schema_name, view_name, NULL FROM duckdb_views() WHERE NOT internal
ORDER BY ALL"""


def run_sql(conn: duckdb.DuckDBPyConnection, query: str, max_rows: int = 10000) -> None:
    """Run one or more statements and print the last result as a table."""
    relation = conn.sql(query)
    if relation is not None:
        relation.show(max_rows=max_rows, max_width=shutil.get_terminal_size((160, 40)).columns)


def repl(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    """A small interactive prompt: a statement runs when a line ends with ``;`` or on an empty
    line; ``.tables`` lists the tables, ``.quit`` or end of input leaves."""
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (history and line editing for input())
        print(f"crm360: {path} (read-only). End statements with ';'. .tables, .quit")
    buffer: list[str] = []
    while True:
        try:
            line = input("crm360> " if not buffer else "   ...> ") if interactive else input()
        except EOFError:
            break
        except KeyboardInterrupt:
            buffer.clear()
            print()
            continue
        command = line.strip()
        if not buffer and command in (".quit", ".exit", "\\q"):
            break
        if not buffer and command == ".tables":
            command = TABLES_SQL
        elif command:
            buffer.append(line)
            if not command.endswith(";"):
                continue
            command = "\n".join(buffer)
        elif buffer:
            command = "\n".join(buffer)
        else:
            continue
        buffer.clear()
        try:
            run_sql(conn, command)
        except duckdb.Error as error:
            print(f"error: {error}", file=sys.stderr)
    if buffer:
        try:
            run_sql(conn, "\n".join(buffer))
        except duckdb.Error as error:
            print(f"error: {error}", file=sys.stderr)
    return 0


# --- Dagster ------------------------------------------------------------------------------

PUBLISH_KEY = ("publish",)
"""The asset key of the published copy."""


def mart_keys(upstream: "Sequence[AssetsDefinition]") -> "list[AssetKey]":
    """Every asset of schema ``marts`` (dbt models keyed [schema, model], Python assets keyed
    alike): a new mart is published, and waited for, without a change here."""
    keys = {k for a in upstream for k in a.keys if len(k.path) == 2 and k.path[0] == "marts"}
    return sorted(keys, key=lambda k: k.path)


def build_publish(
    upstream: "Sequence[AssetsDefinition]",
) -> "tuple[AssetsDefinition, AssetChecksDefinition]":
    """The ``publish`` asset after every mart of ``upstream``, and its blocking check.

    Dagster is imported here, not at the top, so that ``crm360 sql`` (which uses the reading
    functions above) starts without loading it."""
    from dagster import (
        AssetCheckExecutionContext,
        AssetCheckResult,
        AssetCheckSeverity,
        AssetExecutionContext,
        AssetKey,
        MaterializeResult,
        MetadataValue,
        asset,
        asset_check,
    )

    from orchestration.ingest import WAREHOUSE_POOL
    from orchestration.resources import Published, Warehouse

    marts = mart_keys(upstream)
    tables = [k.path[1] for k in marts]

    @asset(
        key=AssetKey(PUBLISH_KEY),
        deps=marts,
        group_name="publish",
        kinds={"duckdb", "parquet"},
        pool=WAREHOUSE_POOL,
        description=(
            "The read-only published copy of the marts for analysts and BI tools "
            "(published.duckdb next to the warehouse, and published_parquet/), swapped in "
            "atomically after every blocking check upstream passed. Direct identifiers are "
            "HMAC-SHA256 pseudonyms in schema marts; raw values in marts_identified "
            "(CRM360_PUBLISH_PII). `crm360 sql` queries it."
        ),
    )
    def _publish(
        context: AssetExecutionContext, warehouse: Warehouse, published: Published
    ) -> MaterializeResult:
        key, key_source = pseudonym_key()
        if not os.environ.get("CRM360_PSEUDONYM_KEY"):
            context.log.warning(
                "CRM360_PSEUDONYM_KEY is not set: pseudonyms use a random key for this "
                "publication only and will differ at the next run"
            )
        result = publish(
            Path(warehouse.path),
            Path(published.path),
            tables,
            mode=published.pii,
            key=key,
            key_source=key_source,
            run_id=context.run.run_id,
        )
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(result.target)),
                "parquet": MetadataValue.path(str(result.parquet_dir)),
                "pii_mode": result.pii_mode,
                "pseudonym_key": result.key_source,
                "tables": len(result.rows),
                "rows": sum(result.rows.values()),
                "seconds": result.seconds,
                "published": MetadataValue.md(_published_table(result)),
            }
        )

    @asset_check(
        asset=AssetKey(PUBLISH_KEY),
        name="every_mart_published_whole",
        blocking=True,
        description=(
            "The published copy holds every mart in each published schema with the row count "
            "it has in the warehouse, and says it comes from this run."
        ),
    )
    def _check(
        context: AssetCheckExecutionContext, warehouse: Warehouse, published: Published
    ) -> AssetCheckResult:
        problems = published_copy_problems(
            Path(warehouse.path), Path(published.path), tables, pii_mode(published.pii)
        )
        return AssetCheckResult(
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(problems[:5]) or f"{len(tables)} marts published whole",
            metadata={"marts": len(tables), "problems": len(problems)},
        )

    return _publish, _check


def _published_table(result: PublishResult) -> str:
    lines = ["| table | rows | pseudonymised columns |", "|---|---|---|"]
    for name, n in sorted(result.rows.items()):
        schema, table = name.split(".", 1)
        hidden = result.pii.get(table, []) if schema == PSEUDONYMISED_SCHEMA else []
        lines.append(f"| {name} | {n} | {', '.join(hidden)} |")
    return "\n".join(lines)


def published_copy_problems(
    warehouse: Path, target: Path, tables: Sequence[str], mode: str
) -> list[str]:
    """What is missing or different in the published copy, one sentence each."""
    if not target.exists():
        return [f"no published copy at {target}"]
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        expected = {
            t: wh.execute(f"SELECT count(*) FROM marts.{_q(t)}").fetchone()[0] for t in tables
        }
    problems = []
    with duckdb.connect(str(target), read_only=True) as pub:
        present = {
            (s, t)
            for s, t in pub.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        for schema in PII_MODES[mode]:
            for table, n in expected.items():
                if (schema, table) not in present:
                    problems.append(f"{schema}.{table} is missing")
                    continue
                got = pub.execute(f"SELECT count(*) FROM {schema}.{_q(table)}").fetchone()[0]
                if got != n:
                    problems.append(f"{schema}.{table} has {got} rows, the warehouse {n}")
    return problems
