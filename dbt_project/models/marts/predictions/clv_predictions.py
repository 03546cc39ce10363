"""Per-customer purchase, spend and lifetime-value predictions from marts.clv_model_params.

Nothing is fitted here: the parameters, the end of the observation window and the time unit
are read from clv_model_params, and each customer's (frequency, recency, T, monetary value)
is summarised from the same purchases the fit saw (PURCHASE_CONDITION of clv_model_params.py:
orders not cancelled, with a positive net value in the reporting currency, up to the
observation end). Every customer with such a purchase gets a row.

Two parts, each with a visible fallback (purchase_method, spend_method, fallback_reason):

* purchases: BG/NBD (p_alive, expected purchases in 90 days, and the monthly expected purchases
  the CLV discounts). When the BG/NBD fit did not converge, or its expectations cannot be
  evaluated, `historical_rate`: (frequency + 1) / (T + G) purchases per time unit, held
  constant, G being the pooled time between repeat purchases (sum of T over sum of frequency);
  p_alive is NULL (not estimated).
* spend per order: Gamma-Gamma E[Z | x, m]. When it did not converge, `historical_mean_spend`:
  the mean net value of the customer's purchase days, the first included (always > 0).

clv = expected spend per order * sum over months k = 1..H of the expected purchases in month k
/ (1 + d)^k, with H = var clv_horizon_months and d = var clv_monthly_discount_rate; with both
models converged this is analytics.clv.customer_lifetime_value exactly.

DuckDB-specific: relations are read with the DuckDB relation API into Polars.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

from analytics import clv

# Keep in step with clv_model_params.py (tests/dbt/test_clv_predictions.py checks that both
# count the same customers).
PURCHASE_CONDITION = (
    "channel = 'order' and not coalesce(order_is_cancelled, false) "
    "and order_net_revenue_reporting > 0"
)
PURCHASE_COLUMNS = (
    "customer_id, touchpoint_at as purchased_at, "
    "cast(order_net_revenue_reporting * 100 as bigint) as amount_cents"
)
EXPECTED_PURCHASES_DAYS = 90

OUTPUT_SCHEMA = {
    "customer_id": pl.String,
    "observation_end": pl.Date,
    "time_unit": pl.String,
    "frequency": pl.Int64,
    "recency": pl.Float64,
    "T": pl.Float64,
    "monetary_value": pl.Float64,
    "p_alive": pl.Float64,
    "expected_purchases_90d": pl.Float64,
    "expected_spend_per_order": pl.Float64,
    "clv": pl.Float64,
    "clv_horizon_months": pl.Int64,
    "clv_monthly_discount_rate": pl.Float64,
    "purchase_method": pl.String,
    "spend_method": pl.String,
    "prediction_method": pl.String,
    "fallback_reason": pl.String,
}


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


def configured_horizon_months(value: Any) -> int:
    text = str(value).strip()
    try:
        months = int(text)
    except ValueError:
        months = 0
    if months < 1:
        raise ValueError(f"var clv_horizon_months must be a whole number >= 1, got {text!r}")
    return months


def configured_discount_rate(value: Any) -> float:
    text = str(value).strip()
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not (0.0 <= rate < 1.0):
        raise ValueError(
            f"var clv_monthly_discount_rate must be a rate in [0, 1) per month, got {text!r}"
        )
    return rate


def fitted_models(params: pl.DataFrame) -> tuple[dict[str, dict[str, Any]], date | None, str]:
    """Per model: converged, message and {parameter: value}; plus the window's end and unit."""
    ends, units = params["observation_end"].unique(), params["time_unit"].unique()
    if params.is_empty() or len(ends) != 1 or len(units) != 1:
        raise ValueError(
            "clv_model_params must hold one observation_end and one time_unit, got "
            f"{ends.to_list()} and {units.to_list()}"
        )
    fits = {}
    for name in (clv.BG_NBD, clv.GAMMA_GAMMA):
        rows = params.filter(pl.col("model") == name)
        fits[name] = {
            "converged": rows.height > 0 and bool(rows["converged"].all()),
            "message": rows["message"][0] if rows.height else f"no {name} rows",
            "parameters": dict(zip(rows["parameter"], rows["value"], strict=True)),
        }
    return fits, ends[0], units[0]


def bgnbd_purchases(
    fit: dict[str, Any],
    summary: pl.DataFrame,
    time_unit: clv.TimeUnit,
    horizon_months: int,
    discount_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p_alive, expected purchases in 90 days, discounted expected purchases over the horizon."""
    params = fit["parameters"]
    rfm = (summary["frequency"], summary["recency"], summary["T"])
    days_90 = EXPECTED_PURCHASES_DAYS / clv.DAYS_PER_UNIT[time_unit]
    with np.errstate(all="ignore"):
        p_alive = clv.bgnbd_probability_alive(params, *rfm)
        in_90_days = clv.bgnbd_expected_purchases(params, days_90, *rfm)
        discounted = clv.discounted_expected_purchases(
            params,
            *rfm,
            time_unit=time_unit,
            horizon_months=horizon_months,
            monthly_discount_rate=discount_rate,
        )
    return p_alive, in_90_days, discounted


def historical_rate_purchases(
    summary: pl.DataFrame, time_unit: clv.TimeUnit, horizon_months: int, discount_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fallback: (frequency + 1) / (T + G) purchases per time unit, held constant.

    G = sum(T) / sum(frequency) is the pooled time between repeat purchases of all customers.
    The one pseudo-purchase per pseudo-gap keeps a customer with little history near the
    pooled rate (frequency / T alone would promise a daily buyer after two orders in two days,
    and nothing ever again after one order); with a long history the customer's own rate wins.
    p_alive is not estimated (NaN, written as NULL).
    """
    x, age = summary["frequency"].to_numpy().astype(float), summary["T"].to_numpy()
    repeats = float(x.sum())
    # nobody has bought twice: no rate to speak of
    rate = (x + 1.0) / (age + float(age.sum()) / repeats) if repeats > 0 else np.zeros_like(age)
    unit_days = clv.DAYS_PER_UNIT[time_unit]
    month = clv.DAYS_PER_MONTH / unit_days
    annuity = sum((1.0 + discount_rate) ** -k for k in range(1, horizon_months + 1))
    p_alive = np.full(age.shape, np.nan)
    return p_alive, rate * EXPECTED_PURCHASES_DAYS / unit_days, rate * month * annuity


def mean_spend_per_purchase_day(purchases: pl.DataFrame, observation_end: date) -> pl.DataFrame:
    """Fallback spend: total net value over purchase days (first purchase included)."""
    return (
        purchases.filter(pl.col("purchased_at").dt.date() <= observation_end)
        .group_by("customer_id")
        .agg(
            (
                pl.col("amount_cents").sum() / pl.col("purchased_at").dt.date().n_unique() / 100
            ).alias("historical_mean_spend")
        )
    )


def predictions(
    summary: pl.DataFrame,
    purchases: pl.DataFrame,
    fits: dict[str, dict[str, Any]],
    observation_end: date,
    time_unit: clv.TimeUnit,
    horizon_months: int,
    discount_rate: float,
) -> pl.DataFrame:
    reasons = []
    purchase_method, spend_method = clv.BG_NBD, clv.GAMMA_GAMMA
    bgnbd, gamma_gamma = fits[clv.BG_NBD], fits[clv.GAMMA_GAMMA]
    purchase_part = None
    if bgnbd["converged"]:
        try:
            purchase_part = bgnbd_purchases(
                bgnbd, summary, time_unit, horizon_months, discount_rate
            )
        except (ValueError, FloatingPointError) as error:
            reasons.append(f"bg_nbd predictions could not be evaluated: {error}")
    else:
        reasons.append(f"bg_nbd did not converge ({bgnbd['message']})")
    if purchase_part is None:
        purchase_method = "historical_rate"
        purchase_part = historical_rate_purchases(summary, time_unit, horizon_months, discount_rate)
    p_alive, in_90_days, discounted = purchase_part

    if gamma_gamma["converged"]:
        spend = clv.gamma_gamma_expected_spend(
            gamma_gamma["parameters"], summary["frequency"], summary["monetary_value"]
        )
    else:
        reasons.append(f"gamma_gamma did not converge ({gamma_gamma['message']})")
        spend_method = "historical_mean_spend"
        spend = (
            summary.select("customer_id")
            .join(mean_spend_per_purchase_day(purchases, observation_end), "customer_id", "left")[
                "historical_mean_spend"
            ]
            .to_numpy()
        )

    return summary.select(
        "customer_id",
        pl.lit(observation_end, pl.Date).alias("observation_end"),
        pl.lit(time_unit).alias("time_unit"),
        "frequency",
        "recency",
        "T",
        "monetary_value",
        pl.Series("p_alive", p_alive).fill_nan(None),
        pl.Series("expected_purchases_90d", in_90_days),
        pl.Series("expected_spend_per_order", spend),
        pl.Series("clv", spend * discounted),
        pl.lit(horizon_months, pl.Int64).alias("clv_horizon_months"),
        pl.lit(discount_rate, pl.Float64).alias("clv_monthly_discount_rate"),
        pl.lit(purchase_method).alias("purchase_method"),
        pl.lit(spend_method).alias("spend_method"),
        pl.lit(f"{purchase_method}+{spend_method}").alias("prediction_method"),
        pl.lit("; ".join(reasons) or None, pl.String).alias("fallback_reason"),
    ).cast(OUTPUT_SCHEMA)


def model(dbt: Any, session: Any) -> Any:
    dbt.config(materialized="table")
    horizon_months = configured_horizon_months(dbt.config.get("clv_horizon_months"))
    discount_rate = configured_discount_rate(dbt.config.get("clv_monthly_discount_rate"))
    fits, observation_end, time_unit = fitted_models(dbt.ref("clv_model_params").pl())
    if observation_end is None:  # no order at all: nobody to predict for
        return pl.DataFrame(schema=OUTPUT_SCHEMA).to_arrow()
    purchases = dbt.ref("customer_touchpoints").filter(PURCHASE_CONDITION)
    purchases = purchases.project(PURCHASE_COLUMNS).pl()
    summary = purchase_summary(purchases, observation_end, time_unit)
    return predictions(
        summary, purchases, fits, observation_end, time_unit, horizon_months, discount_rate
    ).to_arrow()
