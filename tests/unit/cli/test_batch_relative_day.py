"""``metrify batch run --date yesterday|today``: the UTC day a Kubernetes CronJob (which
cannot template a date into its arguments) means."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from metrify.cli.batch import _day
from metrify.cli.common import UserError


def _utc_today() -> dt.date:
    now = time.gmtime()
    return dt.date(now.tm_year, now.tm_mon, now.tm_mday)


@pytest.mark.parametrize(("word", "back"), [("yesterday", 1), ("today", 0), (" Yesterday ", 1)])
def test_relative_days_are_utc_days(word: str, back: int) -> None:
    before = _utc_today()
    got = _day(word, "--date")
    after = _utc_today()  # a test that runs across midnight sees either day
    assert got in {before - dt.timedelta(days=back), after - dt.timedelta(days=back)}


def test_a_day_and_a_bad_word() -> None:
    assert _day("2013-03-01", "--date") == dt.date(2013, 3, 1)
    with pytest.raises(UserError, match="yesterday or today"):
        _day("tomorrow", "--date")
