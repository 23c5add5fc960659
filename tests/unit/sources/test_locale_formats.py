"""Dates written day or month first and numbers with decimal commas or thousands
separators, as exports from spreadsheets and head-ends in other locales write them;
``--ts-format`` for what cannot be told. Expected times and values are written out by
hand from the texts."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.sources.decode import AMBIGUOUS_DATE, decode
from metrify.sources.mapping import MappingError, build_mapping

UTC = dt.UTC


def _times(texts: list[str], **options: object) -> tuple[list[dt.datetime], list[str]]:
    raw = pl.DataFrame({"ts": texts, "import_kwh": ["1"] * len(texts)})
    mapping = build_mapping(READING, sets=["meter_id=M"], interval_s=1800, **options)  # type: ignore[arg-type]
    out = decode(READING, raw, mapping)
    return out.records["ts"].to_list(), out.rejects["reason"].to_list()


def _at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        # dots: Europe's day first, also with a two-digit year
        (
            ["01.03.2024 00:15", "01.03.2024 00:30"],
            [_at(2024, 3, 1, 0, 15), _at(2024, 3, 1, 0, 30)],
        ),
        (["01.03.24 00:15"], [_at(2024, 3, 1, 0, 15)]),
        # dashes with the year last: day first
        (["02-03-2024 23:30"], [_at(2024, 3, 2, 23, 30)]),
        # slashes: a first number above 12 is a day, a second above 12 a day too
        (["28/02/2024 23:30", "29/02/2024 00:00"], [_at(2024, 2, 28, 23, 30), _at(2024, 2, 29)]),
        (
            ["2/28/2024 11:30 PM", "2/29/2024 12:00 AM"],
            [_at(2024, 2, 28, 23, 30), _at(2024, 2, 29)],
        ),
        # slashes that no number tells: consecutive rows step by half an hour day first
        (
            ["01/03/2024 23:30", "02/03/2024 00:00", "02/03/2024 00:30"],
            [_at(2024, 3, 1, 23, 30), _at(2024, 3, 2), _at(2024, 3, 2, 0, 30)],
        ),
        # month first, told the same way: the 3rd to the 4th of January
        (
            ["01/03/2024 23:30", "01/04/2024 00:00"],
            [_at(2024, 1, 3, 23, 30), _at(2024, 1, 4)],
        ),
        # an offset after the date still gives the instant
        (["01.03.2024 00:15+01:00"], [_at(2024, 2, 29, 23, 15)]),
    ],
)
def test_dates_written_day_or_month_first(texts: list[str], expected: list[dt.datetime]) -> None:
    times, reasons = _times(texts)
    assert reasons == []
    assert times == expected


@pytest.mark.parametrize(
    "texts",
    [
        ["03/04/2024 10:00", "03/04/2024 10:30"],  # one date: the 3rd of April or the 4th of March
        ["13/01/2024 10:00", "01/13/2024 10:00"],  # both orders in one column
    ],
)
def test_a_date_order_nothing_tells_is_refused_with_its_reason(texts: list[str]) -> None:
    times, reasons = _times(texts)
    assert times == []
    assert reasons == [AMBIGUOUS_DATE] * len(texts)


def test_ts_format_reads_what_cannot_be_told_in_the_zone_given() -> None:
    times, reasons = _times(
        ["03/04/2024 10:00", "03/04/2024 10:30"], ts_format="%d/%m/%Y %H:%M", tz="Europe/Berlin"
    )
    assert reasons == []
    assert times == [_at(2024, 4, 3, 8), _at(2024, 4, 3, 8, 30)]  # CEST is UTC+2
    times, _ = _times(["3/4/2024 10:00 PM"], ts_format="%m/%d/%Y %I:%M %p", tz="Europe/Berlin")
    assert times == [_at(2024, 3, 4, 21)]  # CET is UTC+1
    times, _ = _times(["03.04.2024 10:00+0000"], ts_format="%d.%m.%Y %H:%M%z", tz="Europe/Berlin")
    assert times == [_at(2024, 4, 3, 10)]  # an offset in the text wins over --tz
    times, reasons = _times(["2024-04-03 10:00"], ts_format="%d/%m/%Y %H:%M")
    assert times == [] and reasons == ["unparseable ts"]


def test_a_ts_format_without_a_date_is_refused() -> None:
    with pytest.raises(MappingError, match="no date in it"):
        build_mapping(READING, ts_format="%H:%M")


def _numbers(columns: dict[str, list[str]]) -> tuple[pl.DataFrame, list[str]]:
    n = len(next(iter(columns.values())))
    raw = pl.DataFrame(
        {"meter_id": ["M"] * n, "ts": [f"2024-01-01 00:{i:02d}" for i in range(n)], **columns}
    )
    out = decode(READING, raw, build_mapping(READING, interval_s=60))
    return out.records, out.rejects["reason"].to_list()


def test_decimal_commas_and_dot_grouping_of_a_european_export() -> None:
    records, reasons = _numbers(
        {"import_kwh": ["0,25", "1,5", "2"], "register_kwh": ["1.234,5", "1.236", "12345,678"]}
    )
    assert reasons == []
    assert records["import_kwh"].to_list() == [0.25, 1.5, 2.0]
    # 1.236 has no comma: a plain decimal point, as any number without a comma is
    assert records["register_kwh"].to_list() == [1234.5, 1.236, 12345.678]


def test_one_column_tells_the_others_which_comma_the_file_writes() -> None:
    """The export register's ``10,000`` reads both ways alone; the import register's
    ``1234,567`` can only be a decimal comma, so the file writes decimal commas."""
    records, reasons = _numbers(
        {"register_kwh": ["1234,567", "1234,789"], "export_register_kwh": ["10,000", "10,050"]}
    )
    assert reasons == []
    assert records["export_register_kwh"].to_list() == [10.0, 10.05]


def test_three_decimals_below_one_are_a_decimal_comma() -> None:
    """``0,219`` has three digits after its comma, but no number is grouped as 0,219."""
    records, reasons = _numbers({"import_kwh": ["0,219", "1,234"]})
    assert reasons == []
    assert records["import_kwh"].to_list() == [0.219, 1.234]


def test_thousands_separators_with_a_decimal_point() -> None:
    records, reasons = _numbers({"import_kwh": ["1,234.5", "12,345", "7.25"]})
    assert reasons == []
    assert records["import_kwh"].to_list() == [1234.5, 12345.0, 7.25]


def test_a_comma_nothing_tells_is_refused_not_read_a_thousand_times_off() -> None:
    records, reasons = _numbers({"import_kwh": ["1,234", "2,500", "0.5"]})
    assert records["import_kwh"].to_list() == [0.5]
    assert len(reasons) == 2 and all(r.startswith("ambiguous import_kwh") for r in reasons)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        # the end of a day as load profiles write it: 00:00 of the next day
        (["01.03.2024 23:45", "01.03.2024 24:00"], [_at(2024, 3, 1, 23, 45), _at(2024, 3, 2)]),
        (["2024-12-31 24:00:00"], [_at(2025, 1, 1)]),
        (["2024-02-28T24:00Z"], [_at(2024, 2, 29)]),
        (["2024-02-28 24:00+01:00"], [_at(2024, 2, 28, 23)]),
        # minutes that read 24 are no end of day
        (["2024-02-28 12:24:00"], [_at(2024, 2, 28, 12, 24)]),
    ],
)
def test_24_00_is_the_end_of_its_day(texts: list[str], expected: list[dt.datetime]) -> None:
    times, reasons = _times(texts)
    assert (times, reasons) == (expected, [])


def test_24_00_on_a_dst_day_is_local_midnight_after_it() -> None:
    """31 March 2024 has 23 hours in Berlin: its 24:00 is 1 April 00:00 CEST (22:00 UTC),
    not 24 hours after its 00:00 CET (23:00 UTC the day before)."""
    times, _ = _times(["31.03.2024 24:00", "31.03.2024 00:00"], tz="Europe/Berlin")
    assert times == [_at(2024, 3, 31, 22), _at(2024, 3, 30, 23)]


def _joined(
    date: list[str | None], time: list[str | None], **options: object
) -> tuple[list[dt.datetime], list[str]]:
    raw = pl.DataFrame({"Datum": date, "Zeit": time, "kWh": ["1"] * len(date)})
    mapping = build_mapping(
        READING,
        maps=["ts=Datum+Zeit", "import_kwh=kWh"],
        sets=["meter_id=M"],
        interval_s=900,
        **options,  # type: ignore[arg-type]
    )
    out = decode(READING, raw, mapping)
    assert out.ignored_columns == []  # both parts are read
    return out.records["ts"].to_list(), out.rejects["reason"].to_list()


def test_a_date_column_and_a_time_column_make_one_time() -> None:
    times, reasons = _joined(
        ["01.03.2024", "01.03.2024", "02.03.2024", None], ["23:45", "24:00", "00:15", "01:00"]
    )
    assert times == [_at(2024, 3, 1, 23, 45), _at(2024, 3, 2), _at(2024, 3, 2, 0, 15)]
    assert reasons == ["missing ts"]  # a time without its date is no time


def test_a_date_and_a_time_joined_take_the_ts_format() -> None:
    times, _ = _joined(["3/1/2024"], ["11:45 PM"], ts_format="%m/%d/%Y %I:%M %p")
    assert times == [_at(2024, 3, 1, 23, 45)]


def test_typed_date_and_time_columns_join_as_their_iso_text() -> None:
    """A Parquet file's date and time types (what pandas writes for ``date``/``time``)."""
    raw = pl.DataFrame({"d": [dt.date(2024, 3, 1)], "t": [dt.time(23, 45)], "kWh": ["1"]})
    mapping = build_mapping(
        READING, maps=["ts=d+t", "import_kwh=kWh"], sets=["meter_id=M"], interval_s=900
    )
    assert decode(READING, raw, mapping).records["ts"].to_list() == [_at(2024, 3, 1, 23, 45)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # PostgreSQL's text of a timestamptz: the offset in whole hours
        ("2018-01-01 00:00:00-06", _at(2018, 1, 1, 6)),
        ("2024-01-01 00:00:00+00", _at(2024, 1, 1)),
        ("2024-01-01 02:15:00.5-06", dt.datetime(2024, 1, 1, 8, 15, 0, 500_000, tzinfo=UTC)),
        # a zone name of UTC itself, as BigQuery and many loggers write it
        ("2024-01-01 01:00:00 UTC", _at(2024, 1, 1, 1)),
        ("2024-01-01T02:00:00 utc", _at(2024, 1, 1, 2)),
        ("2024-01-01 02:00:00 GMT", _at(2024, 1, 1, 2)),
        # an HTTP / RFC 2822 date
        ("Mon, 01 Jan 2024 01:30:00 GMT", _at(2024, 1, 1, 1, 30)),
        ("Mon, 01 Jan 2024 01:30:00 +0100", _at(2024, 1, 1, 0, 30)),
    ],
)
def test_times_as_databases_and_loggers_write_them(text: str, expected: dt.datetime) -> None:
    times, reasons = _times([text], tz="Europe/Berlin")  # an offset wins over the zone
    assert (times, reasons) == ([expected], [])


def test_a_zone_abbreviation_is_refused_not_guessed() -> None:
    """CET, IST, EST each name more than one offset somewhere: not guessed."""
    assert _times(["2024-01-01 01:45 CET"]) == ([], ["unparseable ts"])


def test_thousands_grouped_by_spaces_or_apostrophes() -> None:
    """French and Nordic exports group thousands by a space (often a no-break space),
    Swiss ones by an apostrophe: never a decimal mark, so read without asking. Groups
    that are not of three digits are no grouping."""
    records, reasons = _numbers(
        {
            "register_kwh": ["1 234,5", "1\u00a0234,5", "1\u202f234,5", "1'234.5", "12 34"],
            "import_kwh": ["0,5", "1", "2", "3", "4"],
        }
    )
    assert records["register_kwh"].to_list() == [1234.5, 1234.5, 1234.5, 1234.5]
    assert reasons == ["non-numeric register_kwh"]


def test_a_unit_after_a_grouped_or_bare_fraction_reads() -> None:
    records, reasons = _numbers({"import_kwh": ["12 345 Wh", ".5 kWh", "5e-3 kWh"]})
    assert (records["import_kwh"].to_list(), reasons) == ([12.345, 0.5, 0.005], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240101T001500Z", _at(2024, 1, 1, 0, 15)),  # ISO 8601's basic form
        ("20240101T0015+0100", _at(2023, 12, 31, 23, 15)),
        ("01-JAN-2024 00:15:00", _at(2024, 1, 1, 0, 15)),  # Oracle, SAP
        ("01-Jan-2024 00:15", _at(2024, 1, 1, 0, 15)),
        ("1 Jan 2024 00:15", _at(2024, 1, 1, 0, 15)),
        ("15 January 2024 00:15", _at(2024, 1, 15, 0, 15)),
        ("Jan 1, 2024 12:15 AM", _at(2024, 1, 1, 0, 15)),
        ("March 31, 2024 1:45 PM", _at(2024, 3, 31, 13, 45)),
    ],
)
def test_basic_iso_and_month_names(text: str, expected: dt.datetime) -> None:
    assert _times([text]) == ([expected], [])
