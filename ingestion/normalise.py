"""Identifier normalisation that needs a library rather than SQL: phone numbers to E.164.

Phone parsing is the one step that must run in Python (Google's libphonenumber metadata, via
``phonenumbers``). It is applied once per distinct (cleaned number, region) pair, never per row;
the loader keeps the answers in ``ingest.phone_numbers`` so a value is parsed once ever.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
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


PARALLEL_FROM = 2_000
"""Fewer values than this are parsed in-process: sending them to the helper costs more than it
saves. The helper is started once per :class:`PhoneParser`, so only its first use pays for the
start (about 0.2 s)."""

_LINE_BREAKING = re.compile(r"[\t\r\n]")  # cannot travel in the helper's line protocol
_HELPER = "import sys; from ingestion.normalise import _serve; _serve(sys.stdin, sys.stdout)"


def _serve(lines: TextIO, out: TextIO) -> None:
    """The helper process. A request is a line with a count N, then N lines "cleaned<TAB>region".
    The answer is a line with the length L of a block, then the block: N lines, each an E.164
    number or empty (ASCII, so L counts characters and bytes alike). Ends at EOF."""
    for header in lines:
        pairs = [lines.readline().rstrip("\n").partition("\t") for _ in range(int(header))]
        block = "".join((to_e164(cleaned, region) or "") + "\n" for cleaned, _, region in pairs)
        out.write(f"{len(block)}\n{block}")
        out.flush()


class PhoneParser:
    """:func:`to_e164` of many values at a time, on both cores.

    Parsing is pure Python (about 25 µs a value). A large set is split: a helper process (a
    plain ``python -c``, independent of how this program was started) parses one half while
    this process parses the other. The helper lives as long as the parser, so a load of many
    batches starts it once. Use it as a context manager; the helper ends when it is closed, or
    when this process ends (its input closes).
    """

    def __init__(self) -> None:
        self._helper: subprocess.Popen | None = None

    def __enter__(self) -> PhoneParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            with contextlib.suppress(OSError):
                helper.stdin.close()
            helper.stdout.close()
            helper.wait()

    def _started(self) -> subprocess.Popen:
        if self._helper is None:
            self._helper = subprocess.Popen(
                [sys.executable, "-c", _HELPER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                encoding="utf-8",
                env={**os.environ, "PYTHONIOENCODING": "utf-8"},
            )
        return self._helper

    def many(self, cleaned: list[str], regions: list[str]) -> list[str | None]:
        """:func:`to_e164` of each (cleaned, region) pair, in the same order."""
        if len(cleaned) < PARALLEL_FROM or any(_LINE_BREAKING.search(r or "") for r in regions):
            return [to_e164(c, r) for c, r in zip(cleaned, regions, strict=True)]
        half = len(cleaned) // 2
        helper = self._started()
        # One write and one read a request: per-line I/O in this process would take the GIL
        # from the parsing that runs here meanwhile (it cost 12% of the parallel speed-up).
        request = f"{half}\n" + "".join(
            f"{c}\t{r or ''}\n" for c, r in zip(cleaned[:half], regions[:half], strict=True)
        )
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                helper.stdin.write(request)
                helper.stdin.flush()
            except OSError as exc:  # the helper died: reported below
                failure.append(exc)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        mine = [to_e164(c, r) for c, r in zip(cleaned[half:], regions[half:], strict=True)]
        feeder.join()
        header = helper.stdout.readline()
        block = helper.stdout.read(int(header)) if header.strip().isdigit() else ""
        theirs = [e164 or None for e164 in block.split("\n")[:-1]]
        if failure or len(theirs) != half:
            self.close()
            raise RuntimeError(
                f"phone number helper process answered {len(theirs)} of {half} values"
                + (f" ({failure[0]})" if failure else "")
            )
        return theirs + mine


def to_e164_many(cleaned: list[str], regions: list[str]) -> list[str | None]:
    """:func:`to_e164` of many values, in the same order (a :class:`PhoneParser` used once)."""
    with PhoneParser() as parser:
        return parser.many(cleaned, regions)
