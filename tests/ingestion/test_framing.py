import gzip

import numpy as np
import pytest

from ingestion.framing import UnreadableFileError, decompressed, frame_csv, frame_lines


def texts(records):
    return [records.text(i) for i in range(len(records))]


def test_lines_keep_line_numbers_and_skip_blank_lines():
    records = frame_lines(b'{"a":1}\n\n{"b":2}\r\n{"c":3}')
    assert texts(records) == ['{"a":1}', '{"b":2}', '{"c":3}']
    assert records.line_numbers.tolist() == [1, 3, 4]


def test_lines_of_an_empty_file():
    assert len(frame_lines(b"")) == 0
    assert len(frame_lines(b"\n\n")) == 0


def test_csv_newline_inside_quotes_does_not_split_a_record():
    data = b'a,b,c\n1,"x\ny",z\n2,"say ""hi""",w\n'
    records = frame_csv(data)
    assert texts(records) == ["a,b,c", '1,"x\ny",z', '2,"say ""hi""",w']
    assert records.line_numbers.tolist() == [1, 2, 4]
    assert records.field_counts.tolist() == [3, 3, 3]


def test_csv_counts_fields_outside_quotes_only():
    records = frame_csv(b'a,b\n"1,2",3\n4\n5,6,7\n,\n')
    assert records.field_counts.tolist() == [2, 2, 1, 3, 2]


def test_csv_unterminated_quote_swallows_the_rest_and_is_flagged():
    records = frame_csv(b'a,b\n1,2\n3,"open\n4,5\n')
    assert records.unterminated_quote.tolist() == [False, False, True]
    assert records.line_numbers.tolist() == [1, 2, 3]


def test_csv_crlf_line_ends():
    records = frame_csv(b"a,b\r\n1,2\r\n")
    assert texts(records) == ["a,b", "1,2"]


def test_arrow_view_is_zero_copy_and_ordered():
    records = frame_lines(b"x\ny\n")
    table = records.to_arrow()
    assert table.column("row_number").to_pylist() == [1, 2]
    assert table.column("text").to_pylist() == ["x\n", "y\n"]


def test_gzip_is_decompressed_and_a_broken_stream_is_unreadable():
    payload = gzip.compress(b"x\n")
    assert decompressed(payload, "f.jsonl.gz") == b"x\n"
    assert decompressed(b"plain", "f.jsonl") == b"plain"
    with pytest.raises(UnreadableFileError, match="gzip"):
        decompressed(payload[: len(payload) // 2], "f.jsonl.gz")


def test_large_buffer_framing_matches_python_splitlines():
    rng = np.random.default_rng(1)
    lines = [("x" * int(n)) for n in rng.integers(1, 50, size=5000)]
    records = frame_lines(("\n".join(lines) + "\n").encode())
    assert texts(records) == lines


@pytest.mark.parametrize(
    "data",
    [
        b"a\n\n\r\nb\r\nc",
        b"\n\nfirst\nsecond\n\n",
        b"only",
        b"x\r\n",
        b"",
    ],
)
def test_arrow_values_are_the_records_plus_trailing_line_ends(data):
    records = frame_lines(data)
    values = records.to_arrow().column("text").to_pylist()
    assert [v.rstrip("\r\n") for v in values] == [
        records.data[s:e].decode() for s, e in zip(records.starts, records.ends, strict=True)
    ]


def test_csv_record_text_keeps_newlines_inside_quotes():
    records = frame_csv(b'h\r\n"a\r\nb"\r\n\r\nc\n')
    assert texts(records) == ["h", '"a\r\nb"', "c"]


def test_utf8_validity_is_per_record():
    records = frame_lines(b"ok\n\xff\xfe\nfine \xc3\xa9\n\xc3\n")
    table = records.to_arrow()
    table.validate(full=True)  # valid Arrow: the bad bytes sit only under null slots
    assert table.column("text").to_pylist() == ["ok\n", None, "fine é\n", None]


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1 << 20])
def test_utf8_validity_with_many_bad_records_matches_decoding_each(monkeypatch, chunk_bytes):
    """Bad records anywhere: several in one chunk, at a chunk's edges, a multi-byte character cut
    by the line end, the first and the last record. Each record's verdict is that of decoding it
    alone, whatever the chunk size."""
    from ingestion import framing

    monkeypatch.setattr(framing, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(7)
    pieces = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", "é".encode(), "값".encode(), b"ab"]
    lines = (
        [b"\xc3"]
        + [
            b"".join(pieces[i] for i in rng.integers(0, len(pieces), rng.integers(0, 4)))
            + b"x" * int(rng.integers(0, 20))
            for _ in range(2000)
        ]
        + [b"tail \xff"]
    )
    records = frame_lines(b"\n".join(lines))
    expected = []
    for i in range(len(records)):
        try:
            records.data[records.starts[i] : records.ends[i]].decode("utf-8")
            expected.append(True)
        except UnicodeDecodeError:
            expected.append(False)
    assert 100 < expected.count(False) < len(expected) - 100
    assert framing.valid_utf8(records).tolist() == expected
