"""Who exists: one :class:`Person` per index, with its true identity attributes.

Every person is a pure function of ``(seed, index)``; nothing depends on the chunk it is
processed in, on the number of days generated or on the worker process. Groups of people that
share something (a household landline, a company inbox) are decided per *block* of
``BLOCK`` consecutive indices from a block RNG, so each member can rebuild the group alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from . import phones
from .pools import (
    COMPANY_INBOX_LOCALS,
    COMPANY_STEMS,
    COUNTRY_CODES,
    COUNTRY_WEIGHTS,
    EMAIL_DOMAINS,
    locale_pools,
)

BLOCK = 40
DAY = 86_400

# Stream numbers for :func:`rng_for`; never reorder (it would change every byte).
S_PERSON, S_EMAIL, S_WEB, S_ORDERS, S_CALLS, S_CONTACT0 = 0, 1, 2, 3, 4, 5

ARCHETYPES = (
    "heavy_buyer",
    "light_buyer",
    "churner",
    "browser_only",
    "never_identified",
    "prospect",
)
_ARCH_WEIGHTS = (0.06, 0.30, 0.10, 0.16, 0.14, 0.24)
BUYERS = frozenset(("heavy_buyer", "light_buyer", "churner"))


def rng_for(seed: int, index: int, stream: int) -> random.Random:
    """A per-(person, stream) RNG from integer arithmetic only (no salted ``hash()``).

    Separate streams keep each source's random sequence independent of how far the others
    were simulated, which is what makes day *d* independent of the number of days.
    """
    return random.Random((seed & 0xFFFF_FFFF) * 1_000_003**2 + index * 64 + stream)


@dataclass(frozen=True)
class Block:
    """Shared structures of one block of people: a household and a company, maybe."""

    household_size: int
    household_country: str
    household_last: int
    company_size: int
    company_name: str
    company_domain: str
    company_inbox: str


@lru_cache(maxsize=4096)
def block_info(seed: int, block: int) -> Block:
    """Decide (once per block) whether it holds a household and/or a company."""
    r = random.Random((seed & 0xFFFF_FFFF) * 7_919 + block * 2 + 1_000_000_007)
    hh = r.choice((0, 0, 2, 2, 3))
    hh_country = r.choices(COUNTRY_CODES, COUNTRY_WEIGHTS)[0]
    hh_last = r.randrange(10_000)
    has_company = r.random() < 0.5
    size = r.randint(2, 4) if has_company else 0
    stem = r.choice(COMPANY_STEMS)
    name = " ".join(w.capitalize() for w in stem.split("-")) + r.choice(
        ("", " Ltd", " Inc.", " GmbH", " Co.")
    )
    domain = f"{stem}-{block}.example"
    inbox = f"{r.choice(COMPANY_INBOX_LOCALS)}@{domain}"
    return Block(hh, hh_country, hh_last, size, name, domain, inbox)


def _latin_token(text: str) -> str:
    return "".join(ch for ch in text.lower() if "a" <= ch <= "z")


@dataclass
class Person:
    """True attributes of one person (the ground truth behind every landing row)."""

    index: int
    person_id: str
    country: str
    first: str
    last: str
    first_latin: str
    last_latin: str
    archetype: str
    emails: list[str]
    mobiles: list[str]  # NSNs
    landline: str | None  # NSN shared by the household
    anonymous_ids: list[str]
    customer_id: int | None
    contact_ids: list[str]
    household_id: str
    company: str
    company_domain: str
    company_inbox: str
    churn_t: float | None
    date_of_birth: tuple[int, int, int]
    subscribed: bool
    order_rate: float  # orders per day
    web_rate: float  # sessions per day
    call_rate: float  # calls per day
    street: str
    old_street: str
    city: str
    postcode: str
    state: str
    placeholder_contact: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def phones_e164(self) -> list[str]:
        """All true numbers in E.164 (mobiles first, then the household landline)."""
        nums = [phones.e164(self.country, n) for n in self.mobiles]
        if self.landline:
            nums.append(phones.e164(self.country, self.landline))
        return nums


def uuid_from(r: random.Random) -> str:
    """A version-4-looking UUID from the person's RNG (no ``uuid4``: it is not seedable)."""
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def make_person(seed: int, index: int, t0: float) -> Person:
    """Build person ``index``; ``t0`` is the epoch second of the fixed simulation origin."""
    r = rng_for(seed, index, S_PERSON)
    blk_no, pos = divmod(index, BLOCK)
    blk = block_info(seed, blk_no)
    in_household = pos < blk.household_size
    in_company = 20 <= pos < 20 + blk.company_size
    country = (
        blk.household_country if in_household else r.choices(COUNTRY_CODES, COUNTRY_WEIGHTS)[0]
    )
    pool = locale_pools()[country]
    first, first_latin = pool.first[r.randrange(len(pool.first))]
    if in_household and pos < 2:
        last, last_latin = pool.last[blk.household_last % len(pool.last)]
    else:
        last, last_latin = pool.last[r.randrange(len(pool.last))]
    archetype = r.choices(ARCHETYPES, _ARCH_WEIGHTS)[0]
    buyer = archetype in BUYERS

    fl, ll = _latin_token(first_latin) or "user", _latin_token(last_latin) or "x"
    tag = str(index + 1)
    domains = EMAIL_DOMAINS[country]
    patterns = (
        f"{fl}.{ll}{tag}",
        f"{fl[0]}{ll}{tag}",
        f"{ll}.{fl}{tag}",
        f"{fl}_{ll[0]}{tag}",
        f"{fl}{tag}",
        f"{ll}{fl}{tag}",
    )
    n_emails = r.choices((1, 2, 3), (0.7, 0.25, 0.05))[0]
    emails: list[str] = []
    while len(emails) < n_emails:
        e = f"{r.choice(patterns)}@{r.choice(domains)}"
        if e not in emails:
            emails.append(e)
    if in_company:
        emails.append(f"{fl[0]}.{ll}{pos}@{blk.company_domain}")

    n_mob = r.choices((0, 1, 2), (0.05, 0.75, 0.2))[0]
    if n_mob == 0 and not in_household:
        n_mob = 1
    mobiles = [phones.unique_nsn(country, "mobile", index * 2 + k) for k in range(n_mob)]
    landline = phones.unique_nsn(country, "landline", blk_no) if in_household else None

    n_cookies = r.choices((1, 2, 3), (0.55, 0.3, 0.15))[0]
    anon = [uuid_from(r) for _ in range(n_cookies)]
    has_account = {
        "heavy_buyer": 0.9,
        "light_buyer": 0.8,
        "churner": 0.85,
        "browser_only": 1.0,
        "never_identified": 0.0,
        "prospect": 0.3,
    }[archetype] > r.random()
    customer_id = 6_100_000_000_000 + index * 7 if has_account else None

    p_contact = {"never_identified": 0.15, "browser_only": 0.6, "prospect": 0.95}.get(
        archetype, 0.85
    )
    if in_company or in_household:
        p_contact = 1.0
    n_contacts = 0
    if r.random() < p_contact:
        n_contacts = r.choices((1, 2, 3), (0.85, 0.11, 0.04))[0]
    contact_ids = [str(100_001 + index * 4 + k) for k in range(n_contacts)]

    churn_t = t0 + r.uniform(10, 70) * DAY if archetype == "churner" else None
    dob = (r.randint(1950, 2005), r.randint(1, 12), r.randint(1, 28))
    subscribed = r.random() < {"prospect": 0.95, "browser_only": 0.6, "never_identified": 0.3}.get(
        archetype, 0.8
    )
    order_rate = {
        "heavy_buyer": 6.0 / 90 * min(r.paretovariate(1.6), 5.0),
        "light_buyer": 1.1 / 90 * (0.4 + r.random()),
        "churner": 3.0 / 90,
    }.get(archetype, 0.0)
    web_rate = (
        {
            "heavy_buyer": 5.0,
            "light_buyer": 3.0,
            "churner": 4.0,
            "browser_only": 5.0,
            "never_identified": 3.5,
            "prospect": 1.0,
        }[archetype]
        / 90
        * (0.4 + r.random() * 0.8)
    )
    call_rate = (1.2 if buyer else 0.4) / 90
    streets = pool.streets
    si = r.randrange(len(streets))
    city, postcode = r.choice(pool.cities), r.choice(pool.postcodes)
    if in_household:  # one address per household, as well as one landline
        si = blk.household_last % len(streets)
        city = pool.cities[blk.household_last % len(pool.cities)]
        postcode = pool.postcodes[blk.household_last % len(pool.postcodes)]
    return Person(
        index=index,
        person_id=f"P{index + 1:07d}",
        country=country,
        first=first,
        last=last,
        first_latin=first_latin,
        last_latin=last_latin,
        archetype=archetype,
        emails=emails,
        mobiles=mobiles,
        landline=landline,
        anonymous_ids=anon,
        customer_id=customer_id,
        contact_ids=contact_ids,
        household_id=f"H{blk_no:06d}" if in_household else "",
        company=blk.company_name if in_company else "",
        company_domain=blk.company_domain if in_company else "",
        company_inbox=blk.company_inbox if in_company else "",
        churn_t=churn_t,
        date_of_birth=dob,
        subscribed=subscribed and bool(emails),
        order_rate=order_rate,
        web_rate=web_rate,
        call_rate=call_rate,
        street=streets[si],
        old_street=streets[(si + 1 + r.randrange(len(streets) - 1)) % len(streets)],
        city=city,
        postcode=postcode,
        state=r.choice(pool.states),
        placeholder_contact=index % 1999 == 0 or r.random() < 0.0003,
    )
