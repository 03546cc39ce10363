"""What each person does: the rows of every source, with their ground truth.

Each source is simulated by its own per-person RNG as a chronological process over an
unbounded horizon that simply stops at the first event at or after the end of the window. Any
event an earlier event causes (a click's web visit, an order's later refund) is drawn in the
same step as its cause, so the random sequence up to any instant never depends on where the
window ends: day *d* is byte-identical whatever ``days`` is.

Rows are emitted as :data:`Row` tuples; :func:`simulate_person` sorts them into file order and
decides ``expected`` (loaded / quarantined / duplicate) exactly as ingestion will, which is
possible per person because every record key (event id, contact id, order id, ...) is unique to
one person.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from . import phones
from .people import (
    BUYERS,
    DAY,
    S_CALLS,
    S_CONTACT0,
    S_EMAIL,
    S_ORDERS,
    S_WEB,
    Person,
    make_person,
    rng_for,
    uuid_from,
)
from .pools import CURRENCY, NICKNAMES, TAX_RATE, UTC_OFFSET_H, ZERO_DECIMAL, products

SOURCES = ("contacts", "email", "calls", "web", "orders")
CONTACTS, EMAIL, CALLS, WEB, ORDERS = range(5)

CONTACT_HEADER = (
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
    "hs_lead_status",
    "created_at",
    "updated_at",
)
CALL_HEADER = (
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
    "hold_seconds",
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

# Share of rows of every source that get one deliberate contract violation.
MALFORMED_RATE = 0.004
SHOP = "https://shop.example.com"

# A row: (source, file day, variant, sort instant, seq, line bytes, source_record_id,
#         person_id, quarantine reason or "", dedup key, duplicate reason)
Row = tuple[int, int, int, float, int, bytes, str, str, str, object, str]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# ---------------------------------------------------------------------------------------------
# timestamps


def iso(t: float, style: int, off_h: int = 0) -> str:
    """ISO 8601 in one of several real-world shapes; every shape is a valid TIMESTAMPTZ.

    0: ``…T10:00:00Z``, 1: ``…T10:00:00.120Z``, 2: ``…T19:00:00+09:00``,
    3: ``…T19:00:00.120+09:00``, 4: ``… 10:00:00`` (naive UTC; used only where the value is
    not part of a dedup key, because a naive value's instant depends on the reader's zone).
    """
    ms_total = round(t * 1000)
    if style in (2, 3):
        ms_total += off_h * 3_600_000
    sec, ms = divmod(ms_total, 1000)
    days, rem = divmod(sec, 86_400)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    sep = " " if style == 4 else "T"
    head = f"{_date_str(days)}{sep}{hh:02d}:{mm:02d}:{ss:02d}"
    if style == 4:
        return head
    frac = f".{ms:03d}" if style in (1, 3) else ""
    if style in (0, 1):
        return f"{head}{frac}Z"
    sign = "+" if off_h >= 0 else "-"
    return f"{head}{frac}{sign}{abs(off_h):02d}:00"


def refund_of_line(line: dict, subtotal: float, total: float) -> float:
    """What refunding one line of an order pays back: its share of what was paid (the order's
    discount and tax applied as to every line), never more than the order's total. A shop
    refunds what the customer paid for the line, not its list price: a line's list price can be
    above the whole order's total when a discount applies."""
    share = float(line["price"]) * line["quantity"] * (total / subtotal if subtotal else 0.0)
    return min(share, total)


@lru_cache(maxsize=4096)
def _date_str(days_since_epoch: int) -> str:
    g = time.gmtime(days_since_epoch * 86_400)
    return f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}"


BAD_TIMESTAMPS = ("not-a-date", "31/12/2025 25:61", "2025-13-45T99:99:99Z", "yesterday 5pm")


# ---------------------------------------------------------------------------------------------
# serialisation and deliberate damage


def _csv_field(v: str) -> str:
    if not v:
        return v
    if '"' in v or "," in v or "\n" in v or "\r" in v or v[0] == " " or v[-1] == " ":
        return '"' + v.replace('"', '""') + '"'
    return v


def csv_line(fields: list[str]) -> bytes:
    """One RFC 4180 record (quotes only when needed, and around surrounding spaces)."""
    return (",".join([_csv_field(f) for f in fields]) + "\n").encode()


def _inject_bad_utf8(line: bytes) -> bytes:
    """Put an invalid UTF-8 sequence inside the first JSON string value (or CSV field)."""
    pos = line.find(b'":"')
    if pos >= 0:
        return line[: pos + 3] + b"\xc3\x28" + line[pos + 3 :]
    return line[:2] + b"\xe9" + line[2:]


@dataclass(frozen=True)
class JsonRules:
    """Required fields of a JSON source and the plausible ways to break them."""

    required: tuple[str, ...]
    timestamps: tuple[str, ...]
    invalid_values: dict[str, tuple[object, ...]]
    key_field: str


JSON_RULES = {
    EMAIL: JsonRules(
        ("event", "email", "timestamp", "sg_event_id"),
        ("timestamp",),
        {"event": ("clicked", "opened ", "bounced")},
        "sg_event_id",
    ),
    WEB: JsonRules(
        ("type", "messageId", "timestamp"),
        ("timestamp",),
        {"type": ("screen", "pageview", "")},
        "messageId",
    ),
    ORDERS: JsonRules(
        ("id", "created_at", "currency"),
        ("created_at",),
        {"currency": ("US$", "EURO", "12", "₩")},
        "id",
    ),
}


def malform_json(r: random.Random, src: int, obj: dict) -> tuple[bytes, str, bool]:
    """Break a JSON record in one unmistakable way; returns (line, reason, key_lost)."""
    rules = JSON_RULES[src]
    kind = r.choice(
        (
            "invalid_json",
            "invalid_json",
            "not_object",
            "missing",
            "missing",
            "bad_ts",
            "invalid_value",
            "invalid_utf8",
            "no_identity",
        )
    )
    if kind == "no_identity" and src != WEB:
        kind = "missing"
    if kind == "invalid_json":
        s = _dumps(obj)
        return (s[: r.randint(8, max(9, len(s) - 2))] + "\n").encode(), "invalid_json", False
    if kind == "not_object":
        return ("[" + _dumps(obj) + "]\n").encode(), "not_object", False
    if kind == "invalid_utf8":
        return _inject_bad_utf8((_dumps(obj) + "\n").encode()), "invalid_utf8", False
    obj = dict(obj)
    if kind == "missing":
        f = r.choice(rules.required)
        how = r.randrange(3)
        if how == 0:
            obj.pop(f, None)
        else:
            obj[f] = None if how == 1 else ""
        return (_dumps(obj) + "\n").encode(), f"missing_required:{f}", f == rules.key_field
    if kind == "bad_ts":
        f = r.choice(rules.timestamps)
        obj[f] = r.choice(BAD_TIMESTAMPS)
        return (_dumps(obj) + "\n").encode(), f"bad_timestamp:{f}", False
    if kind == "invalid_value":
        f = r.choice(list(rules.invalid_values))
        val = r.choice(rules.invalid_values[f])
        obj[f] = val
        reason = f"missing_required:{f}" if val == "" else f"invalid_value:{f}"
        return (_dumps(obj) + "\n").encode(), reason, False
    obj.pop("anonymousId", None)
    obj.pop("userId", None)
    return (_dumps(obj) + "\n").encode(), "missing_identity", False


def malform_csv(
    r: random.Random,
    fields: list[str],
    required: tuple[int, ...],
    ts: tuple[int, ...],
    header: tuple[str, ...],
    text_col: int,
) -> tuple[bytes, str, bool]:
    """Break a CSV record: field count, empty required field, bad timestamp, bad bytes."""
    fields = list(fields)
    kind = r.choice(("count", "missing", "bad_ts", "bad_ts", "invalid_utf8", "no_digits"))
    if kind == "no_digits" and header is not CALL_HEADER:
        kind = "missing"
    if kind == "count":
        if r.random() < 0.5:
            fields.append("extra")
        else:
            fields.pop()
        return csv_line(fields), "wrong_field_count", False
    if kind == "missing":
        i = r.choice(required)
        fields[i] = ""
        return csv_line(fields), f"missing_required:{header[i]}", i == 0
    if kind == "bad_ts":
        i = r.choice(ts)
        fields[i] = r.choice(BAD_TIMESTAMPS)
        return csv_line(fields), f"bad_timestamp:{header[i]}", False
    if kind == "no_digits":
        fields[2] = r.choice(("anonymous", "Restricted", "UNKNOWN"))
        return csv_line(fields), "invalid_value:customer_number", False
    fields[text_col] = "Jos\udce9" if not fields[text_col] else fields[text_col] + "\udce9"
    line = (",".join(_csv_field(f) for f in fields) + "\n").encode("utf-8", "surrogateescape")
    return line, "invalid_utf8", False


# ---------------------------------------------------------------------------------------------
# campaigns (global, seed-only)

_CAMPAIGN_NAMES = (
    "new-year-sale",
    "winter-clearance",
    "valentines",
    "spring-sale",
    "easter-treats",
    "mothers-day",
    "summer-sale",
    "back-to-school",
    "autumn-edit",
    "black-friday",
    "cyber-monday",
    "holiday-gifts",
)


@dataclass(frozen=True)
class Campaign:
    """One newsletter send; the same calendar for everyone (it depends on seed and t0 only)."""

    t: float
    name: str
    categories: tuple[str, ...]
    landing: str

    @cached_property
    def category_json(self) -> str:
        """SendGrid sends one category as a string, several as a list."""
        cats = self.categories
        return _dumps(list(cats) if len(cats) > 1 else cats[0])


@lru_cache(maxsize=8)
def campaigns(seed: int, t0: float, end: float) -> tuple[Campaign, ...]:
    """Campaign *k* is sent ~6.5 days after campaign *k-1*; the list stops at ``end``."""
    out = []
    prods = products()
    k = 0
    while True:
        r = random.Random(seed * 131 + k * 17 + 5)
        t = t0 + (1.5 + k * 6.5) * DAY + r.uniform(-0.5, 0.5) * DAY
        if t >= end:
            return tuple(out)
        name = _CAMPAIGN_NAMES[k % len(_CAMPAIGN_NAMES)]
        if k >= len(_CAMPAIGN_NAMES):
            name = f"{name}-{k // len(_CAMPAIGN_NAMES) + 1}"
        p = prods[r.randrange(len(prods))]
        cats = (name,) if r.random() < 0.5 else (name, "newsletter")
        out.append(Campaign(t, name, cats, f"/products/{p.sku.lower()}"))
        k += 1


# ---------------------------------------------------------------------------------------------
# the per-person simulation

_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/124.0 Mobile",
)
_LOCALE = {
    "US": "en-US",
    "GB": "en-GB",
    "KR": "ko-KR",
    "CN": "zh-CN",
    "IL": "he-IL",
    "LT": "lt-LT",
    "DE": "de-DE",
    "JP": "ja-JP",
    "BR": "pt-BR",
}
_STAGE_PATHS = {
    "heavy_buyer": ("lead", "customer", "evangelist"),
    "light_buyer": ("subscriber", "lead", "customer"),
    "churner": ("lead", "customer", "other"),
    "browser_only": ("subscriber", "lead", "marketingqualifiedlead"),
    "never_identified": ("subscriber", "lead"),
    "prospect": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
    ),
}
_QUEUES = ("billing", "orders", "returns", "tech-support", "sales")


class PersonSim:
    """Collects the rows of one person; one method per source."""

    def __init__(self, seed: int, p: Person, t0: float, end: float) -> None:
        self.seed, self.p, self.t0, self.end = seed, p, t0, end
        self.rows: list[Row] = []
        self.seq = 0
        self.off = UTC_OFFSET_H[p.country]
        self.cur = CURRENCY[p.country]
        self.order_no = 0
        i = p.index
        self.web_ctx = (
            f'"userAgent":"{_UAS[i % 4]}","locale":"{_LOCALE[p.country]}",'
            f'"ip":"203.0.{i % 251}.{(i >> 8) % 251}"'
        )
        self.campaign_order_no = 0

    # -- emission --------------------------------------------------------------------------

    def _push(
        self,
        src: int,
        t_file: float,
        line: bytes,
        srid: str,
        bad: str,
        key: object,
        dup: str,
        pid: str | None = None,
    ) -> None:
        if t_file >= self.end or t_file < self.t0:
            return
        day = int((t_file - self.t0) // DAY)
        self.seq += 1
        self.rows.append(
            (
                src,
                day,
                0,
                t_file,
                self.seq,
                line,
                srid,
                self.p.person_id if pid is None else pid,
                bad,
                key,
                dup,
            )
        )

    def emit_json(
        self,
        r: random.Random,
        src: int,
        t_file: float,
        obj: dict,
        srid: str,
        key: object,
        dup: str = "",
    ) -> None:
        """Serialise one JSON record (maybe damaged) into the file of ``t_file``'s day.

        The RNG draws happen even for rows past the window (which are then dropped): the
        random sequence must not depend on where the window ends.
        """
        if r.random() < MALFORMED_RATE:
            line, bad, lost = malform_json(r, src, obj)
            self._push(src, t_file, line, "" if lost else srid, bad, key, dup)
        else:
            self._push(src, t_file, (_dumps(obj) + "\n").encode(), srid, "", key, dup)

    def emit_line(
        self,
        r: random.Random,
        src: int,
        t_file: float,
        line: bytes,
        srid: str,
        key: object,
        dup: str = "",
    ) -> None:
        """Like :meth:`emit_json` for a line that is already serialised (the fast path)."""
        if r.random() < MALFORMED_RATE:
            bad_line, bad, lost = malform_json(r, src, json.loads(line))
            self._push(src, t_file, bad_line, "" if lost else srid, bad, key, dup)
        else:
            self._push(src, t_file, line, srid, "", key, dup)

    def emit_csv(
        self,
        r: random.Random,
        src: int,
        t_file: float,
        fields: list[str],
        key: object,
        dup: str = "",
        pid: str | None = None,
    ) -> None:
        """Serialise one CSV record (maybe damaged); draws like :meth:`emit_json`."""
        if r.random() < MALFORMED_RATE * 1.5:
            if src == CONTACTS:
                line, bad, lost = malform_csv(r, fields, (0, 16, 17), (16, 17), CONTACT_HEADER, 1)
            else:
                line, bad, lost = malform_csv(r, fields, (0, 2, 6), (6,), CALL_HEADER, 5)
            self._push(src, t_file, line, "" if lost else fields[0], bad, key, dup, pid)
        else:
            self._push(src, t_file, csv_line(fields), fields[0], "", key, dup, pid)

    # -- helpers ---------------------------------------------------------------------------

    def ts(self, r: random.Random, t: float, ms: bool = True) -> str:
        """A timestamp in a random but valid ISO shape (never naive: keys depend on it)."""
        x = r.random()
        if x < 0.55:
            return iso(t, 1 if ms else 0)
        if x < 0.8:
            return iso(t, 0)
        return iso(t, 3 if ms and x < 0.9 else 2, self.off)

    def phone_as(self, r: random.Random, styles: tuple[str, ...], nsn: str | None = None) -> str:
        p = self.p
        if nsn is None:
            if not p.mobiles:
                nsn, kind = p.landline or "", "landline"
            else:
                nsn, kind = p.mobiles[0], "mobile"
        else:
            kind = "landline" if nsn == p.landline else "mobile"
        if not nsn:
            return ""
        return phones.format_phone(p.country, kind, nsn, r.choice(styles))

    # -- web -------------------------------------------------------------------------------

    def web_event(
        self,
        r: random.Random,
        t: float,
        typ: str,
        anon: str | None,
        uid: int | None,
        path: str,
        title: str,
        extra: dict | None = None,
        campaign: dict | None = None,
        referrer: str = "",
    ) -> None:
        """One Segment event (+ a client retry now and then).

        Web events are half of all rows, so the line is assembled from a template instead of
        ``json.dumps`` of nested dicts; only free text (``extra``, ``campaign``) goes through
        the encoder. Paths, titles, ids and user agents are plain ASCII without quotes.
        """
        mid = uuid_from(r)
        head = f'{{"type":"{typ}","messageId":"{mid}"'
        if anon:
            head += f',"anonymousId":"{anon}"'
        if uid is not None:
            head += f',"userId":"{uid}"'
        body = (
            f',"timestamp":"{self.ts(r, t)}","context":{{"page":{{"path":"{path}",'
            f'"url":"{SHOP}{path}","referrer":"{referrer}","title":"{title}"}},'
            f"{self.web_ctx}"
        )
        if campaign:
            body += ',"campaign":' + _dumps(campaign)
        body += "}"
        if extra:
            body += "," + _dumps(extra)[1:-1]
        if r.random() < 0.3:
            body += ',"integrations":{"All":true,"Google Analytics":false}'
        if r.random() < 0.5:
            body += f',"sentAt":"{iso(t + r.uniform(0.05, 2.0), 1)}"'
        line = (head + body + "}\n").encode()
        self.emit_line(r, WEB, t, line, mid, mid)
        if r.random() < 0.012:  # client retry: same messageId, later (maybe next day)
            self.emit_line(r, WEB, t + r.uniform(1, 40_000), line, mid, mid, "retry")

    def session(
        self, r: random.Random, t: float, identified: list[bool], campaign: Campaign | None = None
    ) -> float:
        """A browsing session on one device; may log in (identify). Returns its end time."""
        p = self.p
        ci = 0 if len(p.anonymous_ids) == 1 else r.randrange(len(p.anonymous_ids))
        anon = p.anonymous_ids[ci]
        uid = p.customer_id if identified[ci] else None
        prods = products()
        camp = None
        ref = r.choice(("https://www.google.com/", "", "https://www.instagram.com/", ""))
        path = "/"
        if campaign:
            camp = {"source": "newsletter", "medium": "email", "name": campaign.name}
            path, ref = campaign.landing, ""
        n = 1 + min(int(r.expovariate(0.45)), 8)
        for i in range(n):
            if i == 0 and not campaign:
                path = r.choice(("/", "/", "/collections/all", "/search?q=gift"))
            elif i > 0:
                pr = prods[r.randrange(len(prods))]
                path = f"/products/{pr.sku.lower()}"
            title = "Shop" if path == "/" else path.rsplit("/", 1)[-1].replace("-", " ").title()
            self.web_event(r, t, "page", anon, uid, path, title, campaign=camp, referrer=ref)
            camp = None  # only the landing page carries the utm parameters
            ref = SHOP + path
            t += r.uniform(5, 120)
            if path.startswith("/products/") and r.random() < 0.5:
                pr = prods[r.randrange(len(prods))]
                self.web_event(
                    r,
                    t,
                    "track",
                    anon,
                    uid,
                    path,
                    title,
                    {
                        "event": "Product Viewed" if r.random() < 0.7 else "Added to Cart",
                        "properties": {
                            "product_id": pr.product_id,
                            "sku": pr.sku,
                            "price": pr.prices[self.cur],
                            "currency": self.cur,
                        },
                    },
                )
                t += r.uniform(2, 60)
            if uid is None and p.customer_id is not None and r.random() < 0.3:
                uid = p.customer_id  # logs in: identify ties this cookie to the account
                identified[ci] = True
                traits: dict = {
                    "email": p.emails[0] if p.emails else None,
                    "name": f"{p.first_latin} {p.last_latin}",
                }
                if p.mobiles and r.random() < 0.5:
                    traits["phone"] = phones.e164(p.country, p.mobiles[0])
                self.web_event(
                    r, t, "identify", anon, uid, "/account/login", "Login", {"traits": traits}
                )
                t += r.uniform(2, 30)
        return t

    def web_stream(self) -> None:
        """Organic browsing: a Poisson process of sessions that stops at churn."""
        p = self.p
        r = rng_for(self.seed, p.index, S_WEB)
        identified = [False] * len(p.anonymous_ids)
        t = self.t0
        while True:
            t += r.expovariate(p.web_rate / DAY)
            if t >= self.end or (p.churn_t is not None and t >= p.churn_t):
                return
            t = self.session(r, t, identified)

    # -- orders ----------------------------------------------------------------------------

    def money(self, v: float) -> str:
        return f"{round(v):d}.00" if self.cur in ZERO_DECIMAL else f"{v:.2f}"

    def order(
        self, r: random.Random, t: float, campaign: Campaign | None, fav: tuple[int, ...]
    ) -> None:
        """One order with its checkout web events and every later version of it."""
        p = self.p
        if campaign:
            k = 500 + self.campaign_order_no
            self.campaign_order_no += 1
        else:
            k = self.order_no
            self.order_no += 1
        oid = 4_500_000_000_000 + p.index * 1000 + k
        prods = products()
        guest = p.customer_id is None or r.random() < 0.08
        items = [fav[r.randrange(len(fav))] if r.random() < 0.7 else r.randrange(len(prods))]
        if r.random() < 0.5:
            items.append(fav[r.randrange(len(fav))])
        if r.random() < 0.15:
            items.append(r.randrange(len(prods)))
        line_items = []
        subtotal = 0.0
        for i in dict.fromkeys(items):
            pr = prods[i]
            q = 1 if r.random() < 0.8 else r.randint(2, 3)
            price = pr.prices[self.cur]
            subtotal += price * q
            line_items.append(
                {
                    "id": oid * 10 + len(line_items),
                    "product_id": pr.product_id,
                    "sku": pr.sku,
                    "title": pr.title,
                    "quantity": q,
                    "price": self.money(price),
                }
            )
        disc = subtotal * (0.15 if campaign else (0.1 if r.random() < 0.1 else 0.0))
        tax = (subtotal - disc) * TAX_RATE[p.country]
        total = subtotal - disc + tax
        email = r.choice(p.emails) if p.emails else None
        if email and r.random() < 0.05:
            email = email.capitalize()
        phone = self.phone_as(r, phones.CRM_STYLES) if r.random() < 0.4 else None
        addr = {
            "first_name": p.first,
            "last_name": p.last,
            "address1": p.street,
            "city": p.city,
            "zip": p.postcode,
            "country_code": p.country,
        }
        if r.random() < 0.5:
            addr["phone"] = self.phone_as(r, phones.CRM_STYLES)
        created = float(int(t))
        status = r.choices(("paid", "pending", "authorized"), (0.88, 0.06, 0.06))[0]
        obj: dict = {
            "id": oid,
            "order_number": 1001 + p.index * 1000 + k,
            "created_at": self.ts(r, created, ms=False),
        }
        upd = created + r.randint(5, 600)
        has_upd = r.random() < 0.9
        if has_upd:
            obj["updated_at"] = self.ts(r, upd, ms=False)
        obj["email"] = email
        if phone:
            obj["phone"] = phone
        if not guest:
            obj["customer"] = {
                "id": p.customer_id,
                "email": p.emails[0] if p.emails else None,
                "phone": phone,
                "first_name": p.first,
                "last_name": p.last,
            }
        obj.update(
            {
                "currency": self.cur,
                "total_price": self.money(total),
                "subtotal_price": self.money(subtotal),
                "total_tax": self.money(tax),
                "total_discounts": self.money(disc),
                "financial_status": status,
                "cancelled_at": None,
                "line_items": line_items,
                "billing_address": addr,
                "shipping_address": addr,
                "refunds": [],
            }
        )
        if campaign:
            obj["discount_codes"] = [
                {"code": campaign.name.upper().replace("-", ""), "type": "percentage"}
            ]
            obj["landing_site"] = f"{campaign.landing}?utm_campaign={campaign.name}"
        if r.random() < 0.1:
            obj["tags"] = r.choice(("vip", "wholesale", "gift"))

        # checkout events on the site, a few minutes before the order lands
        anon = p.anonymous_ids[r.randrange(len(p.anonymous_ids))]
        uid = None if guest else p.customer_id
        tw = t - r.uniform(120, 900)
        self.web_event(r, tw, "page", anon, uid, "/cart", "Cart")
        self.web_event(r, tw + r.uniform(20, 90), "page", anon, uid, "/checkout", "Checkout")
        self.web_event(
            r,
            t,
            "track",
            anon,
            uid,
            "/checkout/thank-you",
            "Thank you",
            {
                "event": "Order Completed",
                "properties": {
                    "order_id": str(oid),
                    "total": round(total, 2),
                    "currency": self.cur,
                },
            },
        )

        versions: list[tuple[float, dict]] = [(upd if has_upd else created, obj)]
        cur = obj
        if status != "paid" and r.random() < 0.9:
            tp = float(int(upd + r.uniform(3600, 2 * DAY)))
            cur = dict(cur, financial_status="paid", updated_at=iso(tp, 0))
            versions.append((tp, cur))
        x = r.random()
        if x < 0.03:
            tc = float(int(versions[-1][0] + r.uniform(1800, 1.5 * DAY)))
            paid = cur["financial_status"] == "paid"
            cur = dict(
                cur,
                cancelled_at=iso(tc, 2, self.off),
                updated_at=iso(tc, 2, self.off),
                financial_status="refunded" if paid else "voided",
            )
            if paid:
                cur["refunds"] = [
                    {
                        "id": oid + 7,
                        "created_at": iso(tc, 0),
                        "transactions": [{"amount": self.money(total), "kind": "refund"}],
                    }
                ]
            versions.append((tc, cur))
        elif x < 0.10 and cur["financial_status"] == "paid":
            tr = float(int(versions[-1][0] + r.uniform(2 * DAY, 20 * DAY)))
            partial = len(line_items) > 1 and r.random() < 0.6
            amount = refund_of_line(line_items[0], subtotal, total) if partial else total
            cur = dict(
                cur,
                updated_at=self.ts(r, tr, ms=False),
                financial_status="partially_refunded" if partial else "refunded",
                refunds=[
                    {
                        "id": oid + 9,
                        "created_at": iso(tr, 0),
                        "transactions": [{"amount": self.money(amount), "kind": "refund"}],
                    }
                ],
            )
            versions.append((tr, cur))
        srid = str(oid)
        for tv, o in versions:
            key = (oid, int(tv))
            self.emit_json(r, ORDERS, tv, o, srid, key)
            if r.random() < 0.02:  # re-exported unchanged in a later file
                self.emit_json(
                    r, ORDERS, tv + r.randint(1, 2) * DAY, o, srid, key, "unchanged_version"
                )

    def order_stream(self) -> None:
        """Organic orders: Poisson with a per-person (Pareto-skewed) rate, stops at churn."""
        p = self.p
        if p.order_rate <= 0:
            return
        r = rng_for(self.seed, p.index, S_ORDERS)
        fav = favourite_products(r.randrange(len(categories())))
        t = self.t0
        while True:
            t += r.expovariate(p.order_rate / DAY)
            if t >= self.end or (p.churn_t is not None and t >= p.churn_t):
                return
            self.order(r, t, None, fav)

    # -- email -----------------------------------------------------------------------------

    def email_event(
        self,
        r: random.Random,
        ev: str,
        addr: str,
        t: float,
        msg: str,
        camp: Campaign,
        extra: dict | None = None,
    ) -> None:
        """One SendGrid event; sometimes delivered late or redelivered."""
        sgid = base64.urlsafe_b64encode(r.getrandbits(128).to_bytes(16, "little")).decode()[:22]
        ts: int | str = int(t)
        if r.random() < 0.1:
            ts = str(int(t))
        ts_json = f'"{ts}"' if isinstance(ts, str) else str(ts)
        # template, as in web_event: addresses, ids and event names need no escaping
        line = (
            f'{{"email":"{addr}","timestamp":{ts_json},"smtp-id":"<{msg}@ismtpd0042p1>",'
            f'"event":"{ev}","category":{camp.category_json},"sg_event_id":"{sgid}",'
            f'"sg_message_id":"{msg}.filterdrecv-5bf5c-1-{self.p.index % 97}"'
        )
        if extra:
            line += "," + _dumps(extra)[1:-1]
        if r.random() < 0.2:
            line += ',"sg_content_type":"html"'
        data = (line + "}\n").encode()
        t_file = t
        if r.random() < 0.03:  # webhook delivered late, in a later day's dump
            t_file = t + r.randint(1, 3) * DAY
        self.emit_line(r, EMAIL, t_file, data, sgid, sgid)
        if r.random() < 0.012:  # redelivered webhook: same sg_event_id
            self.emit_line(
                r, EMAIL, t_file + r.uniform(30, 1.5 * DAY), data, sgid, sgid, "redelivery"
            )

    def email_stream(self) -> None:
        """Campaign sends in calendar order; clicks lead to visits and sometimes orders."""
        p = self.p
        if not p.subscribed:
            return
        r = rng_for(self.seed, p.index, S_EMAIL)
        fav = favourite_products(r.randrange(len(categories())))
        identified = [p.customer_id is not None and r.random() < 0.5] * len(p.anonymous_ids)
        p_open = r.uniform(0.1, 0.6)
        for camp in campaigns(self.seed, self.t0, self.end):
            if r.random() > 0.4:
                continue
            addr = p.emails[0] if r.random() < 0.85 else r.choice(p.emails)
            msg = base64.urlsafe_b64encode(r.getrandbits(96).to_bytes(12, "little")).decode()
            t = camp.t + r.uniform(0, 3600)
            self.email_event(r, "processed", addr, t, msg, camp)
            x = r.random()
            if x < 0.012:
                self.email_event(
                    r,
                    "dropped",
                    addr,
                    t + 1,
                    msg,
                    camp,
                    {"reason": "Bounced Address", "status": "5.0.0"},
                )
                continue
            if x < 0.03:
                hard = r.random() < 0.6
                self.email_event(
                    r,
                    "bounce",
                    addr,
                    t + r.uniform(1, 60),
                    msg,
                    camp,
                    {
                        "reason": "550 5.1.1 The email account that you tried to reach does not "
                        "exist"
                        if hard
                        else "554 5.7.1 blocked by policy",
                        "status": "5.1.1" if hard else "5.7.1",
                        "type": "bounce" if hard else "blocked",
                    },
                )
                if hard:
                    return  # the address is dead: no more sends
                continue
            if x < 0.05:
                self.email_event(
                    r,
                    "deferred",
                    addr,
                    t + r.uniform(1, 60),
                    msg,
                    camp,
                    {"response": "421 try again later", "attempt": "1"},
                )
                t += r.uniform(300, 3600)
            t += r.uniform(1, 120)
            self.email_event(
                r, "delivered", addr, t, msg, camp, {"response": "250 OK", "ip": "168.245.1.1"}
            )
            engaged = p.churn_t is None or t < p.churn_t
            if engaged and r.random() < p_open:
                to = t + r.expovariate(1 / 14_400)
                ua = {"useragent": _UAS[p.index % 4], "ip": f"198.51.100.{p.index % 250}"}
                self.email_event(r, "open", addr, to, msg, camp, ua)
                if r.random() < 0.2:
                    self.email_event(r, "open", addr, to + r.uniform(600, DAY), msg, camp, ua)
                if r.random() < 0.3:
                    tc = to + r.uniform(5, 300)
                    self.email_event(
                        r,
                        "click",
                        addr,
                        tc,
                        msg,
                        camp,
                        dict(
                            ua,
                            url=f"{SHOP}{camp.landing}?utm_source=newsletter"
                            f"&utm_medium=email&utm_campaign={camp.name}",
                        ),
                    )
                    ts = self.session(r, tc + r.uniform(3, 60), identified, camp)
                    if p.archetype in BUYERS and r.random() < 0.2:
                        self.order(r, ts + r.uniform(60, 3 * DAY), camp, fav)
            if r.random() < 0.006:
                self.email_event(
                    r,
                    "unsubscribe",
                    addr,
                    t + r.uniform(3600, 2 * DAY),
                    msg,
                    camp,
                    {"asm_group_id": 1},
                )
                return
            if r.random() < 0.0015:
                self.email_event(r, "spamreport", addr, t + r.uniform(3600, 2 * DAY), msg, camp)
                return

    # -- calls -----------------------------------------------------------------------------

    def call_stream(self) -> None:
        """Contact-centre calls; the switch logs international or bare-digit caller ids."""
        p = self.p
        nums = list(p.mobiles) + ([p.landline] if p.landline else [])
        if not nums:
            return
        r = rng_for(self.seed, p.index, S_CALLS)
        t = self.t0
        while True:
            t += r.expovariate(p.call_rate / DAY)
            if t >= self.end:
                return
            nsn = nums[0] if len(nums) == 1 or r.random() < 0.6 else r.choice(nums)
            if p.landline and r.random() < 0.3:
                nsn = p.landline
            outbound = r.random() < 0.15
            number = self.phone_as(r, phones.SWITCH_STYLES, nsn)
            call_id = f"CA-{r.getrandbits(48):012x}"
            started = t
            wait = r.expovariate(1 / 45)
            patience = r.expovariate(1 / 150)
            csat = ""
            hold = ""
            if outbound:
                wait = r.uniform(5, 25)
                answered = r.random() < 0.6
            else:
                answered = wait < patience
            if answered:
                ans = started + wait
                ended = ans + r.lognormvariate(5.4, 0.7)
                disp = r.choices(("resolved", "unresolved", "callback"), (0.7, 0.15, 0.15))[0]
                ans_s = self.ts(r, ans, ms=False)
                if r.random() < 0.35:
                    csat = str(r.choices((1, 2, 3, 4, 5), (0.08, 0.07, 0.15, 0.3, 0.4))[0])
                if r.random() < 0.3:
                    hold = str(r.randint(5, 300))
            else:
                ended = started + (wait if outbound else patience)
                disp = "voicemail" if outbound else "abandoned"
                ans_s = ""
            if r.random() < 0.004:  # optional fields gone odd: tolerated, not quarantined
                ans_s, disp = ("n/a" if answered else ans_s), "TRANSFERRED?"
            started_s = iso(started, 4) if r.random() < 0.15 else self.ts(r, started, False)
            fields = [
                call_id,
                "outbound" if outbound else "inbound",
                number,
                p.country if r.random() < 0.9 else "",
                f"ag-{r.randint(1, 60)}",
                r.choice(_QUEUES),
                started_s,
                ans_s,
                self.ts(r, ended, False),
                disp,
                csat,
                hold,
            ]
            self.emit_csv(r, CALLS, t, fields, call_id)
            if r.random() < 0.005:  # exported again by the switch the next day
                self.emit_csv(r, CALLS, t + DAY, fields, call_id, "reexport")

    # -- contacts --------------------------------------------------------------------------

    def contact_fields(self, r: random.Random, k: int) -> dict[str, str]:
        """The CRM fields of contact slot ``k``: 0 is the clean one, others are duplicates."""
        p = self.p
        email = p.emails[0] if p.emails else ""
        if p.company_inbox and k == 0 and r.random() < 0.7:
            email = p.company_inbox
        elif p.company_domain and k == 0:
            email = p.emails[-1]
        f = {
            "first_name": p.first,
            "last_name": p.last,
            "email": email,
            "phone": self.phone_as(r, phones.CRM_STYLES) if r.random() < 0.85 else "",
            "company": p.company if k == 0 or r.random() < 0.3 else "",
            "address1": p.street if r.random() < 0.8 else "",
            "address2": "",
            "city": p.city,
            "state": p.state,
            "postal_code": p.postcode,
            "country": p.country,
        }
        if r.random() < 0.08:
            f["address2"] = r.choice(("Apt 4B", "2F", "Suite 210", "#301"))
        if k > 0:
            for change in r.sample(
                (
                    "nickname",
                    "typo",
                    "swap",
                    "no_email",
                    "no_phone",
                    "old_address",
                    "email_case",
                    "alt_email",
                    "latin_name",
                ),
                r.randint(1, 3),
            ):
                if change == "nickname" and p.first_latin in NICKNAMES:
                    f["first_name"] = NICKNAMES[p.first_latin]
                elif change in ("typo", "nickname"):
                    name = f["last_name"]
                    if len(name) >= 3:
                        i = r.randrange(len(name) - 1)
                        f["last_name"] = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
                    else:
                        f["first_name"] = p.first_latin
                elif change == "swap":
                    f["first_name"], f["last_name"] = f["last_name"], f["first_name"]
                elif change == "no_email":
                    f["email"] = ""
                elif change == "no_phone":
                    f["phone"] = ""
                elif change == "old_address":
                    f["address1"] = p.old_street
                elif change == "email_case" and f["email"]:
                    f["email"] = f["email"].upper() if r.random() < 0.5 else f["email"].title()
                elif change == "alt_email" and len(p.emails) > 1:
                    f["email"] = p.emails[1]
                elif change == "latin_name":
                    f["first_name"], f["last_name"] = p.first_latin, p.last_latin
                    if r.random() < 0.5 and len(p.mobiles) > 1:
                        f["phone"] = self.phone_as(r, phones.CRM_STYLES, p.mobiles[1])
        if f["email"] and r.random() < 0.2:
            f["email"] = f["email"].capitalize() if r.random() < 0.5 else f["email"].title()
        if f["email"] and r.random() < 0.1:
            f["email"] = r.choice((" ", "", "  ")) + f["email"] + r.choice((" ", "  "))
        return f

    def contact_row(
        self,
        r: random.Random,
        cid: str,
        f: dict[str, str],
        stage: str,
        opt_out: bool,
        dob: str,
        created: str,
        updated: str,
    ) -> list[str]:
        return [
            cid,
            f["first_name"],
            f["last_name"],
            f["email"],
            f["phone"],
            f["company"],
            f["address1"],
            f["address2"],
            f["city"],
            f["state"],
            f["postal_code"],
            f["country"],
            dob,
            stage,
            "true" if opt_out else "false",
            r.choice(("", "", "NEW", "OPEN", "IN_PROGRESS")),
            created,
            updated,
        ]

    def contact_stream(self, k: int) -> None:
        """Versions of contact slot ``k`` (own RNG, so slots never shift each other)."""
        p = self.p
        r = rng_for(self.seed, p.index, S_CONTACT0 + k)
        placeholder = k == 3
        cid = str(100_001 + p.index * 4 + k)
        t = self.t0 + r.expovariate(1 / ((25 if k == 0 else 40) * DAY))
        if t >= self.end:
            return
        if placeholder:
            f = {
                "first_name": "Test",
                "last_name": r.choice(("Test", "User", "")),
                "email": "test@test.com",
                "phone": r.choice(("0000000000", "000-000-0000")),
                "company": "",
                "address1": "",
                "address2": "",
                "city": "",
                "state": "",
                "postal_code": "",
                "country": r.choice(("US", "")),
            }
            path: tuple[str, ...] = ("other",)
            dob = ""
        else:
            f = self.contact_fields(r, k)
            path = _STAGE_PATHS[p.archetype]
            y, m, d = p.date_of_birth
            x = r.random()
            dob = (
                ""
                if x < 0.3
                else (f"{y:04d}-{m:02d}-{d:02d}" if x < 0.8 else f"{y:04d}{m:02d}{d:02d}")
            )
            if r.random() < 0.005:
                dob = r.choice(("31.02.1990", "unknown", "00/00/0000"))  # tolerated
        created_t = float(int(t))
        created = self.ts(r, created_t, ms=False)
        stage_i, opt_out = 0, False
        pid = "" if placeholder else None
        tv = created_t + r.randint(0, 300)
        while True:
            updated = self.ts(r, tv, ms=False)
            row = self.contact_row(r, cid, f, path[stage_i], opt_out, dob, created, updated)
            key = (cid, int(tv))
            self.emit_csv(r, CONTACTS, tv, row, key, pid=pid)
            if r.random() < 0.03:  # re-exported unchanged (maybe in another offset notation)
                row = list(row)
                row[17] = iso(tv, r.choice((0, 2)), self.off)
                self.emit_csv(
                    r, CONTACTS, tv + r.randint(1, 3) * DAY, row, key, "unchanged_version", pid
                )
            tv = float(int(tv + r.expovariate(1 / (90 * DAY)) + 60))
            if tv >= self.end:
                return
            x = r.random()
            if x < 0.6 and stage_i + 1 < len(path):
                stage_i += 1
            elif x < 0.75:
                opt_out = not opt_out
            elif x < 0.9 and not placeholder:
                f = dict(f, phone=self.phone_as(r, phones.CRM_STYLES))
            elif not placeholder:
                f = dict(f, address1=p.street, city=p.city)


@lru_cache(maxsize=1)
def categories() -> tuple[str, ...]:
    """Product categories in catalogue order (a person's favourite is drawn from these)."""
    return tuple(dict.fromkeys(p.category for p in products()))


@lru_cache(maxsize=32)
def favourite_products(cat_i: int) -> tuple[int, ...]:
    """Catalogue indices of one category: repeat purchases and co-purchases come from it."""
    cat = categories()[cat_i]
    return tuple(i for i, p in enumerate(products()) if p.category == cat)


_DEFAULT_DUP = {
    CONTACTS: "unchanged_version",
    EMAIL: "redelivery",
    CALLS: "reexport",
    WEB: "retry",
    ORDERS: "unchanged_version",
}


def simulate_person(seed: int, index: int, t0: float, end: float) -> tuple[Person, list[Row]]:
    """All rows of one person in file order, each with its final ``expected`` decided.

    The returned rows carry, in the ``bad`` slot, the *final* truth: ``"q:<reason>"``,
    ``"d:<reason>"`` or ``""`` (loaded).
    """
    p = make_person(seed, index, t0)
    sim = PersonSim(seed, p, t0, end)
    for k in range(len(p.contact_ids)):
        sim.contact_stream(k)
    if p.placeholder_contact:
        sim.contact_stream(3)
    sim.email_stream()
    sim.web_stream()
    sim.order_stream()
    sim.call_stream()
    rows = sim.rows
    rows.sort(key=_file_order)
    seen: set = set()
    out: list[Row] = []
    for row in rows:
        src, day, var, tf, seq, line, srid, pid, bad, key, dup = row
        if bad:
            verdict = "q:" + bad
        elif (src, key) in seen:
            verdict = "d:" + (dup or _DEFAULT_DUP[src])
        else:
            seen.add((src, key))
            verdict = ""
        out.append((src, day, var, tf, seq, line, srid, pid, verdict, key, dup))
    return p, out


def _file_order(row: Row) -> tuple[int, int, int, float, int]:
    return row[0], row[1], row[2], row[3], row[4]


def person_truth(p: Person) -> list[str]:
    """The ``people.csv.gz`` fields of one person."""
    y, m, d = p.date_of_birth
    return [
        p.person_id,
        p.country,
        p.first,
        p.last,
        p.first_latin,
        p.last_latin,
        p.archetype,
        "|".join(p.emails),
        "|".join(p.phones_e164),
        "|".join(p.anonymous_ids),
        "" if p.customer_id is None else str(p.customer_id),
        "|".join(p.contact_ids),
        p.household_id,
        p.company,
        p.company_inbox,
        "" if p.churn_t is None else iso(p.churn_t, 0)[:10],
        f"{y:04d}-{m:02d}-{d:02d}",
        "true" if p.subscribed else "false",
        p.street,
        p.city,
        p.postcode,
    ]


PEOPLE_HEADER = (
    "person_id",
    "country",
    "first_name",
    "last_name",
    "first_name_latin",
    "last_name_latin",
    "archetype",
    "emails",
    "phones",
    "anonymous_ids",
    "shop_customer_id",
    "contact_ids",
    "household_id",
    "company",
    "company_inbox",
    "churn_date",
    "date_of_birth",
    "email_subscribed",
    "address1",
    "city",
    "postal_code",
)

SimFn = Callable[[int, int, float, float], tuple[Person, list[Row]]]
