"""BG/NBD and Gamma-Gamma fitted on the order history: one row per (model, parameter).

The models (analytics/clv.py, validated against the published CDNOW estimates) need, per
customer, only the purchase days up to the end of the observation window and what each day's
purchases were worth. A purchase is an order of marts.customer_touchpoints that was not
cancelled and whose net value (total minus refunds, in the reporting currency) is positive:
a cancelled or fully refunded order bought nothing, and the Gamma-Gamma spend model is only
defined for positive values. Orders of one customer on one calendar day (UTC) are one
purchase occasion (analytics.clv.summarize_transactions).

Fitting happens here once; marts.clv_predictions reads the parameters back from this table
(with its observation end and time unit, so the two can never disagree). A fit that does not
converge writes converged = false and the reason in `message` (value is where the optimiser
stopped, NULL when nothing could be fitted); the predictions then fall back visibly, never on
unusable estimates.

Project variables reach the model through its YAML config (dbt Python models cannot call
var()): clv_observation_end ('YYYY-MM-DD', or null for the date of the newest order) and
clv_time_unit (day, week or month). DuckDB-specific: the order relation is filtered with the
DuckDB relation API and read into Polars.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from analytics import clv

# What counts as a purchase; clv_predictions.py uses the same condition (the test
# tests/dbt/test_clv_predictions.py checks that both count the same customers).
PURCHASE_CONDITION = (
    "channel = 'order' and not coalesce(order_is_cancelled, false) "
    "and order_net_revenue_reporting > 0"
)
PURCHASE_COLUMNS = (
    "customer_id, touchpoint_at as purchased_at, "
    "cast(order_net_revenue_reporting * 100 as bigint) as amount_cents"
)


def purchase_summary(
    purchases: pl.DataFrame, observation_end: date, time_unit: clv.TimeUnit
) -> pl.DataFrame:
    """analytics.clv.summarize_transactions on amounts in cents (hundredths of the reporting
    currency, the scale of its decimal(18, 2) money columns), monetary_value back in currency
    units. Sums of whole numbers are exact, so the row order, which neither DuckDB nor Polars'
    parallel group-by fixes, cannot move them in the last bits (nor the fit with them): the
    same purchases always give the same summary. Same function in the other model."""
    summary = clv.summarize_transactions(
        purchases, observation_end, time_unit, date_col="purchased_at", amount_col="amount_cents"
    )
    return summary.with_columns(pl.col("monetary_value") / 100)


def configured_text(value: Any) -> str | None:
    """A config value rendered from a var: a null var renders as 'None' (or nothing)."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in ("", "none", "null") else text


def configured_observation_end(value: Any) -> date | None:
    text = configured_text(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"var clv_observation_end must be a date YYYY-MM-DD (or null for the newest "
            f"order's date), got {text!r}"
        ) from None


def configured_time_unit(value: Any) -> clv.TimeUnit:
    text = configured_text(value) or "day"
    if text not in clv.DAYS_PER_UNIT:
        raise ValueError(f"var clv_time_unit must be one of day, week, month; got {text!r}")
    return text  # type: ignore[return-value]


def newest_order_date(orders: Any) -> date | None:
    """The order data's end: the calendar date (UTC) of the newest order of any status."""
    return orders.aggregate("max(cast(touchpoint_at as date))").fetchall()[0][0]


def fit_frame(
    results: list[clv.FitResult], observation_end: date | None, time_unit: clv.TimeUnit
) -> pl.DataFrame:
    """analytics.clv.model_params_frame plus the optimiser's diagnostics as columns."""
    diagnostics = pl.DataFrame(
        {
            "model": [r.model for r in results],
            "iterations": [r.iterations for r in results],
            "gradient_norm": [r.gradient_norm for r in results],
            "customers_excluded": [r.customers_excluded for r in results],
        },
        schema={
            "model": pl.String,
            "iterations": pl.Int64,
            "gradient_norm": pl.Float64,
            "customers_excluded": pl.Int64,
        },
    ).with_columns(pl.col("gradient_norm").fill_nan(None))
    params = clv.model_params_frame(results, observation_end=observation_end, time_unit=time_unit)
    return params.join(diagnostics, on="model", how="left").sort("model", "parameter")


def model(dbt: Any, session: Any) -> Any:
    dbt.config(materialized="table")
    time_unit = configured_time_unit(dbt.config.get("clv_time_unit"))
    configured_end = configured_observation_end(dbt.config.get("clv_observation_end"))

    orders = dbt.ref("customer_touchpoints").filter("channel = 'order'")
    observation_end = configured_end or newest_order_date(orders)
    purchases = orders.filter(PURCHASE_CONDITION).project(PURCHASE_COLUMNS).pl()
    # Without any order there is no window: the summary is empty whatever date it is cut at,
    # and both fits report "no customers" (observation_end stays NULL).
    summary = purchase_summary(purchases, observation_end or date.min, time_unit)
    bgnbd = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    gamma_gamma = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    return fit_frame([bgnbd, gamma_gamma], observation_end, time_unit).to_arrow()
