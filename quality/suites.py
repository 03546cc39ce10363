"""Great Expectations suites, one per guarded asset, named after it, defined in code.

Each expectation carries GX's own severity: ``critical`` stops everything downstream of the asset,
``warning`` is reported and lets the run go on. Queries of ``UnexpectedRowsExpectation`` may use
``{since}``: the start of the load being checked (the runner fills it in), so that a rule about
"this batch" looks at the files of this load only.

The raw suites are built from the source specifications of ``ingestion.sources``, so that a new
source or column gets its checks from the same place that defines how it is loaded.

A suite may also name ``Metric``s: numbers about its table that every run remembers, and
expectations (warnings) that they did not move too far from the previous run's values.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
from great_expectations.expectations import Expectation

from ingestion.sources import EMAIL_EVENTS, SOURCES, Source

CRITICAL, WARNING = "critical", "warning"

E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

MAX_QUARANTINE_SHARE = 0.5
"""A file with more than this share of its rows quarantined stops its source: an upstream
export that renamed or dropped a column must not pass as an almost empty load."""

EARLIEST = "2000-01-01"
"""No record of any source is older than this; anything earlier is a parsing or export error."""

NOW_UTC = "(now() AT TIME ZONE 'UTC')"
"""Now as a UTC timestamp without time zone, the form of every ``*_utc`` column and of the audit
times. ``now()::TIMESTAMP`` would be the session's local time (GX's connection keeps the
machine's time zone), so "tomorrow" would move with the machine's zone."""

# The time that says when each source's record happened, for the plausible-window check.
EVENT_TIME = {
    "contacts": "updated_at_utc",
    "email": "event_at",
    "calls": "started_at_utc",
    "web": "event_at",
    "orders": "created_at_utc",
}

# Sources whose records arrive as versions (staging keeps the newest of each id): what one record
# is called, and the time it was created, which no later version changes.
VERSIONED = {
    "contacts": ("contact", "created_at_utc"),
    "orders": ("order", "created_at_utc"),
}

SEEDS = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds"

FRESHNESS_HOURS: dict[str, float] = {name: 48 for name in SOURCES}
"""How long each source may go without a new file before its suite warns (freshness). Change a
source's interval here, or for one deployment with ``CRM360_FRESHNESS_HOURS``: a number of hours
for every source (``72``) or ``source=hours`` pairs for some (``web=6,contacts=168``)."""

FRESHNESS_ENV = "CRM360_FRESHNESS_HOURS"


def freshness_hours(setting: str | None = None) -> dict[str, float]:
    """Each source's freshness interval: ``FRESHNESS_HOURS`` with the environment's setting."""
    setting = os.environ.get(FRESHNESS_ENV, "") if setting is None else setting
    return _numbers_setting(
        FRESHNESS_ENV,
        setting,
        FRESHNESS_HOURS,
        kind="source",
        unit=" of hours",
        example="72 for every source, or web=6,contacts=168",
        one_for_all=True,
    )


def _numbers_setting(
    env: str,
    setting: str,
    defaults: dict[str, float],
    *,
    kind: str,
    unit: str,
    example: str,
    one_for_all: bool,
) -> dict[str, float]:
    """``defaults`` with a setting of ``name=number`` pairs applied (with ``one_for_all``, a bare
    number sets every name). Errors name the variable, the part at fault and how to write it."""
    values = dict(defaults)
    for part in filter(None, (p.strip() for p in setting.split(","))):
        name, _, text = (t.strip() for t in part.rpartition("="))
        if (name and name not in values) or (not name and not one_for_all):
            raise ValueError(
                f"{env}: {f'unknown {kind} {name!r}' if name else f'no {kind} named by {part!r}'}"
                f" in {setting!r} ({kind}s: {', '.join(sorted(values))}; write {example})"
            )
        try:
            number = float(text)
        except ValueError:
            number = 0
        if not number > 0:
            raise ValueError(
                f"{env}: {text!r} in {setting!r} is not a positive number{unit} (write {example})"
            )
        values.update({name: number} if name else dict.fromkeys(values, number))
    return values


@dataclass(frozen=True)
class Metric:
    """A number about a table that every run of its suite remembers (in ``METRICS_TABLE``, see
    ``quality.metrics``), so that the next run can tell when it moved further than ``max_shift``
    from the value of the previous run (a shifted distribution)."""

    name: str  # "anonymous_share"
    sql: str  # a query giving one number (or NULL, which is never compared), over {batch}
    max_shift: float  # in the metric's own unit; with ``relative``, a share of the previous value
    relative: bool
    what: str  # the number in words

    @property
    def bound(self) -> str:
        return f"{self.max_shift:.0%}" if self.relative else f"{self.max_shift:g}"


@dataclass(frozen=True)
class Suite:
    """The expectations of one asset's table."""

    name: str  # the guarded asset's key, "raw.contacts"
    schema: str
    table: str
    expectations: tuple[Expectation, ...]
    metrics: tuple[Metric, ...] = ()  # remembered at every run; their shifts are expectations

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"


def known_currencies() -> list[str]:
    """The currencies the reporting conversion knows (dbt seed currency_rates.csv)."""
    with (SEEDS / "currency_rates.csv").open(newline="") as f:
        return sorted({row["currency"] for row in csv.DictReader(f)})


def _freshness(source: Source, hours: float) -> Expectation:
    """The source's newest landed file is at most ``hours`` old (file times are UTC)."""
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            "SELECT arg_max(file_name, modified_at) AS newest_file,"
            " max(modified_at) AS modified_at,"
            f" round(epoch({NOW_UTC} - max(modified_at)) / 3600, 1) AS hours_ago"
            f" FROM audit.loaded_files WHERE source = '{source.name}' AND status = 'loaded'"
            f" HAVING max(modified_at) < {NOW_UTC} - INTERVAL '{hours:g} hours'"
        ),
        severity=WARNING,
        description=(
            f"Freshness: the newest loaded file of {source.name} was modified less than "
            f"{hours:g} hours ago (a source whose exports stopped arriving)."
        ),
    )


def _one_record_per_id(source: Source) -> Expectation:
    """Versions of one id that were created at different times are two records sharing the id
    (an id reused after a CRM migration, two shops exporting into one folder). Ingestion keeps
    both, since their keys (id and version time) differ, and staging would keep only the newer:
    a contact or an order would vanish without a trace. Compared to the second, as exports
    differ in how many decimals they write."""
    record, created = VERSIONED[source.name]
    id_ = source.key[0]
    created_s = f"date_trunc('second', {created})"
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"SELECT {id_}, count(DISTINCT {created_s}) AS records,"
            f" min({created}) AS first_{created}, max({created}) AS last_{created}"
            f" FROM {{batch}} GROUP BY {id_} HAVING count(DISTINCT {created_s}) > 1"
        ),
        severity=CRITICAL,
        description=(
            f"Each {id_} names one {record}: all its versions have the same {created} (two "
            f"{record}s sharing an id would leave only the newer in staging)."
        ),
    )


def _raw_suite(source: Source, freshness: float | None = None) -> Suite:
    """``freshness``: the source's interval in hours (default from ``freshness_hours``)."""
    exp = gx.expectations
    key = list(source.key)
    checks: list[Expectation] = [
        exp.ExpectTableRowCountToBeBetween(
            min_value=1,
            severity=WARNING,
            description=(
                "The source has loaded rows. A warning: a deployment may not use every source, "
                "but an empty table usually means its exports do not arrive."
            ),
        ),
        exp.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "SELECT file_name, rows_in_file, rows_quarantined FROM audit.loaded_files "
                f"WHERE source = '{source.name}' AND status = 'loaded' "
                "AND started_at >= TIMESTAMP '{since}' AND rows_in_file > 0 "
                f"AND rows_quarantined > {MAX_QUARANTINE_SHARE} * rows_in_file"
            ),
            severity=CRITICAL,
            description=(
                f"No file of this load has more than {MAX_QUARANTINE_SHARE:.0%} of its rows "
                "quarantined (a renamed column or a broken export)."
            ),
        ),
        (
            exp.ExpectColumnValuesToBeUnique(column=key[0], severity=CRITICAL)
            if len(key) == 1
            else exp.ExpectCompoundColumnsToBeUnique(column_list=key, severity=CRITICAL)
        ),
        *([_one_record_per_id(source)] if source.name in VERSIONED else []),
        exp.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"SELECT {', '.join(key)}, {EVENT_TIME[source.name]} FROM {{batch}} "
                f"WHERE {EVENT_TIME[source.name]} < TIMESTAMP '{EARLIEST}' "
                f"OR {EVENT_TIME[source.name]} > {NOW_UTC} + INTERVAL 1 DAY"
            ),
            severity=CRITICAL,
            description=(
                f"{EVENT_TIME[source.name]} lies between {EARLIEST} and tomorrow (nothing from "
                "the future)."
            ),
        ),
    ]
    checks += [
        exp.ExpectColumnValuesToNotBeNull(column=c, severity=CRITICAL) for c in source.required
    ]
    checks.append(_volume_shift(source))
    checks.append(_freshness(source, freshness or freshness_hours()[source.name]))
    checks += [
        exp.ExpectColumnValuesToMatchRegex(column=p.column, regex=E164, severity=CRITICAL)
        for p in source.phones
    ]
    checks += [
        exp.ExpectColumnValuesToMatchRegex(column=name, regex=EMAIL, mostly=0.99, severity=WARNING)
        for name, _, _ in source.derived
        if name.endswith("email_normalized")
    ]
    if source.name == "orders":
        checks += [
            exp.ExpectColumnValuesToBeInSet(
                column="currency", value_set=known_currencies(), severity=CRITICAL
            ),
            exp.UnexpectedRowsExpectation(
                unexpected_rows_query=(
                    "SELECT id, total_price FROM {batch} "
                    "WHERE try_cast(total_price AS DECIMAL(18, 2)) < 0"
                ),
                severity=CRITICAL,
                description="No order has a negative total price.",
            ),
        ]
    return Suite(f"raw.{source.table}", "raw", source.table, tuple(checks))


# -- after ingestion: staging, identity, marts ---------------------------------------------------

VOLUME_BOUNDS = (0.5, 2.0)
"""A file of this load with fewer or more rows loaded than these multiples of the median of the
source's 14 files before it raises a warning: a shifted volume (a partial export, a duplicated
feed) is seen before it skews the marts."""


def _volume_shift(source: Source) -> Expectation:
    low, high = VOLUME_BOUNDS
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            "WITH files AS ("
            "  SELECT file_name, started_at, rows_loaded, median(rows_loaded) OVER ("
            "    ORDER BY file_name ROWS BETWEEN 14 PRECEDING AND 1 PRECEDING) AS usual,"
            "  count(*) OVER (ORDER BY file_name ROWS BETWEEN 14 PRECEDING AND 1 PRECEDING) AS n"
            f"  FROM audit.loaded_files WHERE source = '{source.name}' AND status = 'loaded')"
            " SELECT file_name, rows_loaded, usual FROM files"
            " WHERE started_at >= TIMESTAMP '{since}' AND n >= 3"
            f" AND (rows_loaded < {low} * usual OR rows_loaded > {high} * usual)"
        ),
        severity=WARNING,
        description=(
            f"Each file of this load holds between {low}x and {high}x the median rows of the "
            "source's 14 files before it (a shifted volume)."
        ),
    )


def _same_count(expected_sql: str, what: str) -> Expectation:
    """The table holds exactly as many rows as ``expected_sql`` counts."""
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"SELECT e.n AS expected, t.n AS found FROM ({expected_sql}) e(n), "
            "(SELECT count(*) FROM {batch}) t(n) WHERE e.n <> t.n"
        ),
        severity=CRITICAL,
        description=f"Row counts reconcile: {what}.",
    )


def _not_future(column: str, key: str) -> Expectation:
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"SELECT {key}, {column} FROM {{batch}} "
            f"WHERE {column} > {NOW_UTC} + INTERVAL 1 DAY "
            f"OR {column} < TIMESTAMP '{EARLIEST}'"
        ),
        severity=CRITICAL,
        description=f"{column} lies between {EARLIEST} and tomorrow (nothing from the future).",
    )


def _staging_suites() -> list[Suite]:
    exp = gx.expectations
    email_ok = exp.ExpectColumnValuesToMatchRegex(
        column="email_normalized", regex=EMAIL, mostly=0.99, severity=WARNING
    )
    suites = {
        "stg_orders__orders": (
            _same_count("SELECT count(DISTINCT id) FROM raw.orders", "one staged order per raw id"),
            exp.ExpectColumnValuesToBeInSet(
                column="currency", value_set=known_currencies(), severity=CRITICAL
            ),
            exp.ExpectColumnValuesToNotBeNull(column="net_revenue_reporting", severity=CRITICAL),
            exp.ExpectColumnValuesToBeBetween(
                column="net_revenue_reporting",
                min_value=0,
                severity=CRITICAL,
                description="Money net of refunds is never negative.",
            ),
            _not_future("created_at_utc", "order_id"),
            exp.ExpectColumnValuesToMatchRegex(column="phone_e164", regex=E164, severity=CRITICAL),
            email_ok,
        ),
        "stg_email__events": (
            _same_count("SELECT count(*) FROM raw.email_events", "every raw email event staged"),
            exp.ExpectColumnValuesToBeUnique(column="email_event_id", severity=CRITICAL),
            exp.ExpectColumnValuesToBeInSet(
                column="event_type",
                value_set=list(EMAIL_EVENTS),
                severity=CRITICAL,
            ),
            _not_future("event_at_utc", "email_event_id"),
            email_ok,
        ),
        "stg_calls__calls": (
            _same_count("SELECT count(*) FROM raw.calls", "every raw call staged"),
            exp.ExpectColumnValuesToMatchRegex(
                column="customer_number_e164", regex=E164, severity=CRITICAL
            ),
            exp.ExpectColumnValuesToBeBetween(
                column="wait_seconds", min_value=0, severity=CRITICAL
            ),
            exp.ExpectColumnValuesToBeBetween(
                column="talk_seconds", min_value=0, severity=CRITICAL
            ),
            _not_future("started_at_utc", "call_id"),
        ),
        "stg_web__events": (
            _same_count("SELECT count(*) FROM raw.web_events", "every raw web event staged"),
            exp.ExpectColumnValuesToBeUnique(column="web_event_id", severity=CRITICAL),
            exp.ExpectColumnValuesToNotBeNull(column="visitor_id", severity=CRITICAL),
            _not_future("event_at_utc", "web_event_id"),
        ),
        "stg_contacts__contacts": (
            _same_count(
                "SELECT count(DISTINCT contact_id) FROM raw.contacts",
                "one staged contact per raw contact_id",
            ),
            exp.ExpectColumnValuesToMatchRegex(column="phone_e164", regex=E164, severity=CRITICAL),
            email_ok,
        ),
    }
    return [Suite(f"staging.{name}", "staging", name, checks) for name, checks in suites.items()]


RAW_RECORD_KEYS = """
    SELECT DISTINCT 'contacts' AS source, CAST(contact_id AS VARCHAR) AS id FROM raw.contacts
    UNION ALL SELECT DISTINCT 'email', CAST(sg_event_id AS VARCHAR) FROM raw.email_events
    UNION ALL SELECT DISTINCT 'calls', CAST(call_id AS VARCHAR) FROM raw.calls
    UNION ALL SELECT DISTINCT 'web', CAST(message_id AS VARCHAR) FROM raw.web_events
    UNION ALL SELECT DISTINCT 'orders', CAST(id AS VARCHAR) FROM raw.orders
"""


def _identity_suite() -> Suite:
    exp = gx.expectations
    checks = (
        exp.ExpectCompoundColumnsToBeUnique(
            column_list=["source", "source_record_id"], severity=CRITICAL
        ),
        exp.ExpectColumnValuesToNotBeNull(column="customer_id", severity=CRITICAL),
        exp.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"SELECT r.source, r.id FROM ({RAW_RECORD_KEYS}) r ANTI JOIN {{batch}} m "
                "ON m.source = r.source AND m.source_record_id = r.id"
            ),
            severity=CRITICAL,
            description="Every loaded record is in the identity map (exactly once, with the "
            "uniqueness above).",
        ),
        _same_count(f"SELECT count(*) FROM ({RAW_RECORD_KEYS})", "one row per loaded record"),
    )
    return Suite("marts.identity_map", "marts", "identity_map", checks)


METRICS_TABLE = "audit.quality_metrics"
"""Where each run's metric values are kept (``quality.metrics`` writes it): the previous run a
shift is measured from is the newest row of the metric whose suite did not block."""

MAX_SHIFT: dict[str, float] = {"anonymous_share": 0.05, "average_order_value": 0.2}
"""How far a metric of ``customer_360`` may move from the previous run's value before its suite
warns: the share of anonymous profiles by 0.05 (5 percentage points), the average order value by
20% of the previous value. Measured on generated data (1,500 people), a day's new data moved the
whole-table values by up to 3 points and 10% once the first days had loaded. Change them here,
or for one deployment with ``CRM360_MAX_SHIFT`` (``anonymous_share=0.1,average_order_value=0.5``),
read when the definitions load."""

MAX_SHIFT_ENV = "CRM360_MAX_SHIFT"


def max_shift(setting: str | None = None) -> dict[str, float]:
    """Each metric's bound: ``MAX_SHIFT`` with the environment's setting."""
    setting = os.environ.get(MAX_SHIFT_ENV, "") if setting is None else setting
    return _numbers_setting(
        MAX_SHIFT_ENV,
        setting,
        MAX_SHIFT,
        kind="metric",
        unit="",
        example="anonymous_share=0.1,average_order_value=0.5",
        one_for_all=False,
    )


def _shift(suite: str, metric: Metric) -> Expectation:
    """The metric moved at most ``max_shift`` from the previous run's value.

    A warning, not an error: a whole mart's share of anonymous profiles or average order value
    also moves for good reasons (a campaign that brings new visitors, a sale, a price change),
    and the previous run is a single point to compare with. A shift is a reason for a person to
    look, not evidence that the data is wrong; the errors that are (broken ids, revenue that
    does not add up, rates out of range) are critical expectations of their own. The warned
    run's values are the next run's baseline, so one shift warns once."""
    previous = (
        f"SELECT value, run_name, measured_at FROM {METRICS_TABLE}"
        f" WHERE suite = '{suite}' AND metric = '{metric.name}' AND accepted"
        " ORDER BY measured_at DESC LIMIT 1"
    )
    limit = f"{metric.max_shift!r} * abs(p.value)" if metric.relative else repr(metric.max_shift)
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            "SELECT p.value AS previous, c.value AS current, p.run_name AS previous_run,"
            " p.measured_at AS previous_measured_at"
            f" FROM ({metric.sql}) c(value), ({previous}) p"
            f" WHERE abs(c.value - p.value) > {limit}"
        ),
        severity=WARNING,
        description=(
            f"{metric.what[0].upper()}{metric.what[1:]} moved by at most {metric.bound} from "
            "the previous run's value (a shifted distribution)."
        ),
    )


def _customer_360_metrics(bounds: dict[str, float]) -> tuple[Metric, ...]:
    return (
        Metric(
            name="anonymous_share",
            sql="SELECT avg(CASE WHEN is_known THEN 0.0 ELSE 1.0 END)::DOUBLE FROM {batch}",
            max_shift=bounds["anonymous_share"],
            relative=False,
            what="the share of anonymous profiles (not is_known)",
        ),
        Metric(
            name="average_order_value",
            sql=(
                "SELECT (sum(net_revenue_reporting) / nullif(sum(order_count), 0))::DOUBLE "
                "FROM {batch}"
            ),
            max_shift=bounds["average_order_value"],
            relative=True,
            what="the average order value (net revenue per order not cancelled, reporting "
            "currency)",
        ),
    )


def _customer_360_suite(bounds: dict[str, float] | None = None) -> Suite:
    """``bounds``: each metric's largest shift (default from ``max_shift``)."""
    metrics = _customer_360_metrics(bounds or max_shift())
    exp = gx.expectations
    checks = (
        exp.ExpectColumnValuesToBeUnique(column="customer_id", severity=CRITICAL),
        exp.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "SELECT c.revenue AS in_customer_360, s.revenue AS in_staging "
                "FROM (SELECT coalesce(sum(net_revenue_reporting), 0) FROM {batch}) c(revenue), "
                "(SELECT coalesce(sum(net_revenue_reporting), 0) "
                " FROM staging.stg_orders__orders) s(revenue) "
                "WHERE abs(c.revenue - s.revenue) > 0.01"
            ),
            severity=CRITICAL,
            description="Net revenue of all customers adds up to net revenue in staging.",
        ),
        exp.ExpectColumnValuesToBeBetween(
            column="average_order_value_reporting", min_value=0, severity=CRITICAL
        ),
        *(
            exp.ExpectColumnValuesToBeBetween(
                column=rate, min_value=0, max_value=1, severity=CRITICAL
            )
            for rate in ("email_open_rate", "email_click_rate", "call_resolution_rate")
        ),
        exp.ExpectColumnValuesToBeBetween(
            column="days_since_last_touch", min_value=0, severity=WARNING
        ),
        *(_shift("marts.customer_360", m) for m in metrics),
    )
    return Suite("marts.customer_360", "marts", "customer_360", checks, metrics)


STAGE_SUITES: dict[str, Suite] = {
    s.name: s for s in (*_staging_suites(), _identity_suite(), _customer_360_suite())
}
"""Suites of dbt models, keyed by the guarded asset ("schema.table")."""

RAW_SUITES: dict[str, Suite] = {name: _raw_suite(s) for name, s in SOURCES.items()}
