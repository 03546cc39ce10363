"""marts.clv_model_params and marts.clv_predictions on generated data, with real dbt and DuckDB.

The shared pipeline (tests/conftest.py: 1,500 people over 14 days) checks completeness, the
purchase summary and the fallbacks: in 14 days nobody has visibly stopped buying, so BG/NBD's
dropout is not identified there. The fits, ranges, agreement with analytics.clv and the time
unit are checked on the long history (1,000 people over 120 days); dbt runs again on copies of
warehouses with other vars. The long history also shows whether p_alive tells churners from
active buyers (the generator's churners stop on day 10 to 70). There, the customers of
churners who stopped before the observation end had mean p_alive 0.63 against 0.82 for active
buyers (heavy and light), 0.31 against 0.72 among customers with a repeat purchase, and 0.43
expected purchases in 90 days against 2.47.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from analytics import clv
from tests.dbt.runner import PROJECT_DIR, dbt_build
from tests.pipeline import truth_people, truth_records

PREDICTIONS_DIR = PROJECT_DIR / "models" / "marts" / "predictions"

EXPECTED_PARAMETERS = {
    ("bg_nbd", "r"),
    ("bg_nbd", "alpha"),
    ("bg_nbd", "a"),
    ("bg_nbd", "b"),
    ("gamma_gamma", "p"),
    ("gamma_gamma", "q"),
    ("gamma_gamma", "v"),
}

# Purchase days per customer, written independently of the models: orders not cancelled with a
# positive net value, summed per customer and UTC calendar day.
PURCHASE_DAYS_SQL = """
    select customer_id, cast(touchpoint_at as date) as day,
           sum(cast(order_net_revenue_reporting as double)) as amount
    from marts.customer_touchpoints
    where channel = 'order' and not order_is_cancelled and order_net_revenue_reporting > 0
    group by customer_id, cast(touchpoint_at as date)
"""

PREDICTION_COLUMNS = "p_alive, expected_purchases_90d, expected_spend_per_order, clv"


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def frame(warehouse: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).pl()


def dbt_build_predictions(
    warehouse: Path, target_path: Path, vars_yaml: str | None = None
) -> subprocess.CompletedProcess:
    """`dbt build --select marts.predictions` in its own process, on the given warehouse."""
    args = ["--select", "marts.predictions", *(["--vars", vars_yaml] if vars_yaml else [])]
    return dbt_build(warehouse, target_path, *args, check=False, timeout=300)


def rebuilt_copy(pipeline: dict, tmp_path: Path, vars_yaml: str) -> Path:
    """A copy of the pipeline's warehouse with the predictions marts rebuilt under other vars."""
    warehouse = tmp_path / "crm360.duckdb"
    shutil.copy(pipeline["warehouse"], warehouse)
    done = dbt_build_predictions(warehouse, tmp_path / "target", vars_yaml)
    assert done.returncode == 0, f"dbt build failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    return warehouse


def fitted(warehouse: Path) -> dict[str, dict[str, float]]:
    params: dict[str, dict[str, float]] = defaultdict(dict)
    for model, parameter, value in query(
        warehouse, "select model, parameter, value from marts.clv_model_params"
    ):
        params[model][parameter] = value
    return params


# ---------------------------------------------------------------------------------------------
# Default vars (newest order's date, days): fits on the long history (120 days: customers have
# stopped buying); completeness and the summary on the shared pipeline (14 days)
# ---------------------------------------------------------------------------------------------


def test_both_models_are_fitted_with_every_parameter_and_diagnostic(long_pipeline):
    warehouse = long_pipeline["warehouse"]
    rows = frame(warehouse, "select * from marts.clv_model_params")
    assert set(zip(rows["model"], rows["parameter"], strict=True)) == EXPECTED_PARAMETERS
    assert rows.height == len(EXPECTED_PARAMETERS)
    assert rows["converged"].all(), rows.select("model", "message").unique().rows()
    assert rows["message"].str.starts_with("converged: ").all()
    assert (rows["value"] > 0).all() and rows["value"].is_finite().all()
    assert rows["log_likelihood"].is_finite().all()
    assert (rows["fit_seconds"] > 0).all()
    assert (rows["gradient_norm"] < clv.GRADIENT_TOLERANCE).all()
    assert rows["time_unit"].unique().to_list() == ["day"]

    ((newest_order,),) = query(
        warehouse,
        "select max(cast(touchpoint_at as date)) from marts.customer_touchpoints "
        "where channel = 'order'",
    )
    assert rows["observation_end"].unique().to_list() == [newest_order]

    ((buyers, repeat_buyers),) = query(
        warehouse,
        f"""select count(*), count(*) filter (where days > 1)
            from (select customer_id, count(*) as days from ({PURCHASE_DAYS_SQL}) group by all)""",
    )
    fitted_on = dict(rows.select("model", "customers_fitted").unique().rows())
    excluded = dict(rows.select("model", "customers_excluded").unique().rows())
    assert fitted_on == {"bg_nbd": buyers, "gamma_gamma": repeat_buyers}
    assert excluded == {"bg_nbd": 0, "gamma_gamma": buyers - repeat_buyers}
    assert repeat_buyers >= 30, "too few repeat buyers on the long history to fit anything"


def test_every_customer_with_a_purchase_gets_one_prediction(pipeline):
    warehouse = pipeline["warehouse"]
    predicted = {c for (c,) in query(warehouse, "select customer_id from marts.clv_predictions")}
    buyers = {c for (c,) in query(warehouse, f"select customer_id from ({PURCHASE_DAYS_SQL})")}
    assert predicted == buyers
    ((rows,),) = query(warehouse, "select count(*) from marts.clv_predictions")
    assert rows == len(predicted)
    # the fit and the predictions saw the same customers
    ((fitted_on,),) = query(
        warehouse,
        "select any_value(customers_fitted) from marts.clv_model_params where model = 'bg_nbd'",
    )
    assert fitted_on == rows


def test_summary_matches_the_purchase_days(pipeline):
    """frequency, recency and T (days) recomputed in SQL from the purchases."""
    warehouse = pipeline["warehouse"]
    got = frame(
        warehouse,
        "select customer_id, frequency, recency, T, monetary_value, observation_end "
        "from marts.clv_predictions order by customer_id",
    )
    want = frame(
        warehouse,
        f"""
        with days as ({PURCHASE_DAYS_SQL}),
        firsts as (select customer_id, min(day) as first_day from days group by all)
        select
            customer_id,
            count(*) - 1 as frequency,
            date_diff('day', min(day), max(day)) as recency,
            date_diff('day', min(day), (select max(observation_end)
                                        from marts.clv_predictions)) as T,
            coalesce(sum(amount) filter (where day > first_day) / nullif(count(*) - 1, 0), 0)
                as monetary_value
        from days join firsts using (customer_id)
        group by all order by customer_id
        """,
    )
    assert got["customer_id"].to_list() == want["customer_id"].to_list()
    assert got["frequency"].to_list() == want["frequency"].to_list()
    np.testing.assert_allclose(got["recency"], want["recency"].cast(pl.Float64))
    np.testing.assert_allclose(got["T"], want["T"].cast(pl.Float64))
    np.testing.assert_allclose(got["monetary_value"], want["monetary_value"], rtol=1e-9)


def test_predictions_are_in_range_and_made_by_both_models(long_pipeline):
    rows = frame(long_pipeline["warehouse"], "select * from marts.clv_predictions")
    assert rows["prediction_method"].unique().to_list() == ["bg_nbd+gamma_gamma"]
    assert rows["fallback_reason"].null_count() == rows.height
    assert rows["p_alive"].null_count() == 0
    assert rows["p_alive"].is_between(0, 1).all()
    assert (rows["expected_purchases_90d"] >= 0).all()
    assert (rows["expected_spend_per_order"] > 0).all()
    assert (rows["clv"] >= 0).all()
    assert rows["clv_horizon_months"].unique().to_list() == [12]
    assert rows["clv_monthly_discount_rate"].unique().to_list() == [0.01]
    # more repeat purchases, more expected purchases (on average, per frequency)
    by_frequency = (
        rows.group_by("frequency").agg(pl.col("expected_purchases_90d").mean()).sort("frequency")
    )
    assert by_frequency["expected_purchases_90d"].head(3).is_sorted()


def test_predictions_are_analytics_clv_on_the_stored_parameters(long_pipeline):
    warehouse = long_pipeline["warehouse"]
    params = fitted(warehouse)
    rows = frame(warehouse, "select * from marts.clv_predictions order by customer_id")
    scored = clv.score_customers(
        rows.select("customer_id", "frequency", "recency", "T", "monetary_value"),
        params["bg_nbd"],
        params["gamma_gamma"],
        time_unit="day",
    )
    np.testing.assert_allclose(rows["p_alive"], scored["p_alive"], rtol=1e-12)
    np.testing.assert_allclose(
        rows["expected_spend_per_order"], scored["expected_spend"], rtol=1e-12
    )
    np.testing.assert_allclose(rows["clv"], scored["clv"], rtol=1e-9)
    in_90_days = clv.bgnbd_expected_purchases(
        params["bg_nbd"], 90.0, rows["frequency"], rows["recency"], rows["T"]
    )
    np.testing.assert_allclose(rows["expected_purchases_90d"], in_90_days, rtol=1e-12)


def test_weeks_and_a_longer_horizon_give_the_same_customers_the_same_predictions(
    long_pipeline, tmp_path
):
    """Vars as `crm360 run --var` passes them (text). The BG/NBD likelihood only rescales with
    the unit, so alpha in weeks is alpha in days / 7 and the predictions are the same; a 24-month
    undiscounted CLV is analytics.clv's on the weekly parameters."""
    days = long_pipeline["warehouse"]
    weeks = rebuilt_copy(
        long_pipeline,
        tmp_path,
        '{clv_time_unit: week, clv_horizon_months: "24", clv_monthly_discount_rate: "0"}',
    )
    day_params, week_params = fitted(days), fitted(weeks)
    assert query(weeks, "select distinct time_unit from marts.clv_model_params") == [("week",)]
    assert query(weeks, "select distinct time_unit from marts.clv_predictions") == [("week",)]
    assert week_params["bg_nbd"]["r"] == pytest.approx(day_params["bg_nbd"]["r"], rel=1e-3)
    assert week_params["bg_nbd"]["alpha"] * 7 == pytest.approx(
        day_params["bg_nbd"]["alpha"], rel=1e-3
    )
    assert week_params["gamma_gamma"] == pytest.approx(day_params["gamma_gamma"], rel=1e-9)

    sql = f"select customer_id, T, {PREDICTION_COLUMNS} from marts.clv_predictions order by 1"
    in_days, in_weeks = frame(days, sql), frame(weeks, sql)
    assert in_weeks["customer_id"].to_list() == in_days["customer_id"].to_list()
    np.testing.assert_allclose(in_weeks["T"] * 7, in_days["T"], rtol=1e-12)
    for column in ("p_alive", "expected_purchases_90d", "expected_spend_per_order"):
        np.testing.assert_allclose(in_weeks[column], in_days[column], rtol=1e-4, err_msg=column)

    rows = frame(weeks, "select * from marts.clv_predictions order by customer_id")
    assert rows["clv_horizon_months"].unique().to_list() == [24]
    expected = clv.customer_lifetime_value(
        week_params["bg_nbd"],
        week_params["gamma_gamma"],
        rows["frequency"],
        rows["recency"],
        rows["T"],
        rows["monetary_value"],
        time_unit="week",
        horizon_months=24,
        monthly_discount_rate=0.0,
    )
    np.testing.assert_allclose(rows["clv"], expected, rtol=1e-9)
    assert (rows["clv"] > in_days["clv"]).all()


def test_fourteen_days_without_a_dropout_fall_back_for_purchases_only(pipeline, tmp_path):
    """In 14 days nobody has visibly stopped buying: the BG/NBD likelihood is best with no
    dropout at all (a -> 0), where a and b are not identified. Where the optimiser stops on
    the way there depends on rounding; the verdict must not, in days or in weeks. The
    purchases fall back to the historical rate; the spend still comes from the Gamma-Gamma."""
    in_weeks = rebuilt_copy(pipeline, tmp_path, "{clv_time_unit: week}")
    for warehouse in (pipeline["warehouse"], in_weeks):
        params = frame(warehouse, "select * from marts.clv_model_params")
        verdict = dict(params.select("model", "converged").unique().rows())
        assert verdict == {"bg_nbd": False, "gamma_gamma": True}
        message = params.filter(pl.col("model") == "bg_nbd")["message"][0]
        assert message.startswith("not converged: a=") and "search bound" in message
        rows = frame(warehouse, "select * from marts.clv_predictions")
        assert rows["prediction_method"].unique().to_list() == ["historical_rate+gamma_gamma"]
        assert rows["p_alive"].null_count() == rows.height
        reason = rows["fallback_reason"].unique().to_list()
        assert len(reason) == 1 and reason[0].startswith("bg_nbd did not converge")
        assert (rows["expected_purchases_90d"] >= 0).all() and (rows["clv"] >= 0).all()
        assert (rows["expected_spend_per_order"] > 0).all()


def test_models_that_cannot_be_fitted_fall_back_visibly(pipeline, tmp_path):
    """Observation end = the first purchase day: nobody has bought twice, so neither model is
    identified. Both say so; predictions use the fallbacks and the dbt tests still pass."""
    ((first_day,),) = query(pipeline["warehouse"], f"select min(day) from ({PURCHASE_DAYS_SQL})")
    warehouse = rebuilt_copy(pipeline, tmp_path, f"{{clv_observation_end: '{first_day}'}}")

    params = frame(warehouse, "select * from marts.clv_model_params")
    assert params.height == len(EXPECTED_PARAMETERS)
    assert not params["converged"].any()
    assert params["value"].null_count() == params.height
    assert params["observation_end"].unique().to_list() == [first_day]
    messages = dict(params.select("model", "message").unique().rows())
    assert "no customer made a repeat purchase" in messages["bg_nbd"]
    assert messages["gamma_gamma"].startswith("not converged: 0 customer(s) with a repeat")

    rows = frame(warehouse, "select * from marts.clv_predictions order by customer_id")
    first_day_buyers = frame(
        warehouse,
        f"select customer_id, amount from ({PURCHASE_DAYS_SQL}) where day = '{first_day}' "
        "order by customer_id",
    )
    assert rows["customer_id"].to_list() == first_day_buyers["customer_id"].to_list()
    assert rows["prediction_method"].unique().to_list() == ["historical_rate+historical_mean_spend"]
    assert rows["p_alive"].null_count() == rows.height
    reason = rows["fallback_reason"].unique().to_list()
    assert len(reason) == 1 and "bg_nbd did not converge" in reason[0]
    assert "gamma_gamma did not converge" in reason[0]
    np.testing.assert_allclose(rows["expected_spend_per_order"], first_day_buyers["amount"])
    # nobody has a repeat purchase: no rate, so nothing expected (and nothing negative)
    assert (rows["expected_purchases_90d"] == 0).all() and (rows["clv"] == 0).all()


def test_an_unknown_time_unit_fails_naming_the_var(pipeline, tmp_path):
    warehouse = tmp_path / "crm360.duckdb"
    shutil.copy(pipeline["warehouse"], warehouse)
    done = dbt_build_predictions(warehouse, tmp_path / "target", "{clv_time_unit: fortnight}")
    assert done.returncode != 0
    assert "var clv_time_unit must be one of day, week, month; got 'fortnight'" in done.stdout


# ---------------------------------------------------------------------------------------------
# Fallback arithmetic (the model's functions, without dbt)
# ---------------------------------------------------------------------------------------------


def load_model(name: str):
    """A dbt Python model of the predictions folder as a module (its functions, no dbt)."""
    spec = importlib.util.spec_from_file_location(name, PREDICTIONS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_same_purchases_in_any_order_give_the_same_fit(pipeline):
    """Row order is not fixed (DuckDB scans, Polars' parallel group-by); with amounts summed as
    floats it moved monetary values in the last bits and flipped Gamma-Gamma's convergence
    verdict on 6 of 60 shuffles of this data. Summed in cents, every order gives the same bits."""
    module = load_model("clv_model_params")
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        orders = conn.table("marts.customer_touchpoints").filter("channel = 'order'")
        end = module.newest_order_date(orders)
        purchases = orders.filter(module.PURCHASE_CONDITION).project(module.PURCHASE_COLUMNS).pl()
    summaries, fits = [], set()
    for seed in range(10):
        shuffled = purchases.sample(fraction=1.0, shuffle=True, seed=seed)
        summary = module.purchase_summary(shuffled, end, "day")
        summaries.append(summary)
        fit = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
        fits.add((fit.converged, *fit.parameters.values()))
    assert all(summary.equals(summaries[0]) for summary in summaries)
    assert len(fits) == 1


def test_historical_rate_and_bg_nbd_discount_the_same_way():
    """One fit failed, the other not: each part comes from its own method, and the fallback
    rate is (frequency + 1) / (T + G) with G the pooled time between repeat purchases."""
    module = load_model("clv_predictions")
    end = date(2025, 3, 31)
    purchases = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c", "c"],
            "purchased_at": [end - timedelta(days=d) for d in (60, 30, 0, 10, 40, 20)],
            "amount_cents": [1000, 2000, 3000, 5000, 500, 1500],
        }
    ).with_columns(pl.col("purchased_at").cast(pl.Datetime("us")))
    summary = module.purchase_summary(purchases, end, "day")
    gamma_gamma = {"p": 6.25, "q": 3.74, "v": 15.44}
    fits = {
        "bg_nbd": {"converged": False, "message": "not converged: test", "parameters": {}},
        "gamma_gamma": {"converged": True, "message": "converged", "parameters": gamma_gamma},
    }
    rows = module.predictions(summary, purchases, fits, end, "day", 12, 0.01)
    assert rows["prediction_method"].to_list() == ["historical_rate+gamma_gamma"] * 3
    assert (
        rows["fallback_reason"].to_list() == ["bg_nbd did not converge (not converged: test)"] * 3
    )
    assert rows["p_alive"].null_count() == 3
    # frequency 2, 0, 1; T 60, 10, 40 days: G = 110 / 3
    rate = np.array([3 / (60 + 110 / 3), 1 / (10 + 110 / 3), 2 / (40 + 110 / 3)])
    np.testing.assert_allclose(rows["expected_purchases_90d"], rate * 90)
    spend = clv.gamma_gamma_expected_spend(gamma_gamma, [2, 0, 1], [25.0, 0.0, 15.0])
    np.testing.assert_allclose(rows["expected_spend_per_order"], spend)
    annuity = sum(1.01**-k for k in range(1, 13))
    np.testing.assert_allclose(rows["clv"], spend * rate * clv.DAYS_PER_MONTH * annuity)

    bgnbd = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}  # CDNOW, per day
    fits = {
        "bg_nbd": {"converged": True, "message": "converged", "parameters": bgnbd},
        "gamma_gamma": {"converged": False, "message": "not converged: q", "parameters": {}},
    }
    rows = module.predictions(summary, purchases, fits, end, "day", 12, 0.01)
    assert rows["prediction_method"].to_list() == ["bg_nbd+historical_mean_spend"] * 3
    mean_spend = np.array([60 / 3, 50.0, 20 / 2])
    np.testing.assert_allclose(rows["expected_spend_per_order"], mean_spend)
    discounted = clv.discounted_expected_purchases(
        bgnbd, summary["frequency"], summary["recency"], summary["T"], time_unit="day"
    )
    np.testing.assert_allclose(rows["clv"], mean_spend * discounted)
    # discounting the BG/NBD purchases apart from the spend is the library's CLV
    np.testing.assert_allclose(
        clv.gamma_gamma_expected_spend(gamma_gamma, summary["frequency"], summary["monetary_value"])
        * discounted,
        clv.customer_lifetime_value(
            bgnbd,
            gamma_gamma,
            *summary.select("frequency", "recency", "T", "monetary_value"),
            time_unit="day",
        ),
        rtol=1e-12,
    )


# ---------------------------------------------------------------------------------------------
# A longer history: do customers who stopped buying look less alive?
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_history(long_pipeline) -> dict:
    """The session's long-history warehouse (tests/conftest.py: 1,000 people, 120 days)."""
    return long_pipeline


def buyer_states(long_history: dict) -> pl.DataFrame:
    """Each predicted customer whose orders are all one person's, with that person's state:
    churned (a churner whose churn date is on or before the observation end) or active (a
    heavy or light buyer, who never stops); churners not yet stopped are left out."""
    warehouse = long_history["warehouse"]
    customer_of = dict(
        query(
            warehouse,
            "select source_record_id, customer_id from marts.identity_map where source = 'orders'",
        )
    )
    people_of: dict[str, set[str]] = defaultdict(set)
    for record in truth_records(long_history["landing"]):
        customer = customer_of.get(record["source_record_id"])
        if record["source"] == "orders" and record["person_id"] and customer:
            people_of[customer].add(record["person_id"])
    people = {p["person_id"]: p for p in truth_people(long_history["landing"])}
    rows = frame(warehouse, "select * from marts.clv_predictions")
    end = rows["observation_end"][0]
    states = {}
    for customer, persons in people_of.items():
        if len(persons) != 1:
            continue
        person = people[next(iter(persons))]
        if person["archetype"] in ("heavy_buyer", "light_buyer"):
            states[customer] = "active"
        elif person["archetype"] == "churner" and date.fromisoformat(person["churn_date"]) <= end:
            states[customer] = "churned"
    state = pl.DataFrame(
        {"customer_id": list(states), "state": list(states.values())},
        schema={"customer_id": pl.String, "state": pl.String},
    )
    return rows.join(state, on="customer_id", how="inner")


def test_customers_who_stopped_buying_are_less_likely_alive(long_history):
    rows = buyer_states(long_history)
    counts = dict(rows.group_by("state").len().rows())
    assert counts.get("churned", 0) >= 30 and counts.get("active", 0) >= 100, counts
    assert rows["purchase_method"].unique().to_list() == ["bg_nbd"]

    def mean(state: str, column: str, repeat_only: bool = False) -> float:
        subset = rows.filter(pl.col("state") == state)
        if repeat_only:
            subset = subset.filter(pl.col("frequency") > 0)
        return float(subset[column].mean())

    # all buyers: 0.63 vs 0.82 (a buyer without a repeat purchase has p_alive 1 by the model)
    assert mean("churned", "p_alive") < mean("active", "p_alive") - 0.1
    # buyers with a repeat purchase: 0.31 vs 0.72
    assert mean("churned", "p_alive", True) < mean("active", "p_alive", True) - 0.25
    # expected purchases in the next 90 days: 0.43 vs 2.47
    assert mean("churned", "expected_purchases_90d") < 0.5 * mean(
        "active", "expected_purchases_90d"
    )
