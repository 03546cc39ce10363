"""The five landing sources of ``landing-contract.md``, as data the loader interprets.

Each source says which fields it has, which are required and how they must look, which key makes
a row a duplicate of one already loaded, and which identifiers to normalise. Rules are SQL over
the columns of one batch, so that validation runs inside DuckDB over the whole file at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


def utc(expr: str) -> str:
    """SQL turning an ISO 8601 text into a naive UTC timestamp (NULL when unparseable)."""
    return f"(try_cast({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"


def email_norm(expr: str) -> str:
    """SQL for the normalised form of an email address: trimmed, lower-cased, empty as NULL."""
    return f"nullif(lower(trim({expr})), '')"


def unix_seconds(expr: str) -> str:
    """SQL for a text of Unix seconds as a DOUBLE, NULL unless a timestamp can hold it.

    Years 1 to 9999 only: ``to_timestamp`` raises on a larger number, NaN or infinity, and one
    such record would otherwise stop its whole batch instead of being quarantined.
    """
    seconds = f"try_cast({expr} AS DOUBLE)"
    return f"(CASE WHEN {seconds} BETWEEN -62135596800 AND 253402300799 THEN {seconds} END)"


def iso_timestamp_rule(column: str) -> tuple[str, str]:
    return (
        f"{column} IS NOT NULL AND try_cast({column} AS TIMESTAMPTZ) IS NULL",
        f"format('{column} is not an ISO 8601 timestamp: {{}}', {column})",
    )


@dataclass(frozen=True)
class Phone:
    """A phone column to normalise to E.164; ``region`` is SQL for the ISO country to assume."""

    column: str
    raw: str
    region: str


@dataclass(frozen=True)
class Source:
    name: str
    table: str
    format: Literal["csv", "jsonl"]
    # (raw-table column, key in the record, SQL type): VARCHAR keeps text as written,
    # JSON keeps nested objects and lists whole.
    fields: tuple[tuple[str, str, str], ...]
    required: tuple[str, ...]
    # (SQL that is true when the row is bad, SQL for the reason a person can act on)
    rules: tuple[tuple[str, str], ...]
    # raw-table columns whose values, together, make a row a duplicate of one already loaded
    key: tuple[str, ...]
    key_description: str
    derived: tuple[tuple[str, str, str], ...] = ()
    phones: tuple[Phone, ...] = field(default_factory=tuple)
    # text columns with few distinct values, stored with DuckDB's dictionary compression; every
    # other text column (ids, names, timestamps as written, JSON) is stored with zstd
    categorical: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.fields)

    @property
    def raw_table(self) -> str:
        return f"raw.{self.table}"


def _text_fields(*names: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((name, name, "VARCHAR") for name in names)


CONTACTS = Source(
    name="contacts",
    table="contacts",
    format="csv",
    fields=_text_fields(
        "contact_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "address1",
        "address2",
        "city",
        "state",
        "postal_code",
        "country",
        "date_of_birth",
        "lifecycle_stage",
        "email_opt_out",
        "created_at",
        "updated_at",
    ),
    required=("contact_id", "created_at", "updated_at"),
    rules=(iso_timestamp_rule("created_at"), iso_timestamp_rule("updated_at")),
    key=("contact_id", "updated_at_utc"),
    key_description="contact_id and updated_at (an unchanged version re-exported)",
    derived=(
        ("email_normalized", "VARCHAR", email_norm("email")),
        ("created_at_utc", "TIMESTAMP", utc("created_at")),
        ("updated_at_utc", "TIMESTAMP", utc("updated_at")),
    ),
    phones=(Phone("phone_e164", "phone", "country"),),
    categorical=("state", "country", "lifecycle_stage", "email_opt_out"),
)

EMAIL_EVENTS = (
    "processed",
    "delivered",
    "open",
    "click",
    "bounce",
    "dropped",
    "deferred",
    "unsubscribe",
    "spamreport",
)

EMAIL = Source(
    name="email",
    table="email_events",
    format="jsonl",
    fields=(
        *_text_fields("event", "email", "timestamp", "sg_event_id", "sg_message_id"),
        ("category", "category", "JSON"),
        *_text_fields("url", "reason", "type", "useragent", "ip"),
    ),
    required=("event", "email", "timestamp", "sg_event_id"),
    rules=(
        (
            "event NOT IN (" + ", ".join(f"'{e}'" for e in EMAIL_EVENTS) + ")",
            "format('event {} is not one of " + ", ".join(EMAIL_EVENTS) + "', event)",
        ),
        (
            f"{unix_seconds('timestamp')} IS NULL",
            "format('timestamp is not Unix seconds: {}', timestamp)",
        ),
    ),
    key=("sg_event_id",),
    key_description="sg_event_id (a redelivered webhook)",
    categorical=("event", "category", "reason", "type", "useragent"),
    derived=(
        ("email_normalized", "VARCHAR", email_norm("email")),
        (
            "event_at",
            "TIMESTAMP",
            f"(to_timestamp({unix_seconds('timestamp')}) AT TIME ZONE 'UTC')",
        ),
    ),
)

CALLS = Source(
    name="calls",
    table="calls",
    format="csv",
    fields=_text_fields(
        "call_id",
        "direction",
        "customer_number",
        "country",
        "agent_id",
        "queue",
        "started_at",
        "answered_at",
        "ended_at",
        "disposition",
        "csat",
    ),
    required=("call_id", "customer_number", "started_at"),
    rules=(
        (
            "NOT regexp_matches(customer_number, '[0-9]')",
            "format('customer_number has no digits: {}', customer_number)",
        ),
        iso_timestamp_rule("started_at"),
    ),
    key=("call_id",),
    key_description="call_id (the same call exported again)",
    derived=(
        ("started_at_utc", "TIMESTAMP", utc("started_at")),
        ("answered_at_utc", "TIMESTAMP", utc("answered_at")),
        ("ended_at_utc", "TIMESTAMP", utc("ended_at")),
    ),
    phones=(Phone("customer_number_e164", "customer_number", "country"),),
    categorical=("direction", "country", "agent_id", "queue", "disposition", "csat"),
)

WEB_TYPES = ("page", "track", "identify")

WEB = Source(
    name="web",
    table="web_events",
    format="jsonl",
    fields=(
        ("type", "type", "VARCHAR"),
        ("message_id", "messageId", "VARCHAR"),
        ("anonymous_id", "anonymousId", "VARCHAR"),
        ("user_id", "userId", "VARCHAR"),
        ("timestamp", "timestamp", "VARCHAR"),
        ("event", "event", "VARCHAR"),
        ("context", "context", "JSON"),
        ("properties", "properties", "JSON"),
        ("traits", "traits", "JSON"),
    ),
    required=("type", "message_id", "timestamp"),
    rules=(
        (
            "type NOT IN (" + ", ".join(f"'{t}'" for t in WEB_TYPES) + ")",
            "format('type {} is not one of " + ", ".join(WEB_TYPES) + "', type)",
        ),
        iso_timestamp_rule("timestamp"),
        (
            "nullif(trim(anonymous_id), '') IS NULL AND nullif(trim(user_id), '') IS NULL",
            "'neither anonymousId nor userId is present'",
        ),
    ),
    key=("message_id",),
    key_description="messageId (a client retry)",
    categorical=("type", "event"),
    derived=(
        ("event_at", "TIMESTAMP", utc("timestamp")),
        ("traits_email_normalized", "VARCHAR", email_norm("traits->>'email'")),
    ),
    phones=(Phone("traits_phone_e164", "traits->>'phone'", "NULL"),),
)

ORDERS = Source(
    name="orders",
    table="orders",
    format="jsonl",
    fields=(
        *_text_fields("id", "order_number", "created_at", "updated_at", "email", "phone"),
        ("customer", "customer", "JSON"),
        *_text_fields(
            "currency",
            "total_price",
            "subtotal_price",
            "total_tax",
            "total_discounts",
            "financial_status",
            "cancelled_at",
        ),
        ("line_items", "line_items", "JSON"),
        ("billing_address", "billing_address", "JSON"),
        ("shipping_address", "shipping_address", "JSON"),
        ("refunds", "refunds", "JSON"),
    ),
    required=("id", "created_at", "currency"),
    rules=(
        iso_timestamp_rule("created_at"),
        (
            "NOT regexp_full_match(trim(currency), '[A-Za-z]{3}')",
            "format('currency {} is not a three-letter ISO 4217 code', currency)",
        ),
    ),
    categorical=("currency", "financial_status"),
    key=("id", "version_at_utc"),
    key_description="id and updated_at, else created_at (an unchanged version re-exported)",
    derived=(
        ("created_at_utc", "TIMESTAMP", utc("created_at")),
        ("updated_at_utc", "TIMESTAMP", utc("updated_at")),
        ("version_at_utc", "TIMESTAMP", f"coalesce({utc('updated_at')}, {utc('created_at')})"),
        ("customer_id", "VARCHAR", "customer->>'id'"),
        ("email_normalized", "VARCHAR", email_norm("email")),
        ("customer_email_normalized", "VARCHAR", email_norm("customer->>'email'")),
    ),
    phones=(
        Phone(
            "phone_e164",
            "phone",
            "coalesce(billing_address->>'country_code', shipping_address->>'country_code')",
        ),
        Phone(
            "customer_phone_e164",
            "customer->>'phone'",
            "coalesce(billing_address->>'country_code', shipping_address->>'country_code')",
        ),
    ),
)

SOURCES: dict[str, Source] = {s.name: s for s in (CONTACTS, EMAIL, CALLS, WEB, ORDERS)}

LANDING_SUFFIXES = {
    "csv": (".csv", ".csv.gz"),
    "jsonl": (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz"),
}
