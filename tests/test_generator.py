"""Tests of the sample-data generator: formats, truth consistency, populations, determinism."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import phonenumbers
import pytest

from ingestion.generator import generate
from ingestion.generator.streams import refund_of_line
from ingestion.sources import EMAIL_EVENTS

START = date(2025, 1, 1)
SOURCES = ("contacts", "email", "calls", "web", "orders")


def landing_files(root: Path) -> list[Path]:
    return sorted(p for s in SOURCES for p in (root / s).glob("*") if p.is_file())


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def load_truth(root: Path) -> tuple[list[dict], list[dict], list[dict]]:
    with gzip.open(root / "_truth/records.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    with open(root / "_truth/files.csv", encoding="utf-8", newline="") as fh:
        files = list(csv.DictReader(fh))
    with gzip.open(root / "_truth/people.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        people = list(csv.DictReader(fh))
    return records, files, people


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    generate(root, 2000, seed=7, start=START, days=30, workers=1)
    return root


@pytest.fixture(scope="module")
def truth(gen: Path) -> tuple[list[dict], list[dict], list[dict]]:
    return load_truth(gen)


def test_deterministic_bytes_and_worker_independent(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, 2300, seed=3, start=START, days=12, workers=1)
    generate(b, 2300, seed=3, start=START, days=12, workers=2)
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert fa == fb and fa
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    gz = [p for p in landing_files(a) if p.suffix == ".gz"]
    assert gz
    for p in gz:
        head = p.read_bytes()[:10]
        assert head[4:8] == b"\0\0\0\0" and not head[3] & 0x08  # mtime 0, no file name


def test_days_prefix_property(tmp_path: Path) -> None:
    a, b = tmp_path / "d10", tmp_path / "d11"
    generate(a, 600, seed=5, start=START, days=10, workers=1)
    generate(b, 600, seed=5, start=START, days=11, workers=1)
    fa = {p.relative_to(a): p.read_bytes() for p in landing_files(a)}
    fb = {p.relative_to(b): p.read_bytes() for p in landing_files(b)}
    for rel, data in fa.items():
        assert fb.get(rel) == data, rel
    extra = set(fb) - set(fa)
    assert extra and all("2025-01-11" in str(p) for p in extra)


def test_files_csv_agrees_with_records(gen: Path, truth) -> None:
    records, files, _ = truth
    per_file: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        per_file[r["file_name"]][r["expected"]] += 1
    on_disk = {str(p.relative_to(gen)) for p in landing_files(gen)}
    assert on_disk == {f["file_name"] for f in files}
    for f in files:
        c = per_file[f["file_name"]]
        assert int(f["rows"]) == sum(c.values())
        assert int(f["loaded"]) == c["loaded"]
        assert int(f["quarantined"]) == c["quarantined"]
        assert int(f["duplicate"]) == c["duplicate"]
        if f["unreadable"] == "false" and not f["duplicate_of"]:
            header = 1 if f["source"] in ("contacts", "calls") else 0
            assert len(read_lines(gen / f["file_name"])) == int(f["rows"]) + header
    assert all(r["expected"] in ("loaded", "quarantined", "duplicate") for r in records)
    assert all(bool(r["reason"]) == (r["expected"] != "loaded") for r in records)


def test_duplicate_file_and_unreadable_gzip(gen: Path, truth) -> None:
    records, files, _ = truth
    dups = [f for f in files if f["duplicate_of"]]
    assert len(dups) == 1
    d = dups[0]
    assert (gen / d["file_name"]).read_bytes() == (gen / d["duplicate_of"]).read_bytes()
    assert d["file_name"] > d["duplicate_of"]
    assert {r["reason"] for r in records if r["file_name"] == d["file_name"]} == {"duplicate_file"}
    bad = [f for f in files if f["unreadable"] == "true"]
    assert len(bad) == 1 and bad[0]["rows"] == "0"
    with pytest.raises((EOFError, OSError, zlib.error)):
        gzip.decompress((gen / bad[0]["file_name"]).read_bytes())
    assert not [r for r in records if r["file_name"] == bad[0]["file_name"]]


def test_short_runs_have_no_unreadable_file(tmp_path: Path) -> None:
    generate(tmp_path, 300, seed=1, start=START, days=9, workers=1)
    _, files, _ = load_truth(tmp_path)
    assert not [f for f in files if f["unreadable"] == "true"]


def _rows_by_file(records: list[dict]) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in records:
        out[r["file_name"]][int(r["row_number"])] = r
    return out


def test_csv_files_parse_and_match_truth(gen: Path, truth) -> None:
    records, files, _ = truth
    by_file = _rows_by_file(records)
    for src in ("contacts", "calls"):
        for path in (gen / src).glob("*"):
            name = str(path.relative_to(gen))
            raw = b"\n".join(read_lines(path)) + b"\n"
            text = raw.decode("utf-8", "surrogateescape")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            header = rows[0]
            assert header[0] in ("contact_id", "call_id")
            truth_rows = by_file[name]
            assert sorted(truth_rows) == list(range(2, len(rows) + 1))
            for line_no, row in enumerate(rows[1:], start=2):
                t = truth_rows[line_no]
                if t["reason"] == "wrong_field_count":
                    assert len(row) != len(header)
                    continue
                assert len(row) == len(header), (name, line_no)
                rec = dict(zip(header, row, strict=True))
                if t["expected"] != "quarantined":
                    assert rec[header[0]] == t["source_record_id"]
                    if src == "calls":
                        assert re.search(r"\d", rec["customer_number"])
                        _ts(rec["started_at"])
                    else:
                        _ts(rec["created_at"])
                        _ts(rec["updated_at"])


def _ts(value: str) -> datetime:
    """Parse like a TIMESTAMPTZ cast would (naive values allowed)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


REQUIRED = {
    "email": ("event", "email", "timestamp", "sg_event_id"),
    "web": ("type", "messageId", "timestamp"),
    "orders": ("id", "created_at", "currency"),
}
KEY = {"email": "sg_event_id", "web": "messageId", "orders": "id"}


def test_jsonl_rows_match_truth(gen: Path, truth) -> None:
    records, files, _ = truth
    by_file = _rows_by_file(records)
    end = datetime(2025, 1, 31).timestamp()
    begin = datetime(2025, 1, 1).timestamp()
    for f in files:
        src = f["source"]
        if src not in REQUIRED or f["unreadable"] == "true":
            continue
        lines = read_lines(gen / f["file_name"])
        rows = by_file[f["file_name"]]
        assert sorted(rows) == list(range(1, len(lines) + 1))
        for i, line in enumerate(lines, start=1):
            t = rows[i]
            if t["expected"] == "quarantined" and f["duplicate_of"] == "":
                if t["reason"] == "invalid_utf8":
                    with pytest.raises(UnicodeDecodeError):
                        line.decode("utf-8")
                elif t["reason"] == "invalid_json":
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(line)
                elif t["reason"] == "not_object":
                    assert not isinstance(json.loads(line), dict)
                continue
            if t["expected"] == "quarantined":
                continue
            obj = json.loads(line)
            assert isinstance(obj, dict)
            for field in REQUIRED[src]:
                assert obj.get(field) not in (None, ""), (f["file_name"], i, field)
            assert str(obj[KEY[src]]) == t["source_record_id"]
            if src == "email":
                assert obj["event"] in EMAIL_EVENTS
                assert begin <= float(obj["timestamp"]) < end
            elif src == "web":
                assert obj["type"] in ("page", "track", "identify")
                assert obj.get("anonymousId") or obj.get("userId")
                assert begin <= _ts(obj["timestamp"]).timestamp() < end
            else:
                assert re.fullmatch(r"[A-Z]{3}", obj["currency"])
                assert begin <= _ts(obj["created_at"]).timestamp() < end


def test_noise_and_malformed_rows_in_every_source(truth) -> None:
    records, _, _ = truth
    reasons = Counter((r["source"], r["expected"], r["reason"]) for r in records)
    for src in SOURCES:
        assert any(k[0] == src and k[1] == "quarantined" for k in reasons), src
    assert reasons[("email", "duplicate", "redelivery")] > 0
    assert reasons[("web", "duplicate", "retry")] > 0
    assert reasons[("contacts", "duplicate", "unchanged_version")] > 0
    assert reasons[("orders", "duplicate", "unchanged_version")] > 0
    total = len(records)
    bad = sum(v for k, v in reasons.items() if k[1] == "quarantined")
    assert 0.001 < bad / total < 0.01


def _jsonl(gen: Path, src: str) -> list[dict]:
    out = []
    for p in sorted((gen / src).glob("*")):
        if "partial" in p.name:
            continue
        for line in read_lines(p):
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def _contacts(gen: Path) -> list[dict]:
    out = []
    for p in sorted((gen / "contacts").glob("*")):
        text = b"\n".join(read_lines(p)).decode("utf-8", "replace")
        out.extend(csv.DictReader(io.StringIO(text, newline="")))
    return out


def test_special_populations(gen: Path, truth) -> None:
    records, _, people = truth
    by_pid = {p["person_id"]: p for p in people}
    # shared landline within a household, different names
    by_phone: dict[str, list[dict]] = defaultdict(list)
    for p in people:
        for ph in p["phones"].split("|"):
            if ph:
                by_phone[ph].append(p)
    shared = [ps for ps in by_phone.values() if len(ps) >= 2]
    assert shared
    assert any(
        len({p["household_id"] for p in ps}) == 1
        and ps[0]["household_id"]
        and len({(p["first_name"], p["last_name"]) for p in ps}) >= 2
        for ps in shared
    )
    # shared company inbox used by several contacts of one company
    contacts = _contacts(gen)
    inbox_users: dict[str, set[str]] = defaultdict(set)
    for c in contacts:
        e = (c.get("email") or "").strip().lower()
        if e.split("@")[0] in ("info", "orders", "office", "purchasing", "admin"):
            inbox_users[e].add(c["contact_id"])
    assert any(len(v) >= 2 for v in inbox_users.values())
    # duplicate contacts of one person
    cids: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r["source"] == "contacts" and r["person_id"] and r["expected"] == "loaded":
            cids[r["person_id"]].add(r["source_record_id"])
    assert sum(1 for v in cids.values() if len(v) >= 2) >= 5
    # placeholder contact with no person
    assert any(c["email"] == "test@test.com" for c in contacts)
    assert any(r["source"] == "contacts" and not r["person_id"] for r in records)
    # guest checkouts, currencies, refunds, cancellations
    orders = _jsonl(gen, "orders")
    assert any(o.get("email") and not o.get("customer") for o in orders)
    assert len({o.get("currency") for o in orders}) >= 6
    assert any(o.get("financial_status") == "partially_refunded" and o["refunds"] for o in orders)
    assert any(o.get("financial_status") == "refunded" for o in orders)
    assert not [o["id"] for o in orders if _refunded(o) > (_number(o.get("total_price")) or 0)]
    assert any(o.get("cancelled_at") for o in orders)
    ids = Counter(o["id"] for o in orders if "id" in o)
    assert any(n >= 2 for n in ids.values())  # later versions of the same order
    # anonymous-then-identified and never-identified visitors
    web = _jsonl(gen, "web")
    identified = {
        e["anonymousId"]
        for e in web
        if e.get("type") == "identify" and e.get("userId") and e.get("anonymousId")
    }
    anon_only = {e.get("anonymousId") for e in web if not e.get("userId")}
    assert identified & anon_only
    never = {p["person_id"] for p in people if p["archetype"] == "never_identified"}
    web_pids = {r["person_id"] for r in records if r["source"] == "web"}
    assert never & web_pids
    # campaign traffic and churners
    assert any(e.get("context", {}).get("campaign", {}).get("medium") == "email" for e in web)
    churners = [p for p in people if p["archetype"] == "churner" and p["churn_date"]]
    assert churners
    # churners: no order created after the churn date + a few days
    churn = {p["shop_customer_id"]: p["churn_date"] for p in churners if p["shop_customer_id"]}
    for o in orders:
        cust = o.get("customer") or {}
        if str(cust.get("id")) in churn and o.get("created_at"):
            assert o["created_at"][:10] <= _add_days(churn[str(cust["id"])], 4)
    assert by_pid


def _add_days(day: str, n: int) -> str:
    from datetime import timedelta

    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


def test_scripts_present(truth) -> None:
    _, _, people = truth
    names = " ".join(p["first_name"] + p["last_name"] for p in people)
    assert re.search(r"[\uac00-\ud7a3]", names)  # Hangul
    assert re.search(r"[\u4e00-\u9fff]", names)  # Han
    assert re.search(r"[\u0590-\u05ff]", names)  # Hebrew
    assert re.search(r"[ąčęėįšųūž]", names.lower())  # Lithuanian


def test_phones_valid_and_notations_varied(gen: Path, truth) -> None:
    _, _, people = truth
    for p in people:
        for ph in filter(None, p["phones"].split("|")):
            num = phonenumbers.parse(ph)
            assert phonenumbers.is_valid_number(num), ph
            assert phonenumbers.region_code_for_number(num) == p["country"]
    raw = [c["phone"] for c in _contacts(gen) if c.get("phone")]
    assert any(n.startswith("+") for n in raw)
    assert any(n.startswith("00") for n in raw)
    assert any(n.startswith("(") for n in raw)
    assert any(re.fullmatch(r"0\d+(-\d+)+", n) for n in raw)
    assert any(re.fullmatch(r"\d+", n) for n in raw)
    assert any(re.fullmatch(r"\d+(\.\d+)+", n) for n in raw)
    notations = {re.sub(r"\d", "9", n) for n in raw}
    assert len(notations) > 30


def _number(text: object) -> float | None:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _refunded(order: dict) -> float:
    refunds = order["refunds"] if isinstance(order.get("refunds"), list) else []
    amounts = (_number(t.get("amount")) for r in refunds for t in r.get("transactions", []))
    return sum(a for a in amounts if a is not None)


def test_a_refunded_line_pays_back_its_share_of_what_was_paid_never_more_than_the_order():
    # Found at 1,000,000 people: a 49.99 gift card refunded in full on an order of 49.21
    # (53.98 less a 15% discount, plus tax) made the order's net revenue negative.
    gift_card = {"price": "49.99", "quantity": 1}
    assert refund_of_line(gift_card, subtotal=53.98, total=49.21) == pytest.approx(
        49.99 * 49.21 / 53.98
    )
    assert refund_of_line({"price": "10.00", "quantity": 3}, subtotal=40.0, total=44.0) == (
        pytest.approx(33.0)
    )
    assert refund_of_line({"price": "60.00", "quantity": 1}, subtotal=60.0, total=50.0) == 50.0
