"""WAL positions as PostgreSQL prints them (``pg_lsn``: two hex halves) and as integers."""

from __future__ import annotations

import pytest

from metrify.stores.replica import format_lsn, parse_lsn


def test_an_lsn_is_its_high_half_times_2_to_the_32_plus_its_low_half() -> None:
    assert parse_lsn("16/B374D848") == 0x16 * 2**32 + 0xB374D848
    assert parse_lsn("0/0") == 0
    assert parse_lsn("0/1") < parse_lsn("0/10") < parse_lsn("1/0")


def test_formatting_gives_back_the_text_postgresql_prints() -> None:
    for text in ("16/B374D848", "0/0", "FFFFFFFF/FFFFFFFF", "1/A"):
        assert format_lsn(parse_lsn(text)) == text


def test_a_header_that_is_no_lsn_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_lsn("12345")
    with pytest.raises(ValueError):
        parse_lsn("zz/1")
