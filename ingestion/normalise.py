"""Identifier normalisation that needs a library rather than SQL: phone numbers to E.164.

Phone parsing is the one step that must run in Python (Google's libphonenumber metadata, via
``phonenumbers``). It is applied once per distinct (cleaned number, region) pair, never per row;
the loader keeps the answers in ``ingest.phone_numbers`` so a value is parsed once ever.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from typing import TextIO

import phonenumbers

# Removes an extension ("x123", "ext. 123", "#123") so it is not glued onto the number.
_EXTENSION = re.compile(r"(?:\s*(?:ext\.?|x|#)\s*\d+)$", re.IGNORECASE)

PHONE_CLEAN_SQL = (
    "nullif(regexp_replace(regexp_replace(lower(trim({expr})), "
    r"'\s*(ext\.?|x|#)\s*[0-9]+$', ''), '[^0-9+]', '', 'g'), '')"
)
"""SQL twin of :func:`clean_phone`, to find the distinct values to parse inside DuckDB."""


def clean_phone(raw: str | None) -> str | None:
    """Digits and a leading '+' only: the notation-independent key of a written number."""
    if raw is None:
        return None
    text = _EXTENSION.sub("", raw.strip().lower())
    cleaned = re.sub(r"[^0-9+]", "", text)
    return cleaned or None


def _valid_e164(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_e164(cleaned: str | None, region: str | None) -> str | None:
    """E.164 form of a cleaned number, or None when it is not a valid number anywhere.

    National numbers are read in the record's country. Switches and people also write
    international numbers without '+' ("0082 10…" or "821…"): digits that begin with the
    country's own calling code are read as international first (so "49 170 …" in Germany is not
    taken as a national number and given a second +49). Without a country, only numbers written
    internationally ('+' or '00') are accepted: guessing would invent identifiers.
    """
    if not cleaned:
        return None
    region = (region or "").strip().upper() or None
    digits = cleaned.lstrip("+")
    if not digits.isdigit():
        return None
    if cleaned.startswith("+"):
        return _valid_e164("+" + digits, None)
    candidates = []
    if region:
        calling_code = str(phonenumbers.country_code_for_region(region))
        if calling_code != "0" and digits.startswith(calling_code) and len(digits) >= 10:
            candidates.append(("+" + digits, None))
        candidates.append((digits, region))
    if digits.startswith("00"):
        candidates.append(("+" + digits[2:], None))
    if region and len(digits) >= 10:
        candidates.append(("+" + digits, None))
    for text, reg in candidates:
        e164 = _valid_e164(text, reg)
        if e164:
            return e164
    return None


PARALLEL_FROM = 20_000
"""Fewer values than this are parsed in-process: a helper process costs more than it saves."""

_LINE_BREAKING = re.compile(r"[\t\r\n]")  # cannot travel in the helper's line protocol
_HELPER = "import sys; from ingestion.normalise import _serve; _serve(sys.stdin, sys.stdout)"


def _serve(lines: Iterable[str], out: TextIO) -> None:
    """The helper process: one "cleaned<TAB>region" per line in, one E.164 (or "") per line out."""
    for line in lines:
        cleaned, _, region = line.rstrip("\n").partition("\t")
        out.write((to_e164(cleaned, region) or "") + "\n")
    out.flush()


def to_e164_many(cleaned: list[str], regions: list[str]) -> list[str | None]:
    """:func:`to_e164` of many values, in the same order.

    Parsing is pure Python (about 25 µs a value), so a large set is split: a helper process
    (a plain ``python -c``, independent of how this program was started) parses one half while
    this process parses the other, using the second core.
    """
    if len(cleaned) < PARALLEL_FROM or any(_LINE_BREAKING.search(r or "") for r in regions):
        return [to_e164(c, r) for c, r in zip(cleaned, regions, strict=True)]
    half = len(cleaned) // 2
    with tempfile.TemporaryFile("w+", encoding="utf-8") as answers:
        helper = subprocess.Popen(
            [sys.executable, "-c", _HELPER],
            stdin=subprocess.PIPE,
            stdout=answers,
            encoding="utf-8",
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
        feeder = threading.Thread(
            target=_feed, args=(helper.stdin, cleaned[:half], regions[:half]), daemon=True
        )
        feeder.start()
        mine = [to_e164(c, r) for c, r in zip(cleaned[half:], regions[half:], strict=True)]
        feeder.join()
        if helper.wait() != 0:
            raise RuntimeError(f"phone number helper process failed (exit {helper.returncode})")
        answers.seek(0)
        theirs = [line.rstrip("\n") or None for line in answers]
    if len(theirs) != half:
        raise RuntimeError(f"phone number helper answered {len(theirs)} of {half} values")
    return theirs + mine


def _feed(pipe: TextIO, cleaned: list[str], regions: list[str]) -> None:
    with pipe:
        pipe.writelines(f"{c}\t{r or ''}\n" for c, r in zip(cleaned, regions, strict=True))
