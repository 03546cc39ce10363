"""A broken batch through the real pipeline: the right check fails, nothing downstream of it is
rebuilt, and the marts keep the last good data."""

import json
import shutil

import duckdb

from tests.pipeline import crm360

MARTS_STATE = """
    select
        (select count(*) from marts.customer_360),
        (select sum(net_revenue_reporting) from marts.customer_360),
        (select count(*) from marts.identity_map),
        (select max(assigned_at) from marts.identity_map),
        (select count(*) from marts.customer_touchpoints)
"""


def test_a_renamed_column_stops_the_pipeline_and_the_marts_keep_the_last_good_data(
    pipeline, tmp_path
):
    landing, warehouse = tmp_path / "landing", tmp_path / "crm360.duckdb"
    shutil.copytree(pipeline["landing"], landing)
    shutil.copy(pipeline["warehouse"], warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = con.execute(MARTS_STATE).fetchone()
    # An upstream export renamed `id` to `order_id`: every row of the file breaks the contract.
    orders = [
        {"order_id": 9_000_000 + i, "created_at": "2025-06-01T10:00:00Z", "currency": "USD"}
        for i in range(20)
    ]
    (landing / "orders" / "zz-renamed-export.jsonl").write_text(
        "".join(json.dumps(o) + "\n" for o in orders)
    )
    env = {"DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    run = crm360("run", "--landing", str(landing), "--warehouse", str(warehouse), env_extra=env)

    assert run.returncode == 1, run.stdout[-4000:]
    assert "blocking check raw/orders:great_expectations failed" in run.stdout
    assert "rows quarantined" in run.stdout  # which expectation, in words
    with duckdb.connect(str(warehouse), read_only=True) as con:
        quarantined = con.execute(
            "select count(*) from audit.quarantine "
            "where file_name = 'orders/zz-renamed-export.jsonl'"
        ).fetchone()[0]
        after = con.execute(MARTS_STATE).fetchone()
    assert quarantined == 20  # nothing lost: the rows wait in quarantine
    assert after == before  # no stage after raw ran
    built = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("  built ")]
    # only what does not depend on the broken source: the raw tables and the dbt seeds
    assert built and all(key.startswith(("raw/", "seeds/")) for key in built), built
    assert any(key.startswith("raw/") for key in built)
