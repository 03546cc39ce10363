"""Probabilistic matching (intermediate.int_record_matches_scored) on a hand-written landing.

Duplicates that share no identifier (a typo, a nickname, swapped names, a move, another
notation of the same Lithuanian name) must score at or above the project's
identity_match_threshold; a household (same last name and address, other first names),
namesakes elsewhere, and two people of one name at one address must not. The cases sit among
a crowd of ordinary customers, each with a contact and an order sharing an email, so that the
term frequencies and the prior behave as on real data rather than on a dozen records.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.dbt.runner import PROJECT_DIR, dbt_build
from tests.dbt.test_dbt_build import load_landing, query
from tests.pipeline import truth_records


def _model_module() -> ModuleType:
    path = PROJECT_DIR / "models" / "intermediate" / "matching" / "int_record_matches_scored.py"
    spec = importlib.util.spec_from_file_location("int_record_matches_scored", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROFILE_COLUMNS = _model_module().PROFILE_COLUMNS

CONTACT_FIELDS = [
    "contact_id", "first_name", "last_name", "email", "phone", "company", "address1",
    "address2", "city", "state", "postal_code", "country", "date_of_birth", "lifecycle_stage",
    "email_opt_out", "created_at", "updated_at",
]  # fmt: skip

# contact_id, first, last, email, address1, city, postcode, country, date of birth
CASES = """\
T-1,Brenda,Finch,brenda.finch@example.com,45 Ryan Landing,Sheffield,S6 4UU,GB,1980-10-22
T-2,Brenda,Fnich,,45 Ryan Landing,Sheffield,S6 4UU,GB,1980-10-22
S-1,Edeltraud,Dörr,edeltraud.dorr@example.de,Kramergasse 22,Altentreptow,42211,DE,1964-09-11
S-2,Dorr,Edeltraud,e.dorr@example.de,Kramergasse 22,Altentreptow,42211,DE,
M-1,Kipras,Kiška,kipras@example.lt,Antakalnio g. 46,Panevėžys,LT-74229,LT,1983-02-23
M-2,Kipras,Kiska,,Žalgirio g. 64,Panevėžys,LT-74229,LT,19830223
K-1,Robert,Miller,robert.miller@example.com,7 Harbour View,Boston,02110,US,1979-05-30
K-2,서연,김,seoyeon.kim@example.com,테헤란로 152,서울,06236,KR,1990-03-14
H-1,John,Parker,john.parker@example.com,12 Elm Street,Springfield,62701,US,1970-01-05
H-2,Mary,Parker,mary.parker@example.com,12 Elm Street,Springfield,62701,US,1972-07-19
N-1,James,Smith,james.smith1@example.com,1 Oak Road,Portland,97201,US,1985-03-03
N-2,James,Smith,james.smith2@example.com,88 Pine Avenue,Austin,73301,US,1990-12-12
J-1,Mark,Parsons,mark.parsons@example.com,62 Martinez Mission,Denver,80202,US,1955-04-26
J-2,Mark,Parsons,markp81@example.com,62 Martinez Mission,Denver,80202,US,1981-04-26
"""
# T: typo in the last name, no email on the duplicate. S: swapped names, with and without the
# umlaut. M: moved within the postcode, the name in another notation, the same birth date in
# another notation. K: a contact whose order (below) uses a nickname / its own script.
# H: a household (same last name and address). N: namesakes in other cities. J: father and son
# of one name at one address, told apart by their birth dates.

# order id, first, last, email, address1, city, zip, country
ORDERS = """\
9001,Bob,Miller,bobby.m@example.net,7 Harbour View,Boston,02110,US
9002,서연,김,sy.kim@example.kr,테헤란로 152,서울,06236,KR
9003,Anna,Parker,anna.parker@example.com,12 Elm Street,Springfield,62701,US
9004,James,Smith,jsmith@example.org,5 Lake Drive,Chicago,60601,US
9005,Mark,Parsons,m.parsons@example.net,62 Martinez Mission,Denver,80202,US
"""
# 9001: Robert Miller's nickname, another email, a guest checkout. 9002: K-2 with another
# email. 9003: the Parker household's third member. 9004: another James Smith. 9005: a Mark
# Parsons ordering where two of them live: it could be either.

MUST_MATCH = {
    ("contacts:T-1", "contacts:T-2"),  # typo
    ("contacts:S-1", "contacts:S-2"),  # swapped names
    ("contacts:M-1", "contacts:M-2"),  # moved, diacritics
    ("contacts:K-1", "orders:9001"),  # nickname
    ("contacts:K-2", "orders:9002"),  # Hangul, as written
}
MUST_NOT_MATCH = {
    ("contacts:H-1", "contacts:H-2"),  # household
    ("contacts:H-1", "orders:9003"),
    ("contacts:H-2", "orders:9003"),
    ("contacts:N-1", "contacts:N-2"),  # namesakes
    ("contacts:N-1", "orders:9004"),
    ("contacts:N-2", "orders:9004"),
    ("contacts:J-1", "contacts:J-2"),  # father and son
    ("contacts:J-1", "orders:9005"),
    ("contacts:J-2", "orders:9005"),
}

CROWD = 600
# 30 first names x 20 last names: every crowd name is unique, first names repeat as in life
_FIRST = [
    "Alice",
    "Brian",
    "Chloe",
    "Derek",
    "Elena",
    "Felix",
    "Grace",
    "Henry",
    "Irene",
    "Jonas",
    "Karen",
    "Louis",
    "Maria",
    "Nolan",
    "Olga",
    "Peter",
    "Quinn",
    "Rosa",
    "Simon",
    "Tanya",
    "Ulric",
    "Vera",
    "Walter",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Aaron",
    "Bella",
    "Carl",
    "Dana",
]
_LAST = [
    "Abbott",
    "Barnes",
    "Carver",
    "Dalton",
    "Ellis",
    "Fowler",
    "Garner",
    "Hadley",
    "Ingram",
    "Jarvis",
    "Keller",
    "Lawson",
    "Mercer",
    "Norris",
    "Osborne",
    "Porter",
    "Quincy",
    "Rowley",
    "Sutton",
    "Thorne",
]
_STREETS = ["Maple", "Cedar", "Birch", "Willow", "Aspen", "Spruce", "Hazel", "Laurel"]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _crowd() -> tuple[list[list[str]], list[list[str]]]:
    """Ordinary customers: one contact and one order each, sharing their email."""
    contacts: list[list[str]] = []
    orders: list[list[str]] = []
    for i in range(CROWD):
        first, last = _FIRST[i % len(_FIRST)], _LAST[i // len(_FIRST)]
        street = f"{100 + i} {_STREETS[i % len(_STREETS)]} Street"
        postcode = f"{10000 + 37 * i}"
        email = f"{first.lower()}.{last.lower()}@example.com"
        dob = f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}"
        contacts.append([f"C-{i}", first, last, email, street, "Crowdville", postcode, "US", dob])
        orders.append([str(8000 + i), first, last, email, street, "Crowdville", postcode, "US"])
    return contacts, orders


def _contacts_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONTACT_FIELDS)
    for cid, first, last, email, address1, city, postcode, country, dob in rows:
        writer.writerow([
            cid, first, last, email, "", "", address1, "", city, "", postcode, country, dob,
            "customer", "false", "2025-06-01T00:00:00Z", "2025-06-01T00:00:00Z",
        ])  # fmt: skip
    return out.getvalue()


def _orders_jsonl(rows: list[list[str]]) -> str:
    lines = []
    for oid, first, last, email, address1, city, zip_code, country in rows:
        address = {
            "first_name": first, "last_name": last, "address1": address1, "city": city,
            "zip": zip_code, "country_code": country,
        }  # fmt: skip
        order = {
            "id": int(oid), "order_number": oid, "created_at": "2025-06-02T10:00:00Z",
            "email": email, "currency": "USD", "total_price": "10.00",
            "subtotal_price": "10.00", "total_tax": "0.00", "total_discounts": "0.00",
            "financial_status": "paid", "line_items": [], "billing_address": address,
            "shipping_address": address, "refunds": [],
        }  # fmt: skip
        lines.append(json.dumps(order, ensure_ascii=False))
    return "\n".join(lines) + "\n"


# The model pairs match profiles; the record pairs they stand for: every record of one side
# with every record of the other (of a profile paired with itself: its records with each other).
RECORD_PAIRS = """
    select
        least(records_l.record_key, records_r.record_key) as record_key_l,
        greatest(records_l.record_key, records_r.record_key) as record_key_r,
        pairs.match_probability,
        pairs.match_weight
    from intermediate.int_record_matches_scored as pairs
    inner join intermediate.int_match_records_prepared as records_l
        on pairs.profile_key_l = records_l.profile_key
    inner join intermediate.int_match_records_prepared as records_r
        on pairs.profile_key_r = records_r.profile_key
    where pairs.profile_key_l <> pairs.profile_key_r or records_l.record_key < records_r.record_key
"""


def match_threshold() -> float:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return float(project["vars"]["identity_match_threshold"])


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], float]:
    root = tmp_path_factory.mktemp("matching")
    crowd_contacts, crowd_orders = _crowd()
    files = {
        "contacts/export-2025-06-01.csv": _contacts_csv(_rows(CASES) + crowd_contacts),
        "orders/orders-2025-06-02.jsonl": _orders_jsonl(_rows(ORDERS) + crowd_orders),
    }
    warehouse = root / "crm360.duckdb"
    load_landing(warehouse, root / "landing", files)
    dbt_build(
        warehouse,
        root / "target",
        *("-s", "+int_record_matches_scored", "--indirect-selection", "cautious"),
    )
    rows = query(
        warehouse,
        f"select record_key_l, record_key_r, match_probability from ({RECORD_PAIRS})",
    )
    return {(left, right): probability for left, right, probability in rows}


def test_duplicates_without_shared_identifiers_match(scored: dict) -> None:
    threshold = match_threshold()
    low = {pair: scored.get(pair, 0.0) for pair in MUST_MATCH if scored.get(pair, 0.0) < threshold}
    assert not low, f"duplicates below identity_match_threshold {threshold}: {low}"


def test_households_and_namesakes_do_not_match(scored: dict) -> None:
    threshold = match_threshold()
    high = {pair: scored[pair] for pair in MUST_NOT_MATCH if scored.get(pair, 0.0) >= threshold}
    assert not high, f"different people at or above identity_match_threshold {threshold}: {high}"


def test_crowd_customers_pair_with_themselves_only(scored: dict) -> None:
    """Each crowd customer's contact and order agree on name and address: they must score
    (the model sees names and addresses, not the email), and no two crowd customers may."""
    keys = {f"contacts:C-{i}" for i in range(CROWD)} | {f"orders:{8000 + i}" for i in range(CROWD)}
    crowd = {pair for pair in scored if pair[0] in keys or pair[1] in keys}
    same_customer = {(f"contacts:C-{i}", f"orders:{8000 + i}") for i in range(CROWD)}
    assert same_customer <= set(scored)
    assert crowd == same_customer


def test_pairs_are_above_one_half(scored: dict) -> None:
    assert scored
    assert all(0.5 <= p <= 1.0 for p in scored.values())


# On the shared generated pipeline (tests/conftest.py: 1500 people, 14 days, run twice).


def _pairs(warehouse: Path) -> list[tuple]:
    return query(warehouse, f"{RECORD_PAIRS} order by record_key_l, record_key_r")


def test_profiles_are_the_records_alike_in_everything_compared(pipeline: dict) -> None:
    """profile_key (an md5 in int_match_records_prepared) groups exactly the records equal in
    the columns the Splink model reads (PROFILE_COLUMNS); the model's rows are ordered pairs of
    profiles, and the record pairs they stand for are ordered and none stands twice."""
    columns = ", ".join(PROFILE_COLUMNS)
    [(keys, tuples, pairs_of_both)] = query(
        pipeline["warehouse"],
        f"select count(distinct profile_key), count(distinct row({columns})), count(*) "
        f"from (select distinct {columns}, profile_key "
        f"from intermediate.int_match_records_prepared)",
    )
    assert keys == tuples == pairs_of_both > 100
    [(unordered,)] = query(
        pipeline["warehouse"],
        "select count(*) from intermediate.int_record_matches_scored "
        "where not profile_key_l <= profile_key_r",
    )
    assert unordered == 0
    pairs = [(left, right) for left, right, *_ in _pairs(pipeline["warehouse"])]
    assert pairs
    assert all(left < right for left, right in pairs)
    assert len(set(pairs)) == len(pairs)


def test_generated_pairs_above_threshold_are_precise(pipeline: dict) -> None:
    person = {
        f"{r['source']}:{r['source_record_id']}": r["person_id"]
        for r in truth_records(pipeline["landing"])
        if r["expected"] == "loaded" and r["source"] in ("contacts", "orders")
    }
    above = [p for p in _pairs(pipeline["warehouse"]) if p[2] >= match_threshold()]
    right = [p for p in above if person.get(p[0]) and person.get(p[0]) == person.get(p[1])]
    assert len(above) > 100
    assert len(right) / len(above) >= 0.99, [p for p in above if p not in right][:10]


def test_same_data_gives_the_same_pairs(pipeline: dict) -> None:
    assert _pairs(pipeline["after_first"]) == _pairs(pipeline["warehouse"])
