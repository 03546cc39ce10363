import duckdb
import pytest

from ingestion.normalise import (
    PARALLEL_FROM,
    PHONE_CLEAN_SQL,
    PhoneParser,
    clean_phone,
    to_e164,
    to_e164_many,
)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("010-2345-6789", "KR", "+821023456789"),  # national, trunk prefix, dashes
        ("+82 10-2345-6789", "KR", "+821023456789"),  # international with spaces
        ("0082 10 2345 6789", "US", "+821023456789"),  # 00 international prefix
        ("821023456789", "KR", "+821023456789"),  # switch log without '+'
        ("(415) 555-0142", "US", "+14155550142"),  # US national with parentheses
        ("415.555.0142", "US", "+14155550142"),  # dots
        ("+1 415 555 0142", None, "+14155550142"),  # no country needed
        ("020 7946 0018", "GB", "+442079460018"),  # UK national trunk 0
        ("+44 (0)20 7946 0018", None, "+442079460018"),  # the (0) trunk in international
        ("8 612 34567", "LT", "+37061234567"),  # Lithuanian trunk 8
        ("+370 612 34567", "lt", "+37061234567"),  # lower-case country
        ("138 1234 5678", "CN", "+8613812345678"),  # Chinese mobile
        ("054-555-1234", "IL", "+972545551234"),  # Israeli mobile
        ("030 123456", "DE", "+4930123456"),
        ("49 170 2270 7169", "DE", "+4917022707169"),  # international without '+', own country
        ("031 91781 6353", "BR", "+5531917816353"),
        ("31 91781-6353", "BR", "+5531917816353"),  # national without trunk prefix
        ("31 91781-6353", None, None),  # no country: not guessed (it would read as Dutch)
        ("00 55 31 91781 3293", None, "+5531917813293"),  # international without a country
        ("+44 20 7946 0018 ext. 12", None, "+442079460018"),  # extension dropped
        ("0000000000", "US", None),  # placeholder is not a number
        ("12", "US", None),
        ("", "US", None),
        (None, "US", None),
    ],
)
def test_phone_notations(raw, region, e164):
    assert to_e164(clean_phone(raw), region) == e164


def test_sql_cleaning_matches_python_cleaning():
    samples = ["+82 10-2345-6789", "(415) 555-0142 x12", " 020 7946 0018 ", "abc", "+1.415.555"]
    conn = duckdb.connect()
    for raw in samples:
        sql = "SELECT " + PHONE_CLEAN_SQL.format(expr="?")
        assert conn.execute(sql, [raw]).fetchone()[0] == clean_phone(raw)


def test_many_values_parsed_across_processes_come_back_in_order():
    """Above PARALLEL_FROM values, half are parsed in a helper process; order must hold."""
    cleaned = [f"415555{i:04d}" for i in range(PARALLEL_FROM + 10)]
    regions = ["US" if i % 3 else "GB" for i in range(len(cleaned))]
    cleaned[5] = "0000000000"
    assert to_e164_many(cleaned, regions) == [
        to_e164(c, r) for c, r in zip(cleaned, regions, strict=True)
    ]


def test_a_region_that_would_break_the_helpers_lines_is_parsed_in_process():
    cleaned = ["4155550142"] * (PARALLEL_FROM + 1)
    regions = ["US"] * PARALLEL_FROM + ["U\nS"]
    expected = [to_e164(c, r) for c, r in zip(cleaned, regions, strict=True)]
    assert to_e164_many(cleaned, regions) == expected


def test_regions_in_any_script_travel_to_the_helper_and_back():
    cleaned = ["4155550142"] * (PARALLEL_FROM + 1)
    regions = ["ÜS"] * len(cleaned)  # nonsense country, typed by someone: still answered
    expected = [to_e164(c, r) for c, r in zip(cleaned, regions, strict=True)]
    assert to_e164_many(cleaned, regions) == expected


def test_one_parser_answers_many_requests_with_one_helper():
    """A load of many batches starts the helper once; each request's answers stay its own."""
    with PhoneParser() as parser:
        pids = []
        for offset in (0, 7, 3):
            cleaned = [f"415555{(i + offset) % 10000:04d}" for i in range(PARALLEL_FROM + offset)]
            regions = ["US" if i % 4 else "GB" for i in range(len(cleaned))]
            expected = [to_e164(c, r) for c, r in zip(cleaned, regions, strict=True)]
            assert parser.many(cleaned, regions) == expected
            pids.append(parser._helper.pid)
        helper = parser._helper
    assert len(set(pids)) == 1
    assert helper.poll() is not None  # closed with the parser


def test_a_helper_that_died_is_reported_not_answered_for():
    cleaned = ["4155550142"] * PARALLEL_FROM
    with PhoneParser() as parser:
        parser.many(cleaned, ["US"] * len(cleaned))
        parser._helper.kill()
        parser._helper.wait()
        with pytest.raises(RuntimeError, match="phone number helper process answered 0 of"):
            parser.many(cleaned, ["US"] * len(cleaned))
