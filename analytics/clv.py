"""Customer lifetime value: BG/NBD purchase model + Gamma-Gamma spend model, fitted by MLE.

Why these models: they need only each customer's (frequency, recency, age, mean spend), which the
warehouse already has, and they are the published, well-understood baseline for non-contractual
settings (customers can leave silently). Everything here is written from the papers:

* BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2). While alive a customer buys as a Poisson process
  with rate lambda ~ Gamma(r, alpha); after each purchase she drops out with probability
  p ~ Beta(a, b).
* Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".
  Transaction values are Gamma(p, nu) with nu ~ Gamma(q, v) across customers; it assumes spend is
  independent of the purchase process.

Both fits maximise the exact log-likelihood (log-space with ``gammaln``/``betaln``/``logaddexp``,
analytic gradients) on log-parameters with L-BFGS-B from a few starting points. A fit never raises
on degenerate data: it returns a :class:`FitResult` with ``converged=False`` and a message saying
why, and the prediction functions refuse such a result (:class:`ModelNotConvergedError`) rather
than produce nonsense. Invalid input (negative frequency, recency > T, ...) raises ``ValueError``.

Time units: ``"day"`` = 1 day, ``"week"`` = 7 days, ``"month"`` = 30.4375 days (365.25 / 12, the
mean Gregorian month, so 12 months are exactly one year). Recency and T are fractional counts of
these units; the published CDNOW estimates use weeks = days / 7. The rate parameter ``alpha`` (and
nothing else) scales with the unit: alpha_day = 7 * alpha_week.

No Dagster or dbt imports: this module is called from a dbt Python model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final, Literal

import numpy as np
import polars as pl
from scipy import optimize, special

TimeUnit = Literal["day", "week", "month"]

DAYS_PER_MONTH: Final = 30.4375
DAYS_PER_UNIT: Final[dict[str, float]] = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH}

BG_NBD: Final = "bg_nbd"
GAMMA_GAMMA: Final = "gamma_gamma"
BG_NBD_PARAMETERS: Final = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMETERS: Final = ("p", "q", "v")

# Log-parameters live in [-LOG_BOUND, LOG_BOUND] (values 3e-7 .. 3e6). An estimate that ends up
# within BOUND_MARGIN of a bound means the data do not pin that parameter down.
LOG_BOUND: Final = 15.0
BOUND_MARGIN: Final = 1e-2
# A parameter that can be moved alone to a search bound while the log-likelihood of all the
# customers falls by less than this is on a flat direction: not identified. A likelihood-ratio
# statistic of 0.02 (p = 0.89) is no evidence at all, and far more than the slack left where
# the optimiser stops on such a direction (the gradient in log-parameters fades towards it).
FLAT_LOG_LIKELIHOOD: Final = 1e-2
# Max |gradient| of the mean (per-customer) negative log-likelihood w.r.t. the log-parameters
# accepted as a stationary point. Per-customer scaling makes it independent of the data size.
GRADIENT_TOLERANCE: Final = 1e-5
MAX_ITERATIONS: Final = 2000
# The BG/NBD expectation has a removable singularity at a = 1 (0/0); inside this band it is
# evaluated on either side and averaged (error O(band^2)).
A_NEAR_ONE: Final = 1e-4

ArrayLike = np.ndarray | pl.Series | Sequence[float] | float


class ModelNotConvergedError(ValueError):
    """A prediction was asked of a fit that did not converge (its message says why)."""


@dataclass(frozen=True)
class FitResult:
    """Outcome of one model fit; ``converged`` is False whenever the estimates are not usable.

    ``gradient_norm`` is the max-abs gradient of the per-customer mean negative log-likelihood
    with respect to the log-parameters at the returned point; ``message`` explains a failure (or
    summarises a success); ``customers_excluded`` counts input rows the model could not use
    (Gamma-Gamma: customers without a repeat purchase or with non-positive mean spend).
    """

    model: str
    parameters: dict[str, float]
    log_likelihood: float
    customers_fitted: int
    converged: bool
    iterations: int
    gradient_norm: float
    message: str
    fit_seconds: float
    customers_excluded: int = 0


# ---------------------------------------------------------------------------------------------
# Transactions -> RFM summary
# ---------------------------------------------------------------------------------------------


def summarize_transactions(
    transactions: pl.DataFrame,
    observation_end: date,
    time_unit: TimeUnit = "week",
    *,
    customer_col: str = "customer_id",
    date_col: str = "purchased_at",
    amount_col: str = "amount",
) -> pl.DataFrame:
    """Per-customer (frequency, recency, T, monetary_value) as of ``observation_end``.

    Definitions follow Fader-Hardie and lifetimes' ``summary_data_from_transaction_data``:
    orders are first summed per customer per calendar day (two orders on one day are one
    transaction, because the models count purchase occasions); ``frequency`` is the number of
    repeat transaction days (days after the first); ``recency`` is first to last transaction day
    and ``T`` first transaction day to ``observation_end``, both in fractional ``time_unit``s
    (days / 7 for weeks, days / 30.4375 for months); ``monetary_value`` is the mean amount of the
    repeat transactions (0 when frequency is 0, since the first purchase is often atypical).
    Transactions after ``observation_end`` (inclusive end) are ignored; datetimes count on their
    calendar date in their own time zone. Returns one row per customer sorted by customer id, with
    columns customer_id, frequency (Int64), recency, T, monetary_value (Float64).
    """
    unit_days = _unit_days(time_unit)
    end = _as_date(observation_end)
    _check_transaction_columns(transactions, customer_col, date_col, amount_col)
    daily = (
        transactions.lazy()
        .select(
            pl.col(customer_col).alias("customer_id"),
            pl.col(date_col).dt.date().alias("day"),
            pl.col(amount_col).cast(pl.Float64).alias("amount"),
        )
        .filter(pl.col("day") <= end)
        .group_by("customer_id", "day")
        .agg(pl.col("amount").sum())
    )
    per_customer = daily.group_by("customer_id").agg(
        (pl.len() - 1).cast(pl.Int64).alias("frequency"),
        pl.col("day").min().alias("first_day"),
        pl.col("day").max().alias("last_day"),
        pl.col("amount").sum().alias("total"),
        pl.col("amount").sort_by("day").first().alias("first_amount"),
    )
    return (
        per_customer.select(
            "customer_id",
            "frequency",
            ((pl.col("last_day") - pl.col("first_day")).dt.total_days() / unit_days).alias(
                "recency"
            ),
            ((pl.lit(end) - pl.col("first_day")).dt.total_days() / unit_days).alias("T"),
            pl.when(pl.col("frequency") > 0)
            .then((pl.col("total") - pl.col("first_amount")) / pl.col("frequency"))
            .otherwise(0.0)
            .alias("monetary_value"),
        )
        .sort("customer_id")
        .collect()
    )


def _check_transaction_columns(
    transactions: pl.DataFrame, customer_col: str, date_col: str, amount_col: str
) -> None:
    """Fail early with a clear message rather than deep inside a Polars plan."""
    missing = [c for c in (customer_col, date_col, amount_col) if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {missing}; have {transactions.columns}")
    dtype = transactions.schema[date_col]
    if not (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
        raise TypeError(f"{date_col} must be Date or Datetime, not {dtype}")
    if not transactions.schema[amount_col].is_numeric():
        raise TypeError(f"{amount_col} must be numeric, not {transactions.schema[amount_col]}")
    nulls = transactions.select(pl.col(customer_col, date_col, amount_col).null_count()).row(0)
    if any(nulls):
        raise ValueError(
            f"null values in ({customer_col}, {date_col}, {amount_col}): {nulls}; "
            "filter or fill them before summarising"
        )


def _as_date(value: date) -> date:
    """A datetime is a date subclass; keep only its calendar date so comparisons are by day."""
    return value.date() if isinstance(value, datetime) else value


def _unit_days(time_unit: str) -> float:
    try:
        return DAYS_PER_UNIT[time_unit]
    except KeyError:
        raise ValueError(
            f"time_unit must be one of {sorted(DAYS_PER_UNIT)}, not {time_unit!r}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Input validation shared by fits and predictions
# ---------------------------------------------------------------------------------------------


def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values")
    return array


def _rfm_arrays(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast and validate (x, t_x, T); invalid data is a caller bug, so it raises."""
    x, t_x, age = np.broadcast_arrays(
        _as_float_array(frequency, "frequency"),
        _as_float_array(recency, "recency"),
        _as_float_array(T, "T"),
    )
    tolerance = 1e-9 * np.maximum(1.0, age)
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")
    if np.any(t_x < 0) or np.any(t_x > age + tolerance):
        raise ValueError("recency must satisfy 0 <= recency <= T")
    if np.any((x == 0) & (t_x > tolerance)):
        raise ValueError("recency must be 0 for customers with frequency 0")
    return x, t_x, age


# ---------------------------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------------------------


def _bgnbd_log_terms(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The paper's ln A1 + ln A2 and the two alternatives ln A3 (alive) / ln A4 (dropped out).

    L = A1 * A2 * (A3 + [x > 0] * A4) with A1 = Gamma(r+x) alpha^r / Gamma(r),
    A2 = B(a, b+x) / B(a, b), A3 = (alpha+T)^-(r+x), A4 = a/(b+x-1) * (alpha+t_x)^-(r+x).
    """
    r, alpha, a, b = params
    repeat = x > 0
    ln_a12 = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + x)
        - special.betaln(a, b)
    )
    ln_a3 = -(r + x) * np.log(alpha + age)
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)
    ln_a4 = np.where(repeat, np.log(a) - np.log(b_x1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return ln_a12, ln_a3, ln_a4, b_x1


def _bgnbd_objective(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood and its gradient w.r.t. log(r, alpha, a, b)."""
    params = np.exp(log_params)
    r, alpha, a, b = params
    ln_a12, ln_a3, ln_a4, b_x1 = _bgnbd_log_terms(params, x, t_x, age)
    ln_tail = np.logaddexp(ln_a3, ln_a4)
    w3, w4 = np.exp(ln_a3 - ln_tail), np.exp(ln_a4 - ln_tail)  # posterior alive / dropped
    repeat = x > 0
    d_r = (
        special.digamma(r + x)
        - special.digamma(r)
        + np.log(alpha)
        - w3 * np.log(alpha + age)
        - w4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + age) + w4 / (alpha + t_x))
    d_ab = special.digamma(a + b) - special.digamma(a + b + x)
    d_a = d_ab + w4 / a
    d_b = d_ab + special.digamma(b + x) - special.digamma(b) - np.where(repeat, w4 / b_x1, 0.0)
    total = w.sum()
    loglik = np.dot(w, ln_a12 + ln_tail)
    grad = np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)]) * params
    return -loglik / total, -grad / total


def bgnbd_log_likelihood(
    params: Mapping[str, float] | FitResult,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> float:
    """Total BG/NBD log-likelihood of the customers under ``params`` (for checks and tests)."""
    values = _bgnbd_vector(params, require_converged=False)
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    ln_a12, ln_a3, ln_a4, _ = _bgnbd_log_terms(values, x, t_x, age)
    return float(np.sum(ln_a12 + np.logaddexp(ln_a3, ln_a4)))


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    starts: Iterable[Mapping[str, float]] | None = None,
) -> FitResult:
    """Maximum-likelihood BG/NBD fit over per-customer (frequency, recency, T).

    Identical (x, t_x, T) rows are collapsed with weights (the likelihood is a sum), which keeps
    large customer bases cheap. Several starting points guard against a poor local optimum; the
    best likelihood wins. Without any repeat purchase the dropout parameters (a, b) are not
    identified, so that case returns ``converged=False`` without optimising.
    """
    started = time.perf_counter()
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    n = int(x.size)
    reason = _bgnbd_data_problem(x, age)
    if reason:
        return _unfitted(BG_NBD, BG_NBD_PARAMETERS, n, reason, started)
    (ux, ut, uT), weights = _collapse(x, t_x, age)
    start_list = list(starts) if starts is not None else _bgnbd_starts(x, age)
    best = _minimize_from_starts(
        lambda lp: _bgnbd_objective(lp, ux, ut, uT, weights),
        [np.log([s[k] for k in BG_NBD_PARAMETERS]) for s in start_list],
        n,
    )
    return _fit_result(BG_NBD, BG_NBD_PARAMETERS, best, n, started, len(start_list))


def _bgnbd_data_problem(x: np.ndarray, age: np.ndarray) -> str:
    """Why the data cannot identify the BG/NBD parameters, or '' when they can."""
    if x.size == 0:
        return "no customers to fit"
    if not np.any(x > 0):
        return (
            "no customer made a repeat purchase: the dropout parameters a, b are not "
            "identified (need customers with frequency >= 1)"
        )
    if not np.any(age > 0):
        return "every customer has T = 0: no observation time to learn purchase rates from"
    return ""


def _bgnbd_starts(x: np.ndarray, age: np.ndarray) -> list[dict[str, float]]:
    """A few spread-out starts; alpha is scaled to the data so the unit does not matter."""
    scale = float(max(np.mean(age) / (1.0 + np.mean(x)), 1e-3))
    return [
        {"r": 1.0, "alpha": scale, "a": 1.0, "b": 1.0},
        {"r": 0.3, "alpha": scale / 4.0, "a": 0.5, "b": 2.0},
        {"r": 3.0, "alpha": scale * 4.0, "a": 2.0, "b": 8.0},
    ]


def _collapse(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Unique rows of the stacked columns and how often each occurs."""
    unique, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return tuple(unique.T), counts.astype(float)


def _bgnbd_vector(
    params: Mapping[str, float] | FitResult, *, require_converged: bool
) -> np.ndarray:
    values = _parameter_values(params, BG_NBD, BG_NBD_PARAMETERS, require_converged)
    return np.array(values)


def bgnbd_probability_alive(
    params: Mapping[str, float] | FitResult,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + [x > 0] * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)).

    Evaluated as a logistic of the log-odds so long silences give a clean 0, not overflow. A
    customer without repeat purchases is alive with probability 1: in the BG/NBD dropout can only
    happen right after a purchase (a known quirk of the model, not a bug here).
    """
    r, alpha, a, b = _bgnbd_vector(params, require_converged=True)
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    return _probability_alive(r, alpha, a, b, x, t_x, age)


def _probability_alive(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    repeat = x > 0
    b_x1 = np.where(repeat, b + x - 1.0, 1.0)
    log_odds_dead = np.log(a) - np.log(b_x1) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    return np.where(repeat, special.expit(-log_odds_dead), 1.0)


def bgnbd_expected_purchases(
    params: Mapping[str, float] | FitResult,
    t: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next ``t`` time units.

    Paper (eq. 10): P(alive) * (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) *
    2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t). Euler's transformation rewrites the bracket
    as 1 - (1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z), which avoids multiplying a huge
    hypergeometric value by a tiny power for heavy buyers. See :func:`_hyp2f1` for the guard.
    """
    r, alpha, a, b = _bgnbd_vector(params, require_converged=True)
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    horizon = _as_float_array(t, "t")
    if np.any(horizon < 0):
        raise ValueError("t must be >= 0")
    alive = _probability_alive(r, alpha, a, b, x, t_x, age)
    return alive * _expected_if_alive(r, alpha, a, b, horizon, x, age)


def bgnbd_unconditional_expected_purchases(
    params: Mapping[str, float] | FitResult, t: ArrayLike
) -> np.ndarray:
    """E[X(t)] for a new customer over ``t`` time units since her first purchase (eq. 9).

    Equal to the conditional expectation of a customer with x = t_x = T = 0, which is how it is
    computed (one formula, one set of numerical guards).
    """
    r, alpha, a, b = _bgnbd_vector(params, require_converged=True)
    horizon = _as_float_array(t, "t")
    if np.any(horizon < 0):
        raise ValueError("t must be >= 0")
    zero = np.zeros_like(horizon)
    return _expected_if_alive(r, alpha, a, b, horizon, zero, zero)


def _expected_if_alive(
    r: float, alpha: float, a: float, b: float, t: np.ndarray, x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """(a+b+x-1)/(a-1) * [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], guarded at a = 1."""
    if abs(a - 1.0) < A_NEAR_ONE:
        below = _expected_if_alive_raw(r, alpha, 1.0 - A_NEAR_ONE, b, t, x, age)
        above = _expected_if_alive_raw(r, alpha, 1.0 + A_NEAR_ONE, b, t, x, age)
        return 0.5 * (below + above)
    return _expected_if_alive_raw(r, alpha, a, b, t, x, age)


def _expected_if_alive_raw(
    r: float, alpha: float, a: float, b: float, t: np.ndarray, x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    z = t / (alpha + age + t)
    c = a + b + x - 1.0
    log_one_minus_z = np.log(alpha + age) - np.log(alpha + age + t)
    bracket = 1.0 - np.exp((a - 1.0) * log_one_minus_z) * _hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    expected = c / (a - 1.0) * bracket
    # Rounding can leave -1e-17 at t = 0; anything clearly negative is a numerical failure.
    if np.any(expected < -1e-9 * np.maximum(1.0, np.abs(c / (a - 1.0)))):
        raise FloatingPointError("BG/NBD expectation evaluated negative; parameters too extreme")
    return np.maximum(expected, 0.0)


def _hyp2f1(a: float, b: float, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """scipy's 2F1, with the plain power series (|z| < 1 here) where scipy gives non-finite."""
    a_, b_, c_, z_ = np.broadcast_arrays(float(a), float(b), c, z)
    value = np.asarray(special.hyp2f1(a_, b_, c_, z_), dtype=float)
    bad = ~np.isfinite(value)
    if np.any(bad):
        value = value.copy()
        value[bad] = _hyp2f1_series(a_[bad], b_[bad], c_[bad], z_[bad])
    return value


def _hyp2f1_series(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray, max_terms: int = 200_000
) -> np.ndarray:
    """sum_k (a)_k (b)_k / ((c)_k k!) z^k, summed until the terms stop mattering."""
    term = np.ones_like(z, dtype=float)
    total = term.copy()
    for k in range(max_terms):
        term = term * (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z
        total += term
        if np.all(np.abs(term) <= 1e-16 * np.abs(total)):
            return total
    raise FloatingPointError("hypergeometric series did not converge")


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------------------------


def _gamma_gamma_objective(
    log_params: np.ndarray, x: np.ndarray, m: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood and gradient w.r.t. log(p, q, v).

    Density of the mean m of x transaction values (Fader-Hardie 2013, eq. 3):
    Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q * m^(px-1) * x^(px) / (v + x m)^(px+q).
    """
    params = np.exp(log_params)
    p, q, v = params
    px = p * x
    log_v_xm = np.log(v + x * m)
    ll = _gamma_gamma_log_density(p, q, v, x, m)
    psi_pxq = special.digamma(px + q)
    d_p = x * (psi_pxq - special.digamma(px) + np.log(m) + np.log(x) - log_v_xm)
    d_q = psi_pxq - special.digamma(q) + np.log(v) - log_v_xm
    d_v = q / v - (px + q) / (v + x * m)
    total = w.sum()
    grad = np.array([np.dot(w, d) for d in (d_p, d_q, d_v)]) * params
    return -np.dot(w, ll) / total, -grad / total


def _gamma_gamma_log_density(
    p: float, q: float, v: float, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m)
    )


def _spend_arrays(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, ...]:
    x, m = np.broadcast_arrays(
        _as_float_array(frequency, "frequency"), _as_float_array(monetary_value, "monetary_value")
    )
    if np.any(x < 0):
        raise ValueError("frequency must be >= 0")
    return x, m


def gamma_gamma_log_likelihood(
    params: Mapping[str, float] | FitResult, frequency: ArrayLike, monetary_value: ArrayLike
) -> float:
    """Total Gamma-Gamma log-likelihood over the customers the model uses (x >= 1, m > 0)."""
    p, q, v = _parameter_values(params, GAMMA_GAMMA, GAMMA_GAMMA_PARAMETERS, False)
    x, m = _spend_arrays(frequency, monetary_value)
    usable = (x >= 1) & (m > 0)
    return float(np.sum(_gamma_gamma_log_density(p, q, v, x[usable], m[usable])))


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    *,
    starts: Iterable[Mapping[str, float]] | None = None,
) -> FitResult:
    """Maximum-likelihood Gamma-Gamma fit on customers with x >= 1 repeat purchases.

    Only customers with at least one repeat purchase and a positive mean repeat spend are used
    (the others carry no spend information or violate the model); how many were left out is in
    ``customers_excluded``. The mean spend is finite only for q > 1, so q <= 1 (like any estimate
    that is not finite and positive, or a bound hit) gives ``converged=False`` with the reason.
    """
    started = time.perf_counter()
    x, m = _spend_arrays(frequency, monetary_value)
    usable = (x >= 1) & (m > 0)
    n_used, n_excluded = int(usable.sum()), int((~usable).sum())
    reason = _gamma_gamma_data_problem(m[usable])
    if reason:
        return _unfitted(
            GAMMA_GAMMA, GAMMA_GAMMA_PARAMETERS, n_used, reason, started, excluded=n_excluded
        )
    (ux, um), weights = _collapse(x[usable], m[usable])
    start_list = list(starts) if starts is not None else _gamma_gamma_starts(m[usable])
    best = _minimize_from_starts(
        lambda lp: _gamma_gamma_objective(lp, ux, um, weights),
        [np.log([s[k] for k in GAMMA_GAMMA_PARAMETERS]) for s in start_list],
        n_used,
    )
    result = _fit_result(
        GAMMA_GAMMA, GAMMA_GAMMA_PARAMETERS, best, n_used, started, len(start_list), n_excluded
    )
    q = result.parameters["q"]
    if result.converged and not q > 1.0:
        return replace(
            result,
            converged=False,
            message=f"q = {q:.4g} <= 1: the mean spend is infinite under this fit; the model "
            "does not describe these values (heavy tail, or spend tied to frequency)",
        )
    return result


def _gamma_gamma_data_problem(m: np.ndarray) -> str:
    if m.size < 2:
        return (
            f"{m.size} customer(s) with a repeat purchase and positive spend: at least 2 are "
            "needed to estimate spend heterogeneity"
        )
    if np.ptp(m) <= 1e-12 * np.max(m):
        return "every customer has the same mean spend: spend heterogeneity is not identified"
    return ""


def _gamma_gamma_starts(m: np.ndarray) -> list[dict[str, float]]:
    """Starts whose implied population mean p*v/(q-1) equals the observed mean spend."""
    mean = float(np.mean(m))
    return [
        {"p": 1.0, "q": 2.0, "v": mean},
        {"p": 5.0, "q": 4.0, "v": 3.0 * mean / 5.0},
        {"p": 0.5, "q": 1.5, "v": mean},
    ]


def gamma_gamma_expected_spend(
    params: Mapping[str, float] | FitResult, frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """E[Z | x, m] = p (v + x m) / (p x + q - 1): expected value of a future transaction.

    A credibility-weighted mix of the population mean p v / (q - 1) and the customer's own mean
    m, leaning on m the more purchases back it. Customers with x = 0 get the population mean.
    A negative m (refunds exceeding purchases) is treated as 0 so the result stays positive.
    """
    p, q, v = _parameter_values(params, GAMMA_GAMMA, GAMMA_GAMMA_PARAMETERS, True)
    x, m = _spend_arrays(frequency, monetary_value)
    m = np.where(x > 0, np.maximum(m, 0.0), 0.0)
    return p * (v + x * m) / (p * x + q - 1.0)


# ---------------------------------------------------------------------------------------------
# CLV
# ---------------------------------------------------------------------------------------------


def customer_lifetime_value(
    bgnbd: Mapping[str, float] | FitResult,
    gamma_gamma: Mapping[str, float] | FitResult,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    time_unit: TimeUnit,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> np.ndarray:
    """Discounted expected spend over the next ``horizon_months`` months.

    CLV_i = sum_{k=1..H} E[Z_i] * (E[Y_i(k * M)] - E[Y_i((k-1) * M)]) / (1 + d)^k

    where E[Y_i(t)] is the BG/NBD conditional expected number of purchases in the next t time
    units, M = 30.4375 days expressed in ``time_unit`` (the unit the BG/NBD was fitted in),
    E[Z_i] the Gamma-Gamma expected spend per transaction and d the monthly discount rate. This is
    the common "discounted expected transactions" approach (purchases expected in month k are
    discounted as if paid at the end of month k); it multiplies the two models' expectations,
    which is valid under the Gamma-Gamma assumption that spend is independent of frequency.
    """
    if horizon_months < 1:
        raise ValueError("horizon_months must be >= 1")
    if not monthly_discount_rate > -1.0:
        raise ValueError("monthly_discount_rate must be > -1")
    month = DAYS_PER_MONTH / _unit_days(time_unit)
    spend = gamma_gamma_expected_spend(gamma_gamma, frequency, monetary_value)
    value = np.zeros_like(spend)
    previous = bgnbd_expected_purchases(bgnbd, 0.0, frequency, recency, T)
    for k in range(1, horizon_months + 1):
        cumulative = bgnbd_expected_purchases(bgnbd, k * month, frequency, recency, T)
        value = value + spend * (cumulative - previous) / (1.0 + monthly_discount_rate) ** k
        previous = cumulative
    return value


def discounted_expected_purchases(
    bgnbd: Mapping[str, float] | FitResult,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    time_unit: TimeUnit,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> np.ndarray:
    """sum_{k=1..H} (E[Y_i(k * M)] - E[Y_i((k-1) * M)]) / (1 + d)^k: the purchases part of CLV.

    :func:`customer_lifetime_value` equals E[Z_i] times this, since the expected spend per
    transaction does not depend on k. Kept separate so that a caller with another spend
    estimate (a fallback when the Gamma-Gamma fit did not converge) discounts the BG/NBD
    purchases exactly as the CLV does.
    """
    if horizon_months < 1:
        raise ValueError("horizon_months must be >= 1")
    if not monthly_discount_rate > -1.0:
        raise ValueError("monthly_discount_rate must be > -1")
    month = DAYS_PER_MONTH / _unit_days(time_unit)
    previous = bgnbd_expected_purchases(bgnbd, 0.0, frequency, recency, T)
    total = np.zeros_like(previous)
    for k in range(1, horizon_months + 1):
        cumulative = bgnbd_expected_purchases(bgnbd, k * month, frequency, recency, T)
        total = total + (cumulative - previous) / (1.0 + monthly_discount_rate) ** k
        previous = cumulative
    return total


def score_customers(
    summary: pl.DataFrame,
    bgnbd: Mapping[str, float] | FitResult,
    gamma_gamma: Mapping[str, float] | FitResult,
    *,
    time_unit: TimeUnit,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> pl.DataFrame:
    """The summary (from :func:`summarize_transactions`) plus p_alive, expected_purchases (over
    the horizon), expected_spend and clv: one call for the dbt model that writes the mart."""
    cols = [summary[c] for c in ("frequency", "recency", "T")]
    month = DAYS_PER_MONTH / _unit_days(time_unit)
    return summary.with_columns(
        pl.Series("p_alive", bgnbd_probability_alive(bgnbd, *cols)),
        pl.Series(
            "expected_purchases",
            bgnbd_expected_purchases(bgnbd, horizon_months * month, *cols),
        ),
        pl.Series(
            "expected_spend",
            gamma_gamma_expected_spend(
                gamma_gamma, summary["frequency"], summary["monetary_value"]
            ),
        ),
        pl.Series(
            "clv",
            customer_lifetime_value(
                bgnbd,
                gamma_gamma,
                *cols,
                summary["monetary_value"],
                time_unit=time_unit,
                horizon_months=horizon_months,
                monthly_discount_rate=monthly_discount_rate,
            ),
        ),
    )


# ---------------------------------------------------------------------------------------------
# Fit results -> marts.clv_model_params rows
# ---------------------------------------------------------------------------------------------

MODEL_PARAMS_SCHEMA: Final = {
    "model": pl.String,
    "parameter": pl.String,
    "value": pl.Float64,
    "log_likelihood": pl.Float64,
    "customers_fitted": pl.Int64,
    "observation_end": pl.Date,
    "time_unit": pl.String,
    "converged": pl.Boolean,
    "message": pl.String,
    "fit_seconds": pl.Float64,
}


def model_param_rows(
    results: Iterable[FitResult], *, observation_end: date, time_unit: TimeUnit
) -> list[dict[str, object]]:
    """One row per (model, parameter) for ``marts.clv_model_params``.

    Non-finite numbers become None (SQL NULL) so a failed fit shows as NULL with
    ``converged = false`` and its message, never as NaN that sorts and averages oddly.
    """
    _unit_days(time_unit)
    end = _as_date(observation_end)
    return [
        {
            "model": result.model,
            "parameter": name,
            "value": _finite_or_none(value),
            "log_likelihood": _finite_or_none(result.log_likelihood),
            "customers_fitted": result.customers_fitted,
            "observation_end": end,
            "time_unit": time_unit,
            "converged": result.converged,
            "message": result.message,
            "fit_seconds": result.fit_seconds,
        }
        for result in results
        for name, value in result.parameters.items()
    ]


def model_params_frame(
    results: Iterable[FitResult], *, observation_end: date, time_unit: TimeUnit
) -> pl.DataFrame:
    """:func:`model_param_rows` as a Polars frame with a fixed schema (stable even when empty)."""
    rows = model_param_rows(results, observation_end=observation_end, time_unit=time_unit)
    return pl.DataFrame(rows, schema=MODEL_PARAMS_SCHEMA, orient="row")


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Optimisation and result bookkeeping shared by both models
# ---------------------------------------------------------------------------------------------


def _minimize_from_starts(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: list[np.ndarray],
    n: int,
) -> optimize.OptimizeResult:
    """L-BFGS-B from each start; keep the lowest objective (the mean negative log-likelihood
    of n customers). Non-finite evaluations (an overflow far from the optimum) are returned as
    +inf so the line search backs off."""
    if not starts:
        raise ValueError("at least one starting point is needed")

    def guarded(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            value, grad = objective(log_params)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return np.inf, np.zeros_like(log_params)
        return value, grad

    best: optimize.OptimizeResult | None = None
    for start in starts:
        result = optimize.minimize(
            guarded,
            np.clip(start, -LOG_BOUND, LOG_BOUND),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
            options={"maxiter": MAX_ITERATIONS, "ftol": 1e-15, "gtol": 1e-10},
        )
        if best is None or _better(result, best):
            best = result
    assert best is not None
    best.grad_norm = float(np.max(np.abs(guarded(best.x)[1])))
    best.free_toward_bound = _free_toward_bound(guarded, best, FLAT_LOG_LIKELIHOOD / max(n, 1))
    return best


def _free_toward_bound(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    best: optimize.OptimizeResult,
    tolerance: float,
) -> list[int]:
    """Indices of the parameters that can be moved, alone, to a search bound without the
    likelihood getting worse. Far along a flat direction (a -> 0 when nobody drops out) the
    gradient in log-parameters vanishes, so the optimiser may stop anywhere on the way and
    report a small gradient: the estimate there is arbitrary, not converged."""
    if not np.isfinite(best.fun):
        return []
    free = []
    for i in range(best.x.size):
        for bound in (-LOG_BOUND, LOG_BOUND):
            moved = best.x.copy()
            moved[i] = bound
            if objective(moved)[0] <= best.fun + tolerance:
                free.append(i)
                break
    return free


def _better(candidate: optimize.OptimizeResult, incumbent: optimize.OptimizeResult) -> bool:
    if not np.isfinite(candidate.fun):
        return False
    return not np.isfinite(incumbent.fun) or candidate.fun < incumbent.fun


def _fit_result(
    model: str,
    names: tuple[str, ...],
    best: optimize.OptimizeResult,
    n: int,
    started: float,
    n_starts: int,
    excluded: int = 0,
) -> FitResult:
    """Turn the best optimiser run into a FitResult, deciding convergence from the evidence:
    the optimiser's own verdict, finite positive estimates, no bound hit, small gradient."""
    values = np.exp(best.x)
    parameters = {name: float(value) for name, value in zip(names, values, strict=True)}
    problem = _convergence_problem(best, names)
    summary = (
        f"{best.message}; best of {n_starts} starts after {best.nit} iterations, "
        f"max |gradient| {best.grad_norm:.2e}"
    )
    return FitResult(
        model=model,
        parameters=parameters,
        log_likelihood=float(-best.fun * n) if np.isfinite(best.fun) else math.nan,
        customers_fitted=n,
        converged=not problem,
        iterations=int(best.nit),
        gradient_norm=best.grad_norm,
        message=f"not converged: {problem} ({summary})" if problem else f"converged: {summary}",
        fit_seconds=time.perf_counter() - started,
        customers_excluded=excluded,
    )


def _convergence_problem(best: optimize.OptimizeResult, names: tuple[str, ...]) -> str:
    if not np.isfinite(best.fun) or not np.all(np.isfinite(best.x)):
        return "the likelihood could not be evaluated at any point tried"
    at_bound = [
        f"{name}={math.exp(lp):.3g}"
        for name, lp in zip(names, best.x, strict=True)
        if abs(lp) >= LOG_BOUND - BOUND_MARGIN
    ]
    at_bound += [
        f"{names[i]}={math.exp(best.x[i]):.3g}"
        for i in getattr(best, "free_toward_bound", [])
        if abs(best.x[i]) < LOG_BOUND - BOUND_MARGIN
    ]
    if at_bound:
        return (
            f"{', '.join(at_bound)} ran to the search bound, or can go there losing less than "
            f"{FLAT_LOG_LIKELIHOOD:g} of log-likelihood: the data do not identify it (the "
            "likelihood keeps improving, or stays flat, towards 0 or infinity)"
        )
    if best.grad_norm > GRADIENT_TOLERANCE:
        return f"gradient {best.grad_norm:.2e} above tolerance {GRADIENT_TOLERANCE:.0e}"
    # L-BFGS-B ends with "ABNORMAL" when its line search can improve no further: at an optimum
    # whose gradient is already within tolerance (checked above) that is convergence, and
    # which of the two messages it gives depends on rounding (summation order, BLAS threads).
    if not best.success and "ABNORMAL" not in str(best.message):
        return f"optimiser stopped early ({best.message})"
    return ""


def _unfitted(
    model: str,
    names: tuple[str, ...],
    n: int,
    reason: str,
    started: float,
    excluded: int = 0,
) -> FitResult:
    """A not-converged result for data that cannot identify the model (no optimisation run)."""
    return FitResult(
        model=model,
        parameters=dict.fromkeys(names, math.nan),
        log_likelihood=math.nan,
        customers_fitted=n,
        converged=False,
        iterations=0,
        gradient_norm=math.nan,
        message=f"not converged: {reason}",
        fit_seconds=time.perf_counter() - started,
        customers_excluded=excluded,
    )


def _parameter_values(
    params: Mapping[str, float] | FitResult,
    model: str,
    names: tuple[str, ...],
    require_converged: bool,
) -> tuple[float, ...]:
    """Parameters in canonical order, refusing unusable ones before they produce nonsense."""
    if isinstance(params, FitResult):
        if params.model != model:
            raise ValueError(f"expected a {model} fit, got {params.model}")
        if require_converged and not params.converged:
            raise ModelNotConvergedError(f"{model} fit is not usable: {params.message}")
        params = params.parameters
    missing = [name for name in names if name not in params]
    if missing:
        raise ValueError(f"{model} parameters lack {missing}")
    values = tuple(float(params[name]) for name in names)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{model} parameters must be finite and positive, got {values}")
    if model == GAMMA_GAMMA and require_converged and not values[1] > 1.0:
        raise ValueError(f"gamma_gamma needs q > 1 for a finite mean spend, got q={values[1]}")
    return values
