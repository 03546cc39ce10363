"""Broken batches through the real pipeline: the right check fails, nothing downstream of it is
rebuilt, and the marts keep the last good data; a shifted batch warns and the run goes on.

Each `crm360 run` costs a minute or more before it reads a row, so the module makes two, on
copies of the session pipeline's landing folder and warehouse (the last good state), in the
background while other tests run (AFTER_PIPELINE):

- broken: an orders export with a renamed column, an order from the future and a CRM contact
  reusing another contact's id, three faults that three expectations of the raw stage catch
  in the same run (a blocking failure of any one stops every later stage);
- shifted: a web export over twice the usual size, all new anonymous visitors, and a few very
  large orders: the raw volume check and the customer_360 shift checks warn, the run goes on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.pipeline import crm360, query, scalar

MARTS_STATE = """
    select
        (select count(*) from marts.customer_360),
        (select sum(net_revenue_reporting) from marts.customer_360),
        (select count(*) from marts.identity_map),
        (select max(assigned_at) from marts.identity_map),
        (select count(*) from marts.customer_touchpoints),
        (select count(*) from marts.customer_segments)
"""

METRICS = """
    select avg(case when is_known then 0.0 else 1.0 end)::double,
           (sum(net_revenue_reporting) / sum(order_count))::double
    from marts.customer_360
"""

REPORTED = re.compile(r"^  (?:- blocking check|warning: check) (\S+) failed(?:: (.*))?$")

FUTURE_ORDER_ID = 9_100_000_000_001
BURST_VISITORS, BURST_PAGES = 200, 3
BIG_ORDERS, BIG_PRICE = 5, 2000


@dataclass(frozen=True)
class Run:
    """One `crm360 run` on a copy of the last good state, with faults landed."""

    landing: Path
    warehouse: Path
    process: subprocess.CompletedProcess
    before: tuple  # MARTS_STATE of the last good state
    before_metrics: tuple  # METRICS of the last good state

    def reported(self, kind: str) -> dict[str, str]:
        """The checks the run reported failed (kind: "- blocking check" or "warning: check"),
        each with the reason it gave."""
        lines = [line for line in self.process.stdout.splitlines() if kind in line]
        return {m[1]: m[2] or "" for m in map(REPORTED.match, lines) if m}

    @property
    def built(self) -> list[str]:
        out = self.process.stdout.splitlines()
        return [line.split()[1] for line in out if line.startswith("  built ")]

    @property
    def run_id(self) -> str:
        return re.search(r"crm360: run (\S+) ", self.process.stdout)[1]


def order(order_id: int, created_at: str, price: int, email: str) -> dict:
    """A Shopify order as the landing contract has it, paid in USD by a new shop customer."""
    name = {"first_name": "Test", "last_name": f"Buyer{order_id % 1000}"}
    address = {**name, "address1": "1 Main St", "city": "Springfield", "country_code": "US"}
    return {
        "id": order_id,
        "order_number": order_id % 10_000_000,
        "created_at": created_at,
        "updated_at": created_at,
        "email": email,
        "customer": {"id": order_id + 1, "email": email, **name},
        "currency": "USD",
        "total_price": f"{price}.00",
        "subtotal_price": f"{price}.00",
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "financial_status": "paid",
        "cancelled_at": None,
        "line_items": [
            {
                "id": order_id * 10,
                "product_id": 7300099999,
                "sku": "BIG-1",
                "title": "Piano",
                "quantity": 1,
                "price": f"{price}.00",
            }
        ],
        "billing_address": address,
        "shipping_address": address,
        "refunds": [],
    }


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def land_broken(landing: Path, warehouse: Path) -> None:
    # An upstream export renamed `id` to `order_id`: every row of the file breaks the contract.
    renamed = [
        {"order_id": 9_000_000 + i, "created_at": "2025-06-01T10:00:00Z", "currency": "USD"}
        for i in range(20)
    ]
    (landing / "orders" / "zz-renamed-export.jsonl").write_text(jsonl(renamed))
    # A well-formed order dated a month ahead (a clock or time zone error upstream).
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (landing / "orders" / "zz-from-the-future.jsonl").write_text(
        jsonl([order(FUTURE_ORDER_ID, future, 20, "future@example.org")])
    )
    # Another person under an existing contact's id (an id reused after a CRM migration): a
    # newer version by its key, which staging would take as the contact's current one.
    contact_id = scalar(warehouse, "select min(contact_id) from raw.contacts")
    (landing / "contacts" / "zz-reused-id.csv").write_text(
        "contact_id,first_name,last_name,email,country,created_at,updated_at\n"
        f"{contact_id},Grace,Hopper,grace.hopper@example.org,US,"
        "2025-01-14T09:00:00Z,2025-01-14T10:00:00Z\n"
    )


def land_shifted(landing: Path, warehouse: Path) -> None:
    # A campaign burst: new browsers that never log in, several page views each.
    pages = [
        {
            "type": "page",
            "messageId": f"burst-{v}-{p}",
            "anonymousId": f"burst-visitor-{v}",
            "timestamp": f"2025-01-14T{10 + p}:{v % 60:02d}:00Z",
            "context": {"page": {"path": "/sale", "url": "https://shop.example.com/sale"}},
        }
        for v in range(BURST_VISITORS)
        for p in range(BURST_PAGES)
    ]
    (landing / "web" / "zz-campaign-burst.jsonl").write_text(jsonl(pages))
    # A handful of orders far above the usual basket.
    big = [
        order(9_200_000_000_000 + 10 * i, "2025-01-14T12:00:00Z", BIG_PRICE, f"big{i}@example.org")
        for i in range(BIG_ORDERS)
    ]
    (landing / "orders" / "zz-big-tickets.jsonl").write_text(jsonl(big))


def _run(pipeline: dict, root: Path, land) -> Run:
    landing, warehouse = root / "landing", root / "crm360.duckdb"
    shutil.copytree(pipeline["landing"], landing)
    shutil.copy(pipeline["warehouse"], warehouse)
    before, before_metrics = query(warehouse, MARTS_STATE)[0], query(warehouse, METRICS)[0]
    land(landing, warehouse)
    (root / "dagster_home").mkdir()
    process = crm360(
        "run", "--landing", str(landing), "--warehouse", str(warehouse),
        env_extra={"DAGSTER_HOME": str(root / "dagster_home")},
    )  # fmt: skip
    return Run(landing, warehouse, process, before, before_metrics)


# Made in the background as soon as the session's pipeline is built (conftest.py).
AFTER_PIPELINE = {
    "shifted": lambda pipeline, root: _run(pipeline, root, land_shifted),
    "broken": lambda pipeline, root: _run(pipeline, root, land_broken),
}


@pytest.fixture(scope="module")
def broken(background) -> Run:
    run = background["broken"].result()
    assert run.process.returncode == 1, run.process.stdout[-4000:] + run.process.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def shifted(background) -> Run:
    run = background["shifted"].result()
    assert run.process.returncode == 0, run.process.stdout[-4000:] + run.process.stderr[-2000:]
    return run


def test_only_the_checks_of_the_broken_sources_block(broken):
    assert set(broken.reported("- blocking check")) == {
        "raw/orders:great_expectations",
        "raw/contacts:great_expectations",
    }


def test_a_renamed_column_stops_the_orders(broken):
    why = broken.reported("- blocking check")["raw/orders:great_expectations"]
    assert "critical: unexpected_rows_expectation (No file of this load has more than 50%" in why
    assert "rows quarantined" in why  # which expectation, in words
    quarantined = scalar(
        broken.warehouse,
        "select count(*) from audit.quarantine where file_name = 'orders/zz-renamed-export.jsonl'",
    )
    assert quarantined == 20  # nothing lost: the rows wait in quarantine


def test_an_order_from_the_future_stops_the_orders(broken):
    why = broken.reported("- blocking check")["raw/orders:great_expectations"]
    assert (
        "critical: unexpected_rows_expectation (created_at_utc lies between 2000-01-01 and "
        "tomorrow (nothing from the future).)"
    ) in why
    # It was loaded (the contract allows any valid time); the check judged it.
    loaded = "select count(*) from raw.orders where id = ?"
    assert scalar(broken.warehouse, loaded, [str(FUTURE_ORDER_ID)]) == 1


def test_two_contacts_sharing_an_id_stop_the_contacts(broken):
    why = broken.reported("- blocking check")["raw/contacts:great_expectations"]
    assert "critical: unexpected_rows_expectation (Each contact_id names one contact" in why
    # Ingestion kept both: their keys (id and version time) differ.
    versions = query(
        broken.warehouse,
        "select count(distinct created_at_utc) from raw.contacts "
        "where contact_id = (select contact_id from raw.contacts "
        "                    where _file_name = 'contacts/zz-reused-id.csv')",
    )
    assert versions == [(2,)]


def test_nothing_after_the_raw_stage_ran_and_the_marts_keep_the_last_good_data(broken):
    # only what does not depend on the broken sources: the raw tables and the dbt seeds
    assert broken.built and all(key.startswith(("raw/", "seeds/")) for key in broken.built)
    assert {"raw/orders", "raw/contacts"} <= set(broken.built)
    assert query(broken.warehouse, MARTS_STATE)[0] == broken.before
    assert not (broken.warehouse.parent / "published.duckdb").exists()  # publish did not run


def test_a_shifted_volume_warns_and_the_run_goes_on(shifted):
    warned = shifted.reported("warning: check")
    assert "(a shifted volume)" in warned["raw/web_events:great_expectations"]
    assert shifted.reported("- blocking check") == {}
    # Everything downstream was rebuilt with the new data, and published.
    assert {"marts/customer_360", "marts/customer_segments", "publish"} <= set(shifted.built)
    customers = scalar(shifted.warehouse, "select count(*) from marts.customer_360")
    assert customers >= shifted.before[0] + BURST_VISITORS + BIG_ORDERS


def test_anonymous_share_and_order_value_shifted_from_the_previous_run_warn(shifted):
    why = shifted.reported("warning: check")["marts/customer_360:great_expectations"]
    assert "The share of anonymous profiles (not is_known) moved by at most 0.05" in why
    assert "The average order value (net revenue per order not cancelled" in why
    share, value = query(shifted.warehouse, METRICS)[0]
    share_before, value_before = shifted.before_metrics
    assert share - share_before > 0.05 and value / value_before - 1 > 0.2  # really shifted
    # The baseline was the last good state's run; this run's values are the next baseline.
    remembered = query(
        shifted.warehouse,
        "select metric, value, run_name = ? from audit.quality_metrics where accepted "
        "order by measured_at",
        [shifted.run_id],
    )
    latest = {metric: (value, this_run) for metric, value, this_run in remembered}
    assert latest == {
        "anonymous_share": (pytest.approx(share), True),
        "average_order_value": (pytest.approx(value), True),
    }
    previous = {metric: value for metric, value, this_run in remembered if not this_run}
    assert previous == {
        "anonymous_share": pytest.approx(share_before),
        "average_order_value": pytest.approx(value_before),
    }
