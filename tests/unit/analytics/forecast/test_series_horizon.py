"""Histories are checked and laid on a grid; horizons cover the intervals they promise."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.forecast import BadSeries, forecast
from metrify.analytics.forecast.horizon import backtest_issues, target_window
from metrify.analytics.forecast.series import panel_from_frames

from .synthetic import UTC, weekly_series


def test_gaps_become_nan_and_step_is_inferred() -> None:
    frame = weekly_series(3).filter(pl.int_range(pl.len()) != 5)
    panel = panel_from_frames({"a": frame})
    assert panel.step_s == 1800
    assert panel.n == 3 * 48
    assert np.isnan(panel.values[0, 5])
    assert np.isfinite(np.delete(panel.values[0], 5)).all()


def test_naive_timestamps_are_utc_and_other_zones_are_converted() -> None:
    frame = weekly_series(2)
    naive = frame.with_columns(pl.col("ts").dt.replace_time_zone(None))
    paris = frame.with_columns(pl.col("ts").dt.convert_time_zone("Europe/Paris"))
    for other in (naive, paris):
        panel = panel_from_frames({"a": other})
        assert panel.t0 == frame["ts"][0]
        np.testing.assert_array_equal(panel.values[0], frame["value"].to_numpy())


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"ts": [1, 2], "value": [1.0, 2.0]}), "must be a Datetime"),
        (pl.DataFrame({"time": [dt.datetime(2013, 1, 1)], "value": [1.0]}), "lacks column"),
        (
            pl.DataFrame(
                {"ts": [dt.datetime(2013, 1, 1, 0, m) for m in (0, 7, 14, 21)], "value": [1.0] * 4}
            ),
            "does not divide the day",
        ),
        (
            pl.DataFrame(
                {
                    "ts": [
                        dt.datetime(2013, 1, 1, 0, 0),
                        dt.datetime(2013, 1, 1, 0, 30),
                        dt.datetime(2013, 1, 1, 1, 0),
                        dt.datetime(2013, 1, 1, 1, 40),
                    ],
                    "value": [1.0] * 4,
                }
            ),
            "off the 1800 s grid",
        ),
    ],
)
def test_bad_series_say_what_is_wrong(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(BadSeries, match=message):
        panel_from_frames({"a": frame})


def test_too_short_history_is_refused_clearly() -> None:
    short = weekly_series(5)
    with pytest.raises(BadSeries, match="at least 7 days"):
        forecast(
            short, issue=dt.datetime(2013, 1, 12, 10, tzinfo=UTC), model="seasonal_naive_weekly"
        )
    assert issubclass(BadSeries, ValueError)


def test_day_ahead_covers_the_next_local_day_including_dst() -> None:
    # issued 10:00 London on Sat 30 March 2013: Sunday 31 March has 23 hours (46 half-hours)
    issue = dt.datetime(2013, 3, 30, 10, tzinfo=UTC)
    start, end = target_window(issue, "day-ahead", "Europe/London")
    assert start == dt.datetime(2013, 3, 31, 0, tzinfo=UTC)
    assert end == dt.datetime(2013, 3, 31, 23, tzinfo=UTC)  # 00:00 BST on 1 April
    # the autumn change: 25 hours
    start, end = target_window(
        dt.datetime(2013, 10, 26, 9, tzinfo=UTC), "day-ahead", "Europe/London"
    )
    assert (end - start) == dt.timedelta(hours=25)
    # intraday: the next 6 hours from the issue time
    start, end = target_window(issue, "intraday", "Europe/London")
    assert (start, end) == (issue, issue + dt.timedelta(hours=6))


def test_backtest_issues_at_ten_local_the_day_before() -> None:
    issues = backtest_issues(dt.date(2013, 7, 1), dt.date(2013, 7, 2), "day-ahead", "Europe/London")
    # 10:00 BST is 09:00 UTC, on the day before each target day
    assert issues == [
        dt.datetime(2013, 6, 30, 9, tzinfo=UTC),
        dt.datetime(2013, 7, 1, 9, tzinfo=UTC),
    ]
    intraday = backtest_issues(dt.date(2013, 1, 2), dt.date(2013, 1, 2), "intraday", "UTC")
    assert [i.hour for i in intraday] == [0, 6, 12, 18]
