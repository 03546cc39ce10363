"""Audience exports: the contactable customers of one RFM segment, as a file for a campaign tool.

The warehouse decides who may be contacted (``marts.customer_segments``: ``is_email_reachable``
and ``is_phone_reachable`` with the reason when not, built in dbt from consent, unsubscribes,
bounces and spam reports of the person and of the address), so an export, ``segment_summary``
and any BI query agree on one rule. This module only reads it: a read-only connection, the
segment name and nothing else from the user as a query parameter, SQL text made from constants.
No Dagster here; the ``crm360 audience export`` command calls it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from ingestion.warehouse import connect

SEGMENTS_TABLE = "marts.customer_segments"
CUSTOMERS_TABLE = "marts.customer_360"
SEGMENT_NAMES_TABLE = "seeds.rfm_segments"


@dataclass(frozen=True)
class Channel:
    """Where a channel's address and its reachability live (constants, never user input)."""

    address_column: str
    reachable_column: str
    reason_column: str


CHANNELS = {
    "email": Channel("email", "is_email_reachable", "email_suppression_reason"),
    "phone": Channel("phone", "is_phone_reachable", "phone_suppression_reason"),
}

# What a campaign needs besides the address: who, where, and why they are in the list.
CAMPAIGN_COLUMNS = (
    "c.first_name",
    "c.last_name",
    "c.country",
    "c.preferred_channel",
    "s.rfm_segment",
    "s.lifecycle_stage",
    "s.value_tier",
    "s.recency_days",
    "s.frequency_orders",
    "s.net_revenue_reporting",
    "s.next_best_product_key",
    "s.next_best_product_title",
)

WRITERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class AudienceError(Exception):
    """A problem the user can act on (unknown segment, no warehouse, unsupported file type)."""


@dataclass
class AudienceExport:
    """What an export wrote and whom it left out, by reason."""

    segment: str
    channel: str
    path: Path
    exported: int
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())

    def summary(self) -> str:
        members = self.exported + self.suppressed_total
        lines = [
            f"crm360: audience {self.segment!r} by {self.channel}: {self.exported} of "
            f"{members} customers written to {self.path}"
        ]
        if self.suppressed:
            reasons = ", ".join(f"{reason} {n}" for reason, n in self.suppressed.items())
            lines.append(f"  suppressed {self.suppressed_total}: {reasons}")
        else:
            lines.append("  suppressed 0")
        return "\n".join(lines)


def default_output(segment: str, channel: str) -> Path:
    """``audience-<segment>-<channel>.csv`` in the working directory (At Risk -> at-risk)."""
    slug = re.sub(r"[^a-z0-9]+", "-", segment.lower().replace("'", "")).strip("-")
    return Path(f"audience-{slug}-{channel}.csv")


def segment_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The segments seeds/rfm_segments.csv defines, whether or not anyone is in them now."""
    return [
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT segment FROM {SEGMENT_NAMES_TABLE} ORDER BY segment"
        ).fetchall()
    ]


def resolve_segment(name: str, valid: list[str]) -> str:
    """The segment as the warehouse spells it; case and spacing of the user's name don't matter."""

    def key(text: str) -> str:
        return " ".join(text.replace("\u2019", "'").split()).casefold()

    matches = [segment for segment in valid if key(segment) == key(name)]
    if not matches:
        raise AudienceError(
            f"unknown segment {name!r}; valid segments: " + ", ".join(repr(s) for s in valid)
        )
    return matches[0]


def _audience_sql(channel: Channel) -> str:
    columns = ",\n    ".join(CAMPAIGN_COLUMNS)
    return f"""
SELECT
    s.customer_id,
    c.{channel.address_column},
    {columns}
FROM {SEGMENTS_TABLE} AS s
INNER JOIN {CUSTOMERS_TABLE} AS c ON c.customer_id = s.customer_id
WHERE s.rfm_segment = ?
  AND s.{channel.reachable_column}
  AND c.{channel.address_column} IS NOT NULL
ORDER BY s.customer_id
"""


def _suppressed_sql(channel: Channel) -> str:
    return f"""
SELECT coalesce(s.{channel.reason_column}, 'no_{channel.address_column}') AS reason, count(*)
FROM {SEGMENTS_TABLE} AS s
INNER JOIN {CUSTOMERS_TABLE} AS c ON c.customer_id = s.customer_id
WHERE s.rfm_segment = ?
  AND NOT (s.{channel.reachable_column} AND c.{channel.address_column} IS NOT NULL)
GROUP BY ALL
ORDER BY 2 DESC, 1
"""


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def _write(frame: pl.DataFrame, path: Path) -> None:
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise AudienceError(
            f"cannot write {path}: use a file name ending in " + ", ".join(sorted(WRITERS))
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if writer == "csv":
        frame.write_csv(partial)
    else:
        frame.write_parquet(partial)
    partial.replace(path)  # a campaign tool watching the folder never sees half a file


def export_audience(
    warehouse: Path, segment: str, channel: str, out: Path | None = None
) -> AudienceExport:
    """Write the customers of ``segment`` reachable on ``channel`` to ``out`` (CSV or Parquet by
    extension; default :func:`default_output`), one row per customer, and count the segment's
    customers left out by reason."""
    if channel not in CHANNELS:
        raise AudienceError(f"unknown channel {channel!r}; valid channels: email, phone")
    if out is not None and Path(out).suffix.lower() not in WRITERS:
        raise AudienceError(
            f"cannot write {out}: use a file name ending in " + ", ".join(sorted(WRITERS))
        )
    if not warehouse.exists():
        raise AudienceError(f"no warehouse at {warehouse}: build it with `crm360 run` first")
    spec = CHANNELS[channel]
    try:
        with connect(warehouse, read_only=True) as conn:
            name = resolve_segment(segment, segment_names(conn))
            frame = conn.sql(_audience_sql(spec), params=[name]).pl()
            suppressed = dict(conn.execute(_suppressed_sql(spec), [name]).fetchall())
    except duckdb.CatalogException as error:
        raise AudienceError(
            f"{warehouse} has no segment marts yet ({_first_line(error)}); "
            "build them with `crm360 run`"
        ) from error
    except duckdb.IOException as error:
        raise AudienceError(
            f"cannot open {warehouse} read-only ({_first_line(error)}); "
            "is a run writing it right now?"
        ) from error
    path = Path(out) if out is not None else default_output(name, channel)
    _write(frame, path)
    return AudienceExport(name, channel, path, frame.height, suppressed)
