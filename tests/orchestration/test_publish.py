"""The published copy of the marts: whole, swapped in atomically, pseudonymised, queryable."""

import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey

from orchestration.definitions import defs
from orchestration.publish import (
    IDENTIFIED_SCHEMA,
    PSEUDONYMISED_SCHEMA,
    PublishError,
    _pseudonymised_select,
    hmac_pads,
    identifier_leaks,
    publish,
    published_copy_problems,
)
from tests.pipeline import crm360

KEY = b"test pseudonym key"
TOKEN = re.compile(r"[a-z0-9._%+'-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+|\+[0-9]{6,15}")
"""An email address or an E.164 phone number inside a text."""


def mart_tables() -> list[str]:
    """The marts the publish asset waits for, as the definitions say."""
    parents = defs.resolve_asset_graph().get(AssetKey("publish")).parent_keys
    return sorted(k.path[1] for k in parents)


@pytest.fixture(scope="module")
def warehouse(pipeline, tmp_path_factory) -> Path:
    """A copy of the pipeline's warehouse, so publishing here cannot disturb other tests."""
    copy = tmp_path_factory.mktemp("publish") / "crm360.duckdb"
    shutil.copy(pipeline["warehouse"], copy)
    return copy


@pytest.fixture(scope="module")
def both(warehouse) -> Path:
    """The marts published with both schemas: pseudonymised and identified."""
    target = warehouse.parent / "both" / "published.duckdb"
    publish(warehouse, target, mart_tables(), mode="both", key=KEY, key_source="test")
    return target


def counts(path: Path, schema: str, tables: list[str]) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return {
            t: conn.execute(f'SELECT count(*) FROM {schema}."{t}"').fetchone()[0] for t in tables
        }


# --- the asset in the graph -------------------------------------------------------------


def test_publish_waits_for_every_mart_and_is_guarded_by_a_blocking_check():
    graph = defs.resolve_asset_graph()
    marts = {k for k in graph.get_all_asset_keys() if k.path[0] == "marts"}
    assert len(marts) >= 10
    node = graph.get(AssetKey("publish"))
    assert node.parent_keys == marts
    assert not node.child_keys  # last in the graph
    checks = [c for c in graph.asset_check_keys if c.asset_key == AssetKey("publish")]
    assert [c.name for c in checks] == ["every_mart_published_whole"]
    assert graph.get_check_spec(checks[0]).blocking
    assert node.assets_def.op.pool == "duckdb_warehouse"


def test_the_pipeline_run_publishes_next_to_the_warehouse(pipeline):
    assert "built publish" in pipeline["first"].stdout, pipeline["first"].stdout[-3000:]
    target = pipeline["warehouse"].parent / "published.duckdb"
    with duckdb.connect(str(target), read_only=True) as conn:
        about = conn.execute("SELECT pii_mode, pseudonym_key FROM publication.about").fetchone()
        schemas = {r[0] for r in conn.execute("SELECT schema_name FROM duckdb_tables()").fetchall()}
    assert about[0] == "pseudonymised"
    assert "random" in about[1]  # the fixture sets no CRM360_PSEUDONYM_KEY
    assert schemas == {PSEUDONYMISED_SCHEMA, "publication"}  # no raw identifiers by default
    assert (target.parent / "published_parquet" / "marts" / "customer_360.parquet").exists()


# --- whole copies -----------------------------------------------------------------------


def test_every_mart_is_published_in_both_schemas_and_as_parquet_with_equal_row_counts(
    warehouse, both
):
    tables = mart_tables()
    expected = counts(warehouse, "marts", tables)
    assert sum(expected.values()) > 1000
    assert counts(both, PSEUDONYMISED_SCHEMA, tables) == expected
    assert counts(both, IDENTIFIED_SCHEMA, tables) == expected
    parquet = both.parent / "published_parquet"
    for schema in (PSEUDONYMISED_SCHEMA, IDENTIFIED_SCHEMA):
        got = {
            t: duckdb.execute(f"SELECT count(*) FROM '{parquet / schema / t}.parquet'").fetchone()[
                0
            ]
            for t in tables
        }
        assert got == expected, schema
    assert published_copy_problems(warehouse, both, tables, "both") == []


def test_the_identified_copy_equals_the_marts_in_types_and_values(warehouse, both):
    with duckdb.connect(str(both), read_only=True) as conn:
        conn.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        for table in mart_tables():
            types = (
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                "AND schema_name = ? AND table_name = ? ORDER BY column_index"
            )
            published = conn.execute(types, ["published", IDENTIFIED_SCHEMA, table]).fetchall()
            assert published == conn.execute(types, ["wh", "marts", table]).fetchall(), table
            for a, b in (("wh.marts", IDENTIFIED_SCHEMA), (IDENTIFIED_SCHEMA, "wh.marts")):
                missing = conn.execute(
                    f'SELECT count(*) FROM (FROM {a}."{table}" EXCEPT ALL FROM {b}."{table}")'
                ).fetchone()[0]
                assert missing == 0, f"{table}: {missing} rows of {a} not in {b}"


def test_mostly_distinct_texts_are_stored_plain_and_repeated_ones_compressed(both):
    """Compressing record keys and event ids costs 3x the time of writing them plain and saves
    little; a column of a few values (the source) keeps DuckDB's compression."""
    with duckdb.connect(str(both), read_only=True) as conn:

        def storage(table: str) -> dict[str, list[str]]:
            return dict(
                conn.execute(
                    "SELECT column_name, list(DISTINCT compression) FROM "
                    f"pragma_storage_info('{table}') WHERE segment_type = 'VARCHAR' GROUP BY ALL"
                ).fetchall()
            )

        plain = storage(f"{IDENTIFIED_SCHEMA}.identity_map")
        assert plain["record_key"] == plain["source_record_id"] == ["Uncompressed"]
        assert "Uncompressed" not in plain["source"]
        hashed = storage(f"{PSEUDONYMISED_SCHEMA}.customer_identifiers")  # pseudonyms
        assert hashed["customer_identifier_id"] == hashed["identifier_value"] == ["Uncompressed"]
        assert "Uncompressed" not in hashed["identifier_type"]


def test_the_check_names_a_missing_or_short_mart(warehouse, tmp_path):
    tables = mart_tables()
    target = tmp_path / "published.duckdb"
    publish(warehouse, target, tables, mode="pseudonymised", key=KEY)
    with duckdb.connect(str(target)) as conn:
        conn.execute("DROP TABLE marts.segment_summary")
        conn.execute(
            "DELETE FROM marts.customer_360 "
            "WHERE customer_id = (SELECT min(customer_id) FROM marts.customer_360)"
        )
    problems = published_copy_problems(warehouse, target, tables, "pseudonymised")
    assert "marts.segment_summary is missing" in problems
    assert any(p.startswith("marts.customer_360 has ") for p in problems), problems


# --- identifiers ------------------------------------------------------------------------


def raw_identifiers(warehouse: Path) -> set[str]:
    """Every email address and phone number of the input, as written and normalised."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'raw' "
            "AND data_type = 'VARCHAR' AND regexp_matches(column_name, "
            "'(^|_)(email|phone|customer_number)($|_)') AND column_name NOT LIKE '%opt_out%'"
        ).fetchall()
        assert len(columns) >= 8, columns
        values = set()
        for table, column in columns:
            values |= {
                v.strip().lower()
                for (v,) in conn.execute(
                    f'SELECT DISTINCT "{column}" FROM raw."{table}" WHERE "{column}" IS NOT NULL'
                ).fetchall()
                if len(v.strip()) >= 5
            }
    return values


def identifiers_found(path: Path, schema: str, identifiers: set[str]) -> dict[str, int]:
    """``table.column`` -> values of ``schema`` that are, or contain, an input identifier."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = ? "
            "AND data_type = 'VARCHAR'",
            [schema],
        ).fetchall()
        for table, column in columns:
            hits = 0
            for (value,) in conn.execute(
                f'SELECT DISTINCT "{column}" FROM {schema}."{table}" WHERE "{column}" IS NOT NULL'
            ).fetchall():
                text = value.strip().lower()
                if text in identifiers or any(t in identifiers for t in TOKEN.findall(text)):
                    hits += 1
            if hits:
                found[f"{table}.{column}"] = hits
    return found


def test_the_pseudonymised_marts_hold_no_email_or_phone_of_the_input(warehouse, both):
    identifiers = raw_identifiers(warehouse)
    assert sum("@" in v for v in identifiers) > 500
    # the same scan finds them in the identified marts: it can see a leak
    identified = identifiers_found(both, IDENTIFIED_SCHEMA, identifiers)
    assert {"customer_360.email", "customer_360.phone", "fct_calls.customer_number"} <= set(
        identified
    ), identified
    assert identifiers_found(both, PSEUDONYMISED_SCHEMA, identifiers) == {}


def test_identical_identifiers_get_identical_keyed_pseudonyms(both):
    with duckdb.connect(str(both), read_only=True) as conn:
        pairs = conn.execute(
            f"""
            SELECT i.email, p.email FROM {IDENTIFIED_SCHEMA}.fct_email_events i
            JOIN {PSEUDONYMISED_SCHEMA}.fct_email_events p USING (email_event_id)
            WHERE i.email IS NOT NULL
            UNION
            SELECT i.email, p.email FROM {IDENTIFIED_SCHEMA}.customer_360 i
            JOIN {PSEUDONYMISED_SCHEMA}.customer_360 p USING (customer_id)
            WHERE i.email IS NOT NULL
            """
        ).fetchall()
        nulls = conn.execute(
            f"SELECT count(*) FROM {IDENTIFIED_SCHEMA}.customer_360 i JOIN "
            f"{PSEUDONYMISED_SCHEMA}.customer_360 p USING (customer_id) "
            "WHERE (i.phone IS NULL) <> (p.phone IS NULL)"
        ).fetchone()[0]
    assert len(pairs) > 500
    pseudonym_of: dict[str, set[str]] = {}
    for raw, pseudonym in pairs:
        pseudonym_of.setdefault(raw, set()).add(pseudonym)
    assert all(len(p) == 1 for p in pseudonym_of.values())  # one value, one pseudonym
    assert len({next(iter(p)) for p in pseudonym_of.values()}) == len(pseudonym_of)  # distinct
    for raw, pseudonym in pairs[:50]:  # standard HMAC-SHA256 under the key
        assert pseudonym == hmac.new(KEY, raw.encode(), hashlib.sha256).hexdigest()
    assert nulls == 0  # NULL stays NULL


def test_the_key_is_in_no_published_file(both):
    ipad, opad = hmac_pads(KEY)
    files = [both, *(both.parent / "published_parquet").rglob("*")]
    for path in (p for p in files if p.is_file()):
        data = path.read_bytes()
        assert KEY not in data and ipad not in data and opad not in data, path


def identifiers_in_bytes(data: bytes, identifiers: set[str]) -> set[str]:
    """The email addresses and E.164 numbers of ``identifiers`` anywhere in ``data``, whatever
    bytes surround them: each '@' is compared with the addresses of the domains that follow it
    (a regular expression over tens of MB of binary took minutes), each '+' and digits with
    the numbers."""
    by_domain: dict[bytes, set[bytes]] = {}
    for value in identifiers:
        if "@" in value:
            local, domain = value.encode().rsplit(b"@", 1)
            by_domain.setdefault(domain, set()).add(local)
    phones = {v.encode() for v in identifiers if re.fullmatch(r"\+[0-9]{6,15}", v)}
    found = set()
    at = data.find(b"@")
    while at != -1:
        after, before = data[at + 1 : at + 256], data[max(0, at - 64) : at]
        for domain, locals_ in by_domain.items():
            if after.startswith(domain):
                found |= {
                    (local + b"@" + domain).decode() for local in locals_ if before.endswith(local)
                }
        at = data.find(b"@", at + 1)
    for match in re.finditer(rb"\+[0-9]{6,15}", data):
        digits = match.group()
        found |= {p.decode() for p in phones if digits.startswith(p)}
    return found


def test_no_byte_of_a_pseudonymised_file_holds_the_key_or_an_identifier(warehouse, tmp_path):
    """The bytes, not the tables: DuckDB writes the unused tail of a compressed string
    segment's buffer as it finds it in memory (DuckDB issue 23382). Publishing in the process
    that hashed the identifiers put HMAC pads or raw email addresses into that tail in two of
    three publications of a 20,000-person warehouse; the file is now written by a process that
    never held either."""
    identifiers = raw_identifiers(warehouse)
    ipad, opad = hmac_pads(KEY)
    target = tmp_path / "published.duckdb"
    # the search sees an identifier amid binary bytes
    address = next(v for v in sorted(identifiers) if "@" in v)
    assert identifiers_in_bytes(b"\x00\x17ab" + address.encode() + b"\xff", identifiers) >= {
        address
    }
    for run in range(3):
        publish(warehouse, target, mart_tables(), key=KEY, run_id=f"run{run}")
        files = [target, *(tmp_path / "published_parquet").rglob("*")]
        for path in (p for p in files if p.is_file()):
            data = path.read_bytes()
            assert ipad not in data and opad not in data, path
            assert identifiers_in_bytes(data.lower(), identifiers) == set(), path


def test_hmac_in_sql_matches_python_for_short_and_long_keys():
    for key in (b"k", b"x" * 64, b"a long key " * 10):
        ipad, opad = hmac_pads(key)
        for value in ("ann@example.com", "+4915112345678", "Zoë", ""):
            got = duckdb.execute(
                "SELECT sha256($o || unhex(sha256($i || encode($v))))",
                {"i": ipad, "o": opad, "v": value},
            ).fetchone()[0]
            assert got == hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def test_a_mart_leaking_identifiers_is_not_published(warehouse, tmp_path):
    target = tmp_path / "published.duckdb"
    publish(warehouse, target, mart_tables(), key=KEY, run_id="good")
    with pytest.raises(PublishError, match=r"customer_360\.email: \d+ rows"):
        publish(
            warehouse,
            target,
            mart_tables(),
            key=KEY,
            run_id="leaky",
            pii_overrides={"customer_360": {"email": False}},
        )
    with duckdb.connect(str(target), read_only=True) as conn:
        assert conn.execute("SELECT run_id FROM publication.about").fetchone() == ("good",)
    assert (
        json.loads((tmp_path / "published_parquet" / "_publication.json").read_text())["run_id"]
        == "good"
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".published_parquet.good"
    ]


def test_repeated_values_are_hashed_once_and_every_row_gets_its_own_keyed_pseudonym():
    ipad, opad = hmac_pads(KEY)
    with duckdb.connect() as conn:
        conn.execute(
            "CREATE TABLE t AS SELECT i AS id, 'ana' || (i % 3) || '@example.com' AS email, "
            "'street ' || i AS address1, CAST(NULL AS VARCHAR) AS phone FROM range(1000) r(i)"
        )
        hidden = ["email", "address1", "phone"]
        sql, params = _pseudonymised_select(
            conn, "t", ["id", *hidden], hidden, {"ipad": ipad, "opad": opad}
        )
        # the email has 3 distinct values in 1,000 rows: hashed once each; the rest row by row
        assert conn.execute("SELECT count(*) FROM _pseudonyms").fetchone() == (3,)
        rows = conn.execute(f"SELECT * FROM ({sql}) ORDER BY id", params).fetchall()
    assert len(rows) == 1000

    def keyed(text: str) -> str:
        return hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()

    for i, email, address, phone in rows:
        assert (email, address, phone) == (
            keyed(f"ana{i % 3}@example.com"),
            keyed(f"street {i}"),
            None,
        )


def test_the_leak_guard_finds_known_identifiers_equal_or_inside_a_text_and_counts_rows_once(
    tmp_path,
):
    raw = tmp_path / "wh.duckdb"
    with duckdb.connect(str(raw)) as conn:
        conn.execute("CREATE SCHEMA raw")
        conn.execute(
            "CREATE TABLE raw.contacts AS SELECT * FROM (VALUES "
            "('ana@example.com', '+821012345678'), ('n/a', NULL)) t(email_normalized, phone_e164)"
        )
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{raw}' AS wh (READ_ONLY)")
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.t AS SELECT * FROM (VALUES "
            # equal but for case; equal and inside (one row, counted once); unknown address
            "('Ana@Example.com', 'write to ana@example.com', 'bob@example.com', 'x'),"
            "('ana@example.com', 'call +821012345678 today', 'n/a', 'y'),"
            '(NULL, \'{"to": "ANA@example.com", "cc": "bob@example.com"}\', '
            " 'Bob@example.com', " + repr(hashlib.sha256(b"ana@example.com").hexdigest()) + "),"
            "('+821012345678', NULL, NULL, 'n/a')"
            ") v(email, note, other, id)"
        )
        leaks = identifier_leaks(conn, "marts", ["t"])
        assert leaks == {"t.email": 3, "t.note": 3}
        # the known values are never left in the copy
        assert conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'known_identifiers'"
        ).fetchone() == (0,)


# --- atomic swap ------------------------------------------------------------------------

READER = textwrap.dedent(
    """
    import json, sys, time
    import duckdb

    path, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with duckdb.connect(path, read_only=True) as conn:
                run_id, total = conn.execute(
                    "SELECT run_id, total_rows FROM publication.about").fetchone()
                listed = conn.execute(
                    "SELECT schema_name, table_name, row_count FROM publication.tables").fetchall()
                actual = {
                    (s, t): conn.execute(f'SELECT count(*) FROM {s}."{t}"').fetchone()[0]
                    for s, t, _ in listed
                }
            whole = all(actual[(s, t)] == n for s, t, n in listed) and sum(
                actual.values()) == total
            print(json.dumps({"run_id": run_id, "tables": len(listed), "whole": whole}))
        except Exception as error:  # any error is what the test is looking for
            print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        sys.stdout.flush()
    """
)


def test_readers_see_a_whole_old_or_new_copy_while_publishing(warehouse, tmp_path):
    tables = mart_tables()
    target = tmp_path / "published.duckdb"
    publish(warehouse, target, tables, key=KEY, run_id="run0")
    script = tmp_path / "reader.py"
    script.write_text(READER)
    reader = subprocess.Popen(
        [sys.executable, str(script), str(target), "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the reader is in its loop
        published = ["run0"]
        for i in range(1, 5):
            mode = ("pseudonymised", "both")[i % 2]
            publish(warehouse, target, tables, mode=mode, key=KEY, run_id=f"run{i}")
            published.append(f"run{i}")
    finally:
        reader.terminate()
        out, err = reader.communicate(timeout=30)
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    errors = [a["error"] for a in answers if "error" in a]
    assert not errors, errors[:5]
    assert len(answers) >= 20, (len(answers), err[-2000:])
    assert all(a["whole"] for a in answers)
    assert {a["tables"] for a in answers} == {len(tables), 2 * len(tables)}
    seen = {a["run_id"] for a in answers}
    assert seen <= set(published) and len(seen) >= 3, seen  # it read while copies changed
    parquet = tmp_path / "published_parquet"
    assert parquet.is_symlink()
    assert json.loads((parquet / "_publication.json").read_text())["run_id"] == "run4"
    versions = sorted(p.name for p in tmp_path.glob(".published_parquet.*"))
    assert versions == [".published_parquet.run3", ".published_parquet.run4"]
    assert not list(tmp_path.glob("*.building*"))


# --- crm360 sql -------------------------------------------------------------------------


def test_crm360_sql_queries_the_published_copy_read_only(warehouse, both):
    result = crm360("sql", "--published", str(both), "select 1 as one")
    assert result.returncode == 0, result.stderr
    assert "one" in result.stdout and "│     1 │" in result.stdout

    counted = crm360(
        "sql", "--published", str(both), "select count(*) as customers from marts.customer_360"
    )
    assert str(counts(both, "marts", ["customer_360"])["customer_360"]) in counted.stdout

    # it cannot reach the pipeline's warehouse, even when asked to
    attach = crm360("sql", "--published", str(both), f"attach '{warehouse}' as w")
    assert attach.returncode == 1 and "disabled" in attach.stderr

    missing = crm360("sql", "--published", str(both.parent / "nope.duckdb"), "select 1")
    assert missing.returncode == 2 and "no published copy" in missing.stderr


def test_crm360_sql_without_a_query_is_an_interactive_prompt(both):
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "sql", "--published", str(both)],
        input="select 41 + 1\nas answer;\nselect nope;\n.tables\n.quit\nselect 'after quit';\n",
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert "answer" in result.stdout and "42" in result.stdout
    assert "nope" in result.stderr  # an error is shown, and the prompt goes on
    assert "customer_360" in result.stdout  # .tables
    assert "after quit" not in result.stdout
