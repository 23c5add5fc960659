"""A report's month: local midnights in its zone, its real length across clock changes,
and one-line refusals of anything that is not a month."""

from __future__ import annotations

import datetime as dt

import pytest

from metrify.reports import BadReportQuery, parse_month, report_format


def test_a_month_is_local_midnight_to_local_midnight() -> None:
    june = parse_month("2013-06", "Europe/London")
    assert june.start == dt.datetime(2013, 5, 31, 23, tzinfo=dt.UTC)  # BST
    assert june.end == dt.datetime(2013, 6, 30, 23, tzinfo=dt.UTC)
    assert (june.first, june.after) == (dt.date(2013, 6, 1), dt.date(2013, 7, 1))
    december = parse_month("2013-12", "UTC")
    assert december.after == dt.date(2014, 1, 1)
    assert december.hours == 31 * 24


def test_clock_changes_make_a_month_an_hour_shorter_or_longer() -> None:
    assert parse_month("2013-03", "Europe/London").hours == 31 * 24 - 1
    assert parse_month("2013-10", "Europe/London").hours == 31 * 24 + 1


@pytest.mark.parametrize("text", ["2013-13", "2013-00", "2013-6", "June", "2013-06-01", ""])
def test_anything_but_a_month_is_refused(text: str) -> None:
    with pytest.raises(BadReportQuery, match="expected a month like 2013-06"):
        parse_month(text, "UTC")


def test_unknown_zone_and_suffix_are_refused() -> None:
    with pytest.raises(BadReportQuery, match="unknown time zone"):
        parse_month("2013-06", "Mars/Olympus")
    from pathlib import Path

    assert report_format(Path("june.PDF")) == "pdf"
    assert report_format(Path("june.html")) == "html"
    with pytest.raises(BadReportQuery, match=r"\.pdf or \.html"):
        report_format(Path("june.docx"))
