"""The loader on a temporary DuckDB file: contract rules, duplicates, exactly-once, crashes."""

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ingestion import loader
from ingestion.loader import load_source
from ingestion.sources import SOURCES
from ingestion.warehouse import connect, key_hash_sql, key_index
from quality.accounting import account_source

CONTACT_HEADER = (
    "contact_id,first_name,last_name,email,phone,company,address1,city,postal_code,country,"
    "date_of_birth,lifecycle_stage,email_opt_out,created_at,updated_at"
)
CALL_HEADER = (
    "call_id,direction,customer_number,country,agent_id,queue,started_at,answered_at,ended_at,"
    "disposition,csat"
)


def write(landing: Path, name: str, content: str | bytes) -> Path:
    path = landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return path


def jsonl(*records) -> str:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
    )


def load_all(db: Path, landing: Path) -> dict:
    with connect(db) as conn:
        return {name: load_source(conn, name, landing) for name in SOURCES}


def quarantine(db: Path) -> list[tuple]:
    with connect(db, read_only=True) as conn:
        return conn.execute(
            "SELECT source, file_name, row_number, reason FROM audit.quarantine "
            "ORDER BY file_name, row_number"
        ).fetchall()


def email(event_id, **fields):
    record = {
        "event": "open",
        "email": "a@example.com",
        "timestamp": 1748745600,
        "sg_event_id": event_id,
    }
    record.update(fields)
    return record


def web(message_id, **fields):
    record = {
        "type": "page",
        "messageId": message_id,
        "anonymousId": "anon-1",
        "timestamp": "2025-06-01T01:20:00.120Z",
    }
    record.update(fields)
    return record


def order(order_id, **fields):
    record = {
        "id": order_id,
        "created_at": "2025-06-01T10:30:00+09:00",
        "currency": "KRW",
        "total_price": "59000.00",
    }
    record.update(fields)
    return record


@pytest.fixture
def landing(tmp_path):
    return tmp_path / "landing"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "warehouse" / "crm360.duckdb"


def test_every_malformed_jsonl_case_is_quarantined_with_its_reason(landing, db):
    write(
        landing,
        "email/e1.jsonl",
        jsonl(
            email("ok-1"),
            '{"event":"open","email":"a@example.com",',  # truncated line
            "[1, 2]",  # not an object
            email("bad-ts", timestamp="yesterday"),
            email("bad-event", event="opened"),
            {k: v for k, v in email("no-email").items() if k != "email"},
            email(""),  # empty required id
            email("null-ts", timestamp=None),
            email("far-ts", timestamp=1e18),  # a number no timestamp holds
            email("nan-ts", timestamp="NaN"),
        ),
    )
    write(
        landing,
        "web/w1.jsonl",
        jsonl(
            web("w-ok"),
            web("w-type", type="screen"),
            web("w-ts", timestamp="31/12/2025 25:61"),
            {k: v for k, v in web("w-anon").items() if k != "anonymousId"},
            web("w-user", anonymousId=None, userId=7001),  # numeric userId is fine
        ),
    )
    write(
        landing,
        "orders/o1.jsonl",
        jsonl(
            order(1),
            order(2, currency="₩"),
            order(3, created_at="not-a-date"),
            {k: v for k, v in order(4).items() if k != "currency"},
        ),
    )
    (landing / "email" / "e2.jsonl").write_bytes(
        json.dumps(email("ok-2")).encode() + b"\n" + b'{"event":"open","email":"\xff"}\n'
    )
    load_all(db, landing)
    reasons = {(f, n): r for _, f, n, r in quarantine(db)}
    assert reasons == {
        ("email/e1.jsonl", 2): "line is not valid JSON",
        ("email/e1.jsonl", 3): "line is a JSON array, expected an object",
        ("email/e1.jsonl", 4): "timestamp is not Unix seconds: yesterday",
        ("email/e1.jsonl", 5): "event opened is not one of processed, delivered, open, click, "
        "bounce, dropped, deferred, unsubscribe, spamreport",
        ("email/e1.jsonl", 6): "required field email is missing or empty",
        ("email/e1.jsonl", 7): "required field sg_event_id is missing or empty",
        ("email/e1.jsonl", 8): "required field timestamp is missing or empty",
        ("email/e1.jsonl", 9): "timestamp is not Unix seconds: 1e+18",
        ("email/e1.jsonl", 10): "timestamp is not Unix seconds: NaN",
        ("email/e2.jsonl", 2): "row is not valid UTF-8",
        ("orders/o1.jsonl", 2): "currency ₩ is not a three-letter ISO 4217 code",
        ("orders/o1.jsonl", 3): "created_at is not an ISO 8601 timestamp: not-a-date",
        ("orders/o1.jsonl", 4): "required field currency is missing or empty",
        ("web/w1.jsonl", 2): "type screen is not one of page, track, identify",
        ("web/w1.jsonl", 3): "timestamp is not an ISO 8601 timestamp: 31/12/2025 25:61",
        ("web/w1.jsonl", 4): "neither anonymousId nor userId is present",
    }
    with connect(db, read_only=True) as conn:
        assert conn.execute(
            "SELECT user_id FROM raw.web_events WHERE message_id = 'w-user'"
        ).fetchone() == ("7001",)
        bad_bytes = conn.execute(
            "SELECT raw_record FROM audit.quarantine WHERE reason LIKE '%UTF-8%'"
        ).fetchone()[0]
        assert bad_bytes == '{"event":"open","email":"\ufffd"}'


def test_every_malformed_csv_case_is_quarantined_and_good_rows_load(landing, db):
    write(
        landing,
        "contacts/c1.csv",
        "\n".join(
            [
                CONTACT_HEADER + ",hs_lead_status",
                "C-1,서연,김,Seoyeon.Kim@Example.com ,010-2345-6789,,12 Sejong-daero,Seoul,"
                "04524,KR,"
                "1990-03-14,customer,false,2025-01-05T09:12:00Z,2025-06-01T10:00:00+09:00,OPEN",
                "C-2,too,few",
                ",no,id,,,,,,,,,,,2025-01-05T09:12:00Z,2025-06-01T10:00:00Z,",
                "C-3,bad,created,,,,,,,,,,,not-a-date,2025-06-01T10:00:00Z,",
                'C-4,"Jonas ""JJ""",Petraitis,j@x.lt,8 612 34567,,"Gedimino pr. 1\napt 2",Vilnius,'
                "01103,LT,19850102,lead,true,2025-01-05T09:12:00Z,2025-06-01T10:00:00Z,",
                'C-5,"never closed,,,,,,,,,,,,2025-01-05T09:12:00Z,2025-06-01T10:00:00Z,',
            ]
        )
        + "\n",
    )
    write(
        landing,
        "calls/k1.csv.gz",
        "\n".join(
            [
                CALL_HEADER,
                "CA-1,inbound,+82 10-2345-6789,KR,ag-7,billing,2025-06-01T01:02:03Z,,,abandoned,",
                "CA-2,inbound,anonymous,KR,ag-7,billing,2025-06-01T01:02:03Z,,,abandoned,",
                "CA-3,inbound,,KR,ag-7,billing,2025-06-01T01:02:03Z,,,abandoned,",
                "CA-4,inbound,0101234,KR,ag-7,billing,,,,abandoned,",
                "CA-5,inbound,02-123-4567,KR,ag-7,billing,2025-06-01T01:02:03Z,garbage,,odd,9",
            ]
        )
        + "\n",
    )
    load_all(db, landing)
    reasons = {(f, n): r for _, f, n, r in quarantine(db)}
    assert reasons == {
        ("contacts/c1.csv", 3): "row has 3 fields; the header has 16",
        ("contacts/c1.csv", 4): "required field contact_id is missing or empty",
        ("contacts/c1.csv", 5): "created_at is not an ISO 8601 timestamp: not-a-date",
        ("contacts/c1.csv", 8): "row has a quoted field that is never closed",
        ("calls/k1.csv.gz", 3): "customer_number has no digits: anonymous",
        ("calls/k1.csv.gz", 4): "required field customer_number is missing or empty",
        ("calls/k1.csv.gz", 5): "required field started_at is missing or empty",
    }
    with connect(db, read_only=True) as conn:
        contacts = conn.execute(
            "SELECT contact_id, first_name, address1, email_normalized, phone_e164, _row_number, "
            "_extra->>'hs_lead_status', updated_at_utc::VARCHAR FROM raw.contacts ORDER BY 1"
        ).fetchall()
        # an optional field that is malformed (answered_at, csat) keeps the row
        calls = conn.execute(
            "SELECT call_id, answered_at, customer_number_e164 FROM raw.calls ORDER BY 1"
        ).fetchall()
    assert contacts == [
        (
            "C-1",
            "서연",
            "12 Sejong-daero",
            "seoyeon.kim@example.com",
            "+821023456789",
            2,
            "OPEN",
            "2025-06-01 01:00:00",
        ),
        (
            "C-4",
            'Jonas "JJ"',
            "Gedimino pr. 1\napt 2",
            "j@x.lt",
            "+37061234567",
            6,
            None,
            "2025-06-01 10:00:00",
        ),
    ]
    assert calls == [("CA-1", None, "+821023456789"), ("CA-5", "garbage", "+8221234567")]


def test_a_renamed_required_column_quarantines_every_row_with_the_reason(landing, db):
    write(
        landing,
        "contacts/renamed.csv",
        CONTACT_HEADER.replace("contact_id", "id")
        + "\n"
        + "1,a,b,,,,,,,,,,,2025-01-01,2025-01-01\n",
    )
    load_all(db, landing)
    [(_, _, row, reason)] = quarantine(db)
    assert row == 2
    assert reason.startswith("required column contact_id is missing from the header (columns: id,")


def test_duplicates_within_and_across_files_are_counted_not_loaded(landing, db):
    write(landing, "email/a.jsonl", jsonl(email("e1"), email("e2"), email("e1")))
    write(landing, "email/b.jsonl.gz", jsonl(email("e2"), email("e3")))
    write(
        landing,
        "contacts/a.csv",
        "\n".join(
            [
                CONTACT_HEADER,
                "C-1,A,B,,,,,,,,,,,2025-01-01T00:00:00Z,2025-06-01T10:00:00+09:00",
                "C-1,A,B,,,,,,,,,,,2025-01-01T00:00:00Z,2025-06-01T01:00:00Z",  # same instant
                "C-1,A,B,,,,,,,lead,,,,2025-01-01T00:00:00Z,2025-06-02T01:00:00Z",  # a new version
            ]
        )
        + "\n",
    )
    results = load_all(db, landing)
    counts = {
        r.file_name: (r.rows_in_file, r.rows_loaded, r.rows_quarantined, r.rows_duplicate)
        for rs in results.values()
        for r in rs
    }
    assert counts == {
        "email/a.jsonl": (3, 2, 0, 1),
        "email/b.jsonl.gz": (2, 1, 0, 1),
        "contacts/a.csv": (3, 2, 0, 1),
    }
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.email_events").fetchone() == (3,)
        for source in SOURCES.values():
            assert account_source(conn, source).passed


def test_rows_sharing_a_phone_number_each_load_once(landing, db):
    rows = [
        f"CA-{i},inbound,{number},US,a,q,2025-06-01T00:0{i}:00Z,,,,"
        for i, number in enumerate(["+1 415 555 0142", "(415) 555-0142", "+1 415 555 0142"])
    ]
    write(landing, "calls/a.csv", "\n".join([CALL_HEADER, *rows]) + "\n")
    (result,) = load_all(db, landing)["calls"]
    assert (result.rows_loaded, result.rows_duplicate) == (3, 0)
    with connect(db, read_only=True) as conn:
        assert conn.execute(
            "SELECT call_id, customer_number_e164 FROM raw.calls ORDER BY call_id"
        ).fetchall() == [(f"CA-{i}", "+14155550142") for i in range(3)]
        assert conn.execute(
            "SELECT count(*), count(DISTINCT (cleaned, region)) FROM ingest.phone_numbers"
        ).fetchone() == (2, 2)


def test_a_number_written_with_plus_is_parsed_once_for_every_country(landing, db):
    rows = [
        f"CA-{i},inbound,{number},{country},a,q,2025-06-01T00:0{i}:00Z,,,,"
        for i, (number, country) in enumerate(
            [("+1 415 555 0142", "US"), ("+1-415-555-0142", "GB"), ("+14155550142", ""),
             ("(415) 555-0142", "US"), ("00 1 415 555 0142", "DE")]
        )
    ]  # fmt: skip
    write(landing, "calls/a.csv", "\n".join([CALL_HEADER, *rows]) + "\n")
    load_all(db, landing)
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT DISTINCT customer_number_e164 FROM raw.calls").fetchall() == [
            ("+14155550142",)
        ]
        assert conn.execute("FROM ingest.phone_numbers ORDER BY ALL").fetchall() == [
            ("+14155550142", "", "+14155550142"),
            ("0014155550142", "DE", "+14155550142"),
            ("4155550142", "US", "+14155550142"),
        ]


def test_the_key_index_holds_each_loaded_key_and_is_rebuilt_when_missing(landing, db):
    write(landing, "web/a.jsonl", jsonl(web("m1"), web("m2"), web("m1")))
    write(landing, "orders/a.jsonl", jsonl(order(1), order(1, updated_at="2025-06-02T00:00:00Z")))
    load_all(db, landing)

    def index_matches_raw() -> bool:
        with connect(db, read_only=True) as conn:
            return all(
                conn.execute(f"FROM {key_index(s)} ORDER BY ALL").fetchall()
                == conn.execute(
                    f"SELECT {key_hash_sql(s)} FROM {s.raw_table} ORDER BY 1"
                ).fetchall()
                for s in SOURCES.values()
            )

    assert index_matches_raw()
    with connect(db) as conn:  # a warehouse written before the index existed
        conn.execute(f"DELETE FROM {key_index(SOURCES['web'])}")
    write(landing, "web/b.jsonl", jsonl(web("m2"), web("m3")))
    (result,) = load_all(db, landing)["web"]
    assert (result.rows_loaded, result.rows_duplicate) == (1, 1)
    assert index_matches_raw()


def test_same_bytes_under_another_name_and_a_rerun_load_nothing(landing, db):
    write(landing, "orders/day1.jsonl", jsonl(order(1), order(2)))
    load_all(db, landing)
    write(landing, "orders/day1-resend.jsonl", jsonl(order(1), order(2)))
    second = load_all(db, landing)["orders"]
    assert [(r.file_name, r.status, r.duplicate_of, r.rows_duplicate) for r in second] == [
        ("orders/day1-resend.jsonl", "duplicate_file", "orders/day1.jsonl", 2)
    ]
    assert all(not rs for rs in load_all(db, landing).values())
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.orders").fetchone() == (2,)
        assert account_source(conn, SOURCES["orders"]).passed


def test_an_unreadable_file_is_quarantined_and_others_still_load(landing, db):
    write(landing, "web/good.jsonl", jsonl(web("m1")))
    payload = gzip.compress(jsonl(web("m2"), web("m3")).encode())
    (landing / "web" / "broken.jsonl.gz").write_bytes(payload[: len(payload) - 6])
    results = load_all(db, landing)["web"]
    assert {r.file_name: r.status for r in results} == {
        "web/broken.jsonl.gz": "unreadable",
        "web/good.jsonl": "loaded",
    }
    [(source, name, row, reason)] = quarantine(db)
    assert (source, name, row) == ("web", "web/broken.jsonl.gz", None)
    assert reason.startswith("file cannot be read: cannot decompress gzip file")


def test_unknown_fields_are_kept(landing, db):
    write(landing, "web/w.jsonl", jsonl(web("m1", integrations={"All": True})))
    load_all(db, landing)
    with connect(db, read_only=True) as conn:
        kept = conn.execute("SELECT _extra->'integrations'->>'All' FROM raw.web_events").fetchone()[
            0
        ]
    assert kept == "true"


UNKNOWN = {
    "integrations": {"All": True, "Mixpanel": False},
    "sentAt": None,  # present with null: kept as null, not dropped
    "a/b": 1,  # characters that JSON pointers escape
    "t~x": [1, "two"],
    'say "hi"': "é\n",
    "키": "값",
}


@pytest.mark.parametrize(
    ("max_keys", "more"),
    [
        (loader.MAX_EXTRA_KEYS, []),
        # keys that differ only in case cannot be fields of one struct: extracted one by one
        (loader.MAX_EXTRA_KEYS, [web("m6", SentAt="x", USERID="u")]),
        # nor can an empty key or one with a control character
        (loader.MAX_EXTRA_KEYS, [web("m6", **{"": 1, "tab\there": 2})]),
        (2, []),  # more unknown keys than MAX_EXTRA_KEYS: removed from the whole document
    ],
    ids=["read-with-the-fields", "keys-differing-in-case", "odd-keys", "many-keys"],
)
def test_unknown_fields_are_kept_exactly(landing, db, monkeypatch, max_keys, more):
    """_extra holds exactly the fields the contract does not list, with their values as
    written, whatever the keys look like and whether the record holds a null anywhere; a record
    without unknown fields has none. Lines that are not JSON in the same file change nothing."""
    monkeypatch.setattr(loader, "MAX_EXTRA_KEYS", max_keys)
    records = [
        web("m1", **UNKNOWN),
        web("m2"),  # no unknown field
        web("m3", sentAt="2025-06-01T01:20:01Z"),
        web("m4", userId="u-4", properties={"sentAt": 1}),  # a known field's own keys stay there
        web("m5", event=None, sentAt="annulled", integrations={"null": None}),  # nulls elsewhere
        *more,
    ]
    write(landing, "web/w.jsonl", jsonl(records[0], "{not json", *records[1:], '{"type": nul'))
    load_all(db, landing)
    with connect(db, read_only=True) as conn:
        got = dict(
            conn.execute("SELECT message_id, _extra::VARCHAR FROM raw.web_events").fetchall()
        )
    assert [reason for *_, reason in quarantine(db)] == ["line is not valid JSON"] * 2
    known = {key for _, key, _ in SOURCES["web"].fields}
    for record in records:
        expected = {k: v for k, v in record.items() if k not in known} or None
        extra = got[record["messageId"]]
        assert (json.loads(extra) if extra is not None else None) == expected, record


def snapshot(db: Path) -> dict[str, list]:
    """Every ingestion table without its load timestamps, in a stable order."""
    with connect(db, read_only=True) as conn:
        out = {}
        for source in SOURCES.values():
            out[source.raw_table] = conn.execute(
                f"SELECT * EXCLUDE (_loaded_at) FROM {source.raw_table} ORDER BY ALL"
            ).fetchall()
        out["quarantine"] = conn.execute(
            "SELECT * EXCLUDE (quarantined_at) FROM audit.quarantine ORDER BY ALL"
        ).fetchall()
        out["files"] = conn.execute(
            "SELECT source, file_name, file_sha256, status, duplicate_of, rows_in_file, "
            "rows_loaded, rows_quarantined, rows_duplicate FROM audit.loaded_files ORDER BY ALL"
        ).fetchall()
        out["phones"] = conn.execute("FROM ingest.phone_numbers ORDER BY ALL").fetchall()
        for source in SOURCES.values():
            out[key_index(source)] = conn.execute(
                f"FROM {key_index(source)} ORDER BY ALL"
            ).fetchall()
    return out


CRASH_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from ingestion import loader
    from ingestion.warehouse import connect

    calls = {"n": 0}
    original = loader._BatchLoader._quarantine

    def crash_on_second_batch(self):
        calls["n"] += 1
        if calls["n"] == 2:
            os._exit(17)  # the process dies mid-transaction, after the raw insert
        return original(self)

    loader._BatchLoader._quarantine = crash_on_second_batch
    with connect(Path(sys.argv[1])) as conn:
        for source in ("contacts", "email", "calls", "web", "orders"):
            loader.load_source(conn, source, Path(sys.argv[2]))
""")


@pytest.mark.parametrize(
    ("batch_mb", "committed"),
    [
        # One file per batch: the first email file committed, the second died with the process.
        ("0", ["email/a.jsonl"]),
        # Default batches: all email files were one batch and committed; the calls batch died.
        ("192", ["email/a.jsonl", "email/b.jsonl", "email/c.jsonl.gz"]),
    ],
)
def test_a_crash_mid_load_then_a_rerun_equals_one_clean_run(landing, tmp_path, batch_mb, committed):
    write(landing, "email/a.jsonl", jsonl(email("e1"), email("e2"), "{bad"))
    write(landing, "email/b.jsonl", jsonl(email("e2"), email("e3"), email("e4")))
    write(landing, "email/c.jsonl.gz", jsonl(email("e5")))
    write(
        landing,
        "calls/k.csv",
        CALL_HEADER + "\nCA-1,inbound,+1 415 555 0142,US,a,q,2025-06-01T00:00:00Z,,,,\n",
    )
    crashed, clean = tmp_path / "crashed.duckdb", tmp_path / "clean.duckdb"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(crashed), str(landing)],
        capture_output=True,
        text=True,
        env={**os.environ, "CRM360_INGEST_BATCH_MB": batch_mb},
    )
    assert proc.returncode == 17, proc.stderr
    with connect(crashed, read_only=True) as conn:  # whole batches committed, the last one not
        assert conn.execute(
            "SELECT file_name FROM audit.loaded_files ORDER BY file_name"
        ).fetchall() == [(name,) for name in committed]
        assert conn.execute("SELECT count(*) FROM raw.calls").fetchone() == (0,)
    load_all(crashed, landing)
    load_all(clean, landing)
    assert snapshot(crashed) == snapshot(clean)


def test_prefetching_hands_over_every_batch_in_order_and_raises_the_readers_error():
    def batches():
        yield ["first"]
        yield ["second"]
        raise OSError("landing disk went away")

    seen = []
    with pytest.raises(OSError, match="landing disk went away"):
        for batch in loader._prefetched(batches()):
            seen.append(batch)
    assert seen == [["first"], ["second"]]


def test_a_consumer_that_stops_early_does_not_leave_the_reader_waiting():
    batches = loader._prefetched(iter([[1], [2], [3], [4]]))
    assert next(batches) == [1]
    batches.close()  # runs the generator's cleanup: the reader thread must finish
    assert not any(t.name == "crm360-prefetch" for t in threading.enumerate())


def test_the_reader_stays_at_most_one_batch_ahead_of_the_load():
    """A batch holds up to CRM360_INGEST_BATCH_MB of data (and its framed copy): at most two may
    be in memory, the one loading and the one read ahead, never a third read while the second
    waits."""
    read = []

    def batches():
        for n in range(6):
            read.append(n)
            yield [n]

    ahead = []
    for batch in loader._prefetched(batches()):
        time.sleep(0.05)  # loading: the reader has time to read as far ahead as it may
        ahead.append(len(read) - (batch[0] + 1))
    assert max(ahead) == 1  # it reads ahead (the overlap), but one batch only


def test_loading_never_rewrites_what_earlier_batches_wrote(landing, db):
    """Each batch appends its own row groups; the checkpoint that ends the load must not merge
    the partly filled ones by rewriting the table (at 1M people that rewrite was 13% of loading
    web events), and the connection's settings are the caller's again afterwards."""
    line = json.dumps(web("m-%d-%d", anonymousId="a")) + "\n"
    for day in range(2):  # each file more than two row groups (122,880 rows), written as such
        write(landing, f"web/day-{day}.jsonl", "".join(line % (day, i) for i in range(300_000)))
    names = "('max_vacuum_tasks', 'checkpoint_threshold', 'preserve_insertion_order')"
    with connect(db) as conn:
        before = conn.execute(f"SELECT name, value FROM duckdb_settings() WHERE name IN {names}")
        before = before.fetchall()
        load_source(conn, "web", landing, max_batch_bytes=1)  # one file per batch
        after = conn.execute(f"SELECT name, value FROM duckdb_settings() WHERE name IN {names}")
        after = after.fetchall()
        size = conn.execute("SELECT free_blocks FROM pragma_database_size()").fetchone()
        assert conn.execute("SELECT count(*) FROM raw.web_events").fetchone() == (600_000,)
    assert size == (0,)  # no block was written twice
    assert after == before
