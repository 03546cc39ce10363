"""Great Expectations suites, one per guarded asset, named after it, defined in code.

Each expectation carries GX's own severity: ``critical`` stops everything downstream of the asset,
``warning`` is reported and lets the run go on. Queries of ``UnexpectedRowsExpectation`` may use
``{since}``: the start of the load being checked (the runner fills it in), so that a rule about
"this batch" looks at the files of this load only.

The raw suites are built from the source specifications of ``ingestion.sources``, so that a new
source or column gets its checks from the same place that defines how it is loaded.
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

# The time that says when each source's record happened, for the plausible-window check.
EVENT_TIME = {
    "contacts": "updated_at_utc",
    "email": "event_at",
    "calls": "started_at_utc",
    "web": "event_at",
    "orders": "created_at_utc",
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
    hours = dict(FRESHNESS_HOURS)
    for part in filter(None, (p.strip() for p in setting.split(","))):
        name, _, value = part.rpartition("=")
        if name and name.strip() not in hours:
            raise ValueError(
                f"{FRESHNESS_ENV}: unknown source {name.strip()!r} in {setting!r} "
                f"(sources: {', '.join(sorted(hours))})"
            )
        try:
            interval = float(value)
        except ValueError:
            interval = 0
        if not interval > 0:
            raise ValueError(
                f"{FRESHNESS_ENV}: {value.strip()!r} in {setting!r} is not a positive number of "
                "hours (write 72 for every source, or web=6,contacts=168)"
            )
        hours.update({name.strip(): interval} if name else dict.fromkeys(hours, interval))
    return hours


@dataclass(frozen=True)
class Suite:
    """The expectations of one asset's table."""

    name: str  # the guarded asset's key, "raw.contacts"
    schema: str
    table: str
    expectations: tuple[Expectation, ...]

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"


def known_currencies() -> list[str]:
    """The currencies the reporting conversion knows (dbt seed currency_rates.csv)."""
    with (SEEDS / "currency_rates.csv").open(newline="") as f:
        return sorted({row["currency"] for row in csv.DictReader(f)})


def _freshness(source: Source, hours: float) -> Expectation:
    """The source's newest landed file is at most ``hours`` old (file times are UTC)."""
    now = "now() AT TIME ZONE 'UTC'"
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            "SELECT arg_max(file_name, modified_at) AS newest_file,"
            " max(modified_at) AS modified_at,"
            f" round(epoch({now} - max(modified_at)) / 3600, 1) AS hours_ago"
            f" FROM audit.loaded_files WHERE source = '{source.name}' AND status = 'loaded'"
            f" HAVING max(modified_at) < {now} - INTERVAL '{hours:g} hours'"
        ),
        severity=WARNING,
        description=(
            f"Freshness: the newest loaded file of {source.name} was modified less than "
            f"{hours:g} hours ago (a source whose exports stopped arriving)."
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
        exp.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"SELECT {', '.join(key)}, {EVENT_TIME[source.name]} FROM {{batch}} "
                f"WHERE {EVENT_TIME[source.name]} < TIMESTAMP '{EARLIEST}' "
                f"OR {EVENT_TIME[source.name]} > now()::TIMESTAMP + INTERVAL 1 DAY"
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
            f"WHERE {column} > now()::TIMESTAMP + INTERVAL 1 DAY "
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


def _customer_360_suite() -> Suite:
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
    )
    return Suite("marts.customer_360", "marts", "customer_360", checks)


STAGE_SUITES: dict[str, Suite] = {
    s.name: s for s in (*_staging_suites(), _identity_suite(), _customer_360_suite())
}
"""Suites of dbt models, keyed by the guarded asset ("schema.table")."""

RAW_SUITES: dict[str, Suite] = {name: _raw_suite(s) for name, s in SOURCES.items()}
