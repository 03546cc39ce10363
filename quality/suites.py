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
from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
from great_expectations.expectations import Expectation

from ingestion.sources import SOURCES, Source

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


def _raw_suite(source: Source) -> Suite:
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


RAW_SUITES: dict[str, Suite] = {name: _raw_suite(s) for name, s in SOURCES.items()}
