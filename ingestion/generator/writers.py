"""Deterministic, streamable file output: plain files and single-member gzip files.

Workers simulate a chunk of people and return, per landing file, the bytes of that chunk's
rows. For ``.gz`` files a worker already compresses its part as *raw deflate blocks ending in a
sync flush*; such parts concatenate into one valid deflate stream, so the parent only writes a
fixed gzip header (mtime 0, no file name), appends parts, and closes the stream with an empty
final block plus CRC-32 and size. The CRC of the whole is combined from the parts' CRCs, so no
uncompressed data ever crosses a process boundary for compressed files and the result is one
ordinary gzip member that every reader (DuckDB included) accepts. The output depends only on
the (constant) chunk size, never on the number of workers.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown
FINAL_BLOCK = b"\x03\x00"  # an empty, final, fixed-Huffman deflate block
LEVEL = 1  # fast: output volume is large and the bytes only need to be deterministic
_ZEROS = bytes(1 << 20)


def deflate_part(data: bytes, level: int = LEVEL) -> bytes:
    """Raw deflate of ``data``, byte-aligned and non-final, ready to be concatenated."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def _crc_zeros(n: int, crc: int) -> int:
    view = memoryview(_ZEROS)
    while n > 0:
        step = min(n, len(_ZEROS))
        crc = zlib.crc32(view[:step], crc)
        n -= step
    return crc


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B), len(B), using that CRC-32 is affine over GF(2)."""
    if len2 == 0:
        return crc1
    return _crc_zeros(len2, crc1) ^ _crc_zeros(len2, 0) ^ crc2


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """A complete deterministic gzip member (used for small files)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    body = c.compress(data) + c.flush(zlib.Z_FINISH)
    return GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


@dataclass
class OutFile:
    """A landing or truth file being appended to, chunk after chunk."""

    path: Path
    gz: bool
    header: bytes = b""
    crc: int = 0
    size: int = 0
    lines: int = 0  # lines written so far, header included
    opened: bool = False
    _fh: object = field(default=None, repr=False)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.opened = True
        if self.gz:
            self._fh.write(GZIP_HEADER)
        if self.header:
            self.write_raw(self.header)

    def write_part(self, payload: bytes, crc: int, raw_len: int, n_lines: int) -> None:
        """Append a worker's part: raw bytes, or a deflate part with the raw CRC/length."""
        if not self.opened:
            self._open()
        self._fh.write(payload)
        if self.gz:
            self.crc = crc32_combine(self.crc, crc, raw_len)
        self.size += raw_len
        self.lines += n_lines

    def write_raw(self, data: bytes) -> None:
        """Append uncompressed bytes (compressed here when the file is gzip)."""
        if not self.opened:
            self._open()
            if not data:
                return
        n = data.count(b"\n")
        if self.gz:
            self.write_part(deflate_part(data), zlib.crc32(data), len(data), n)
        else:
            self.write_part(data, 0, len(data), n)

    def close(self) -> None:
        """Finish the gzip member (final block, CRC-32, size) and close."""
        if not self.opened:
            return
        if self.gz:
            self._fh.write(FINAL_BLOCK + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        self._fh.close()
        self._fh = None


def landing_name(source: str, start: date, day: int) -> str:
    """File name of ``source`` for day index ``day`` (fixed per day: independent of ``days``).

    Compression alternates by day for calls and web, so both plain and ``.gz`` variants of
    the same format occur in any window of a few days.
    """
    d = (start + timedelta(days=day)).isoformat()
    if source == "contacts":
        return f"contacts/export-{d}.csv"
    if source == "email":
        return f"email/sendgrid-{d}.jsonl.gz"
    if source == "calls":
        return f"calls/calls-{d}.csv" + (".gz" if day % 4 == 2 else "")
    if source == "web":
        return f"web/events-{d}.jsonl" + (".gz" if day % 3 == 1 else "")
    if source == "orders":
        return f"orders/orders-{d}.jsonl"
    raise ValueError(source)
