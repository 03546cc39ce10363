"""Great Expectations 1.x expectations run as SQL inside DuckDB through quality.gx_duckdb."""

from pathlib import Path

import duckdb
import great_expectations as gx
import pytest
from great_expectations.execution_engine import SqlAlchemyExecutionEngine

from quality.gx_duckdb import URL_SCHEME


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    db = Path(tmp_path_factory.mktemp("gx")) / "w.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("""
            CREATE TABLE people AS
            SELECT i AS id,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE 'user' || i || '@example.com' END AS email,
                   CASE WHEN i % 50 = 7 THEN '0000' ELSE '+1415555' || lpad(i::VARCHAR, 4, '0')
                   END AS phone_e164
            FROM range(200000) r(i)
        """)
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(
        name="warehouse", connection_string=f"{URL_SCHEME}:///{db}"
    )
    asset = source.add_table_asset(name="people", table_name="people")
    return asset.add_batch_definition_whole_table("all").get_batch()


def check(batch, expectation) -> dict:
    result = batch.validate(expectation)
    assert not result.exception_info.get("raised_exception"), result.exception_info
    return {"success": result.success, **result.result}


def test_the_batch_runs_on_the_sql_engine_not_pandas(batch):
    assert isinstance(batch.data.execution_engine, SqlAlchemyExecutionEngine)


def test_counts_and_nulls_come_back(batch):
    rows = check(batch, gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    assert rows["observed_value"] == 200_000
    nulls = check(batch, gx.expectations.ExpectColumnValuesToNotBeNull(column="email"))
    assert not nulls["success"]
    assert nulls["unexpected_count"] == 20_000
    assert check(batch, gx.expectations.ExpectColumnValuesToBeUnique(column="id"))["success"]


def test_regex_is_a_search_as_in_gx_and_failing_rows_are_shown(batch):
    e164 = check(
        batch,
        gx.expectations.ExpectColumnValuesToMatchRegex(
            column="phone_e164", regex=r"^\+[1-9][0-9]{7,14}$"
        ),
    )
    assert not e164["success"]
    assert e164["unexpected_count"] == 4_000
    assert set(e164["partial_unexpected_list"]) == {"0000"}
    # A pattern without anchors matches anywhere in the value, as GX's other engines do.
    search = check(
        batch, gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex="@example")
    )
    assert search["success"] and search["unexpected_count"] == 0
    absent = check(
        batch, gx.expectations.ExpectColumnValuesToNotMatchRegex(column="email", regex="@test\\.")
    )
    assert absent["success"]


def test_like_patterns_work(batch):
    like = check(
        batch,
        gx.expectations.ExpectColumnValuesToMatchLikePattern(
            column="email", like_pattern="%@example.com"
        ),
    )
    assert like["success"]
