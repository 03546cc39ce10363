"""Split a landing file's bytes into records without parsing them row by row in Python.

Every record keeps the line number where it starts, so that quarantine can point a person at the
exact line of the file. Framing is vectorised with NumPy over the whole buffer: JSON Lines split
at every newline; CSV splits at newlines outside double quotes (RFC 4180 quoting, where ``""``
escapes a quote and so never changes the parity of the quote count).
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

NEWLINE = 10
CARRIAGE_RETURN = 13
QUOTE = 34
COMMA = 44


class UnreadableFileError(Exception):
    """The file as a whole cannot be turned into records (e.g. a truncated gzip stream)."""


def decompressed(content: bytes, file_name: str) -> bytes:
    """The bytes of a landed file as its records are written (``.gz`` files gunzipped)."""
    if not file_name.endswith(".gz"):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableFileError(f"cannot decompress gzip file: {exc}") from exc


@dataclass(frozen=True)
class Records:
    """Record boundaries in ``data``: record i is ``data[starts[i]:ends[i]]`` (no line end)."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    line_numbers: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def text(self, i: int) -> str:
        """The record as a person would read it (undecodable bytes shown as U+FFFD)."""
        return self.data[self.starts[i] : self.ends[i]].decode("utf-8", errors="replace")

    def to_arrow(self) -> pa.Table:
        """Zero-copy Arrow table (row_number, text) over the buffer, for DuckDB.

        Each ``text`` value runs from the record's start to the next record's start, so it may
        end with the line end (and blank lines): whitespace that JSON parsing ignores. The exact
        text of a record, for quarantine, is :meth:`text`. UTF-8 validity is decided per record,
        so one bad byte cannot spoil the whole file: a record that is not UTF-8 is null here
        (its bytes stay in the buffer, masked), which spares DuckDB decoding every record.
        """
        offsets = np.empty(len(self.starts) + 1, dtype=np.int64)
        offsets[:-1] = self.starts
        offsets[-1] = len(self.data)
        ok = valid_utf8(self)
        validity = None if ok.all() else pa.py_buffer(np.packbits(ok, bitorder="little"))
        text = pa.LargeStringArray.from_buffers(
            len(self.starts),
            pa.py_buffer(offsets),
            pa.py_buffer(self.data),
            validity,
            null_count=int(len(ok) - ok.sum()),
        )
        return pa.table({"row_number": pa.array(self.line_numbers, pa.int64()), "text": text})


CHUNK_BYTES = 1 << 20


def valid_utf8(records: Records) -> np.ndarray:
    """Per record, whether its bytes are valid UTF-8.

    Whole chunks of records are decoded at C speed. When a chunk fails, the decoder says where:
    the record holding that byte is checked alone, and decoding resumes at the next record. So
    every byte is decoded about once however many records are bad (decoding a failed chunk
    record by record cost web events at 1M people 3.8 s, most chunks holding one bad line).
    """
    ok = np.ones(len(records), dtype=bool)
    data, starts, ends = records.data, records.starts, records.ends
    view = memoryview(data)
    first = 0
    while first < len(records):
        last = int(np.searchsorted(starts, starts[first] + CHUNK_BYTES, side="left"))
        last = max(last, first + 1)
        try:
            codecs.utf_8_decode(view[starts[first] : ends[last - 1]], "strict", True)
        except UnicodeDecodeError as exc:
            bad = int(np.searchsorted(starts, starts[first] + exc.start, side="right")) - 1
            try:
                codecs.utf_8_decode(view[starts[bad] : ends[bad]], "strict", True)
            except UnicodeDecodeError:
                ok[bad] = False
            last = bad + 1  # the records before it decoded; go on after it
        first = last
    return ok


def _strip_and_drop_blank(
    data: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, line_numbers: np.ndarray
) -> Records:
    has_cr = ends > starts
    has_cr[has_cr] = arr[ends[has_cr] - 1] == CARRIAGE_RETURN
    ends = ends - has_cr
    keep = ends > starts
    return Records(data, starts[keep], ends[keep], line_numbers[keep])


def frame_lines(data: bytes) -> Records:
    """Records of a JSON Lines buffer: one per non-empty line."""
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == NEWLINE)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [len(data)])).astype(np.int64)
    line_numbers = np.arange(1, len(starts) + 1, dtype=np.int64)
    return _strip_and_drop_blank(data, arr, starts, ends, line_numbers)


@dataclass(frozen=True)
class CsvRecords(Records):
    """CSV records plus, per record, its number of fields and whether a quote is left open."""

    field_counts: np.ndarray = None  # type: ignore[assignment]
    unterminated_quote: np.ndarray = None  # type: ignore[assignment]


def frame_csv(data: bytes) -> CsvRecords:
    """Records of an RFC 4180 CSV buffer (header included as record 0 when present)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(arr == QUOTE)
    newlines = np.flatnonzero(arr == NEWLINE)
    outside = np.searchsorted(quotes, newlines) % 2 == 0
    boundaries = newlines[outside]
    starts = np.concatenate(([0], boundaries + 1)).astype(np.int64)
    ends = np.concatenate((boundaries, [len(data)])).astype(np.int64)
    line_numbers = np.searchsorted(newlines, starts) + 1
    base = _strip_and_drop_blank(data, arr, starts, ends, line_numbers.astype(np.int64))
    starts, ends = base.starts, base.ends

    commas = np.flatnonzero(arr == COMMA)
    commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    owner = np.searchsorted(starts, commas, side="right") - 1
    in_record = (owner >= 0) & (commas < ends[np.clip(owner, 0, None)]) if len(starts) else owner
    field_counts = np.bincount(owner[in_record], minlength=len(starts)) + 1
    quotes_in = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)
    return CsvRecords(
        data,
        starts,
        ends,
        base.line_numbers,
        field_counts=field_counts.astype(np.int64),
        unterminated_quote=(quotes_in % 2 == 1),
    )
