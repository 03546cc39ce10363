"""Valid, unique phone numbers per country and the many ways people write them.

Uniqueness matters more than realism here: a phone number shared by accident would create a
false "same person" signal that the ground truth does not know about. So numbers are not
sampled from a pool; a unique integer (person index and phone slot, or household id) is
scrambled by a multiplicative permutation into a space of pre-validated number blocks, which
makes every number distinct for up to several million people while looking random.

Blocks are prefixes of the national significant number (NSN) leaving four free digits; a
block is kept only if ``phonenumbers.is_valid_number`` accepts several completions of it
(validity is decided by prefix and length, the last four digits never matter). The tests check
every person's numbers with ``phonenumbers`` again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

# country -> (calling code, national trunk prefix)
CALLING: dict[str, tuple[str, str]] = {
    "US": ("1", ""),
    "GB": ("44", "0"),
    "KR": ("82", "0"),
    "CN": ("86", "0"),
    "IL": ("972", "0"),
    "LT": ("370", "0"),
    "DE": ("49", "0"),
    "JP": ("81", "0"),
    "BR": ("55", "0"),
}

# country -> kind -> (leading NSN digit strings, NSN length, digit groups, trunk in national)
_SPECS: dict[str, dict[str, tuple[tuple[str, ...], int, tuple[int, ...], bool]]] = {
    "US": {
        "mobile": (
            (
                "212",
                "415",
                "646",
                "312",
                "617",
                "206",
                "213",
                "305",
                "404",
                "512",
                "702",
                "718",
                "917",
                "303",
                "602",
                "310",
            ),
            10,
            (3, 3, 4),
            False,
        ),
        "landline": (
            ("212", "415", "617", "206", "312", "503", "614", "919"),
            10,
            (3, 3, 4),
            False,
        ),
    },
    "GB": {
        "mobile": (("74", "75", "77", "78", "79"), 10, (4, 6), True),
        "landline": (("203", "207", "208"), 10, (2, 4, 4), True),
    },
    "KR": {
        "mobile": (("10",), 10, (2, 4, 4), True),
        "landline": (("2",), 9, (1, 4, 4), True),
    },
    "CN": {
        "mobile": (("138", "139", "150", "151", "186", "188", "135", "137"), 11, (3, 4, 4), False),
        "landline": (("10",), 10, (2, 4, 4), True),
    },
    "IL": {
        "mobile": (("52", "54", "53", "58"), 9, (2, 3, 4), True),
        "landline": (("3", "2", "4", "9"), 8, (1, 3, 4), True),
    },
    "LT": {
        "mobile": (("6",), 8, (3, 5), True),
        "landline": (("5",), 8, (1, 3, 4), True),
    },
    "DE": {
        "mobile": (("151", "160", "170", "171", "176", "157"), 11, (4, 7), True),
        "landline": (("30",), 10, (2, 8), True),
    },
    "JP": {
        "mobile": (("90", "80", "70"), 10, (2, 4, 4), True),
        "landline": (("3",), 9, (1, 4, 4), True),
    },
    "BR": {
        "mobile": (("119", "219", "319", "419", "519", "619"), 11, (2, 5, 4), False),
        "landline": (("113", "213", "313"), 10, (2, 4, 4), False),
    },
}

_BLOCKS_PER_KIND = 400
_SCRAMBLE = 1_000_003  # prime; coprime with every block-space size used here


@dataclass(frozen=True)
class PhoneKind:
    """Validated NSN blocks (each missing its last four digits) and the notation metadata."""

    blocks: tuple[str, ...]
    groups: tuple[int, ...]
    trunk_national: bool


@lru_cache(maxsize=1)
def phone_kinds() -> dict[tuple[str, str], PhoneKind]:
    """Build the validated block tables once per process (~0.5 s, fixed RNG seed)."""
    import phonenumbers as pn

    rng = random.Random(7_001)
    out: dict[tuple[str, str], PhoneKind] = {}
    for country, kinds in _SPECS.items():
        cc = CALLING[country][0]
        for kind, (leads, nsn_len, groups, trunk_nat) in kinds.items():
            blocks: list[str] = []
            seen: set[str] = set()
            attempts = 0
            while len(blocks) < _BLOCKS_PER_KIND and attempts < _BLOCKS_PER_KIND * 20:
                attempts += 1
                lead = leads[attempts % len(leads)]
                free = nsn_len - 4 - len(lead)
                block = lead + "".join(str(rng.randrange(10)) for _ in range(free))
                if block in seen:
                    continue
                seen.add(block)
                probes = ("0000", "9999", f"{rng.randrange(10_000):04d}")
                if all(pn.is_valid_number(pn.parse(f"+{cc}{block}{p}")) for p in probes):
                    blocks.append(block)
            if len(blocks) < 10:
                raise RuntimeError(f"too few valid phone blocks for {country} {kind}")
            out[(country, kind)] = PhoneKind(tuple(blocks), groups, trunk_nat)
    return out


def unique_nsn(country: str, kind: str, uid: int) -> str:
    """The national significant number for unique id ``uid`` (distinct uids, distinct NSNs)."""
    pk = phone_kinds()[(country, kind)]
    space = len(pk.blocks) * 10_000
    v = (uid * _SCRAMBLE + 12_345) % space
    return f"{pk.blocks[v // 10_000]}{v % 10_000:04d}"


def e164(country: str, nsn: str) -> str:
    """The canonical E.164 form the ground truth uses."""
    return f"+{CALLING[country][0]}{nsn}"


def _split(nsn: str, groups: tuple[int, ...]) -> list[str]:
    parts, i = [], 0
    for g in groups[:-1]:
        parts.append(nsn[i : i + g])
        i += g
    parts.append(nsn[i:])
    return parts


# Notation styles. "crm" is how people type numbers into forms; "switch" is how a
# telephony platform logs caller ids (international or bare digits).
CRM_STYLES = (
    "national_dash",
    "national_space",
    "national_dots",
    "national_digits",
    "intl_space",
    "intl_dash",
    "e164",
    "00_compact",
    "00_spaced",
    "us_paren",
    "us_trunk",
)
SWITCH_STYLES = ("e164", "e164", "e164", "cc_digits", "cc_digits", "national_digits", "intl_space")


def format_phone(country: str, kind: str, nsn: str, style: str) -> str:
    """Write ``nsn`` in one notation, e.g. ``010-2345-6789`` or ``+82 10-2345-6789``."""
    cc, trunk = CALLING[country]
    pk = phone_kinds()[(country, kind)]
    parts = _split(nsn, pk.groups)
    nat = parts.copy()
    if pk.trunk_national and trunk:
        nat[0] = trunk + nat[0]
    if style == "e164":
        return f"+{cc}{nsn}"
    if style == "cc_digits":
        return f"{cc}{nsn}"
    if style == "intl_space":
        return f"+{cc} " + " ".join(parts)
    if style == "intl_dash":
        return f"+{cc} " + "-".join(parts)
    if style == "00_compact":
        return f"00{cc}{nsn}"
    if style == "00_spaced":
        return f"00 {cc} " + " ".join(parts)
    if style == "national_space":
        return " ".join(nat)
    if style == "national_dots":
        return ".".join(nat)
    if style == "national_digits":
        return "".join(nat)
    if style == "us_paren" and country in ("US", "BR"):
        return f"({parts[0]}) {parts[1]}-{''.join(parts[2:])}"
    if style == "us_trunk" and country == "US":
        return f"1-{'-'.join(parts)}"
    return "-".join(nat)
