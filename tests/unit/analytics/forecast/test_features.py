"""The features a forecast may use: nothing from the target day (or anything after the
issue time) reaches them, and a public holiday is read as a Sunday in the target's and
in the lags' day types."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.forecast import forecast, forecast_many
from metrify.analytics.forecast.engine import _prepare, _targets
from metrify.analytics.forecast.features import design
from metrify.analytics.forecast.series import panel_from_frames

from .synthetic import UTC, weekly_series


def _rows(history: pl.DataFrame, issue: dt.datetime) -> tuple[np.ndarray, tuple[str, ...]]:
    """The feature rows of the day-ahead forecast issued at ``issue`` (GB holidays)."""
    panel = panel_from_frames({"s": history})
    setup = _prepare(panel, [issue], "day-ahead", None, "GB", "UTC", 6)
    k = setup.panel.available(issue)
    rows = design(setup.panel, setup.cal, None, [k], [_targets(setup, issue)])
    return rows.x, rows.names


def test_feature_rows_ignore_the_target_day_and_everything_after_issue() -> None:
    history = weekly_series(70, noise=0.3)
    issue = dt.datetime(2013, 3, 12, 10, tzinfo=UTC)
    target_day = pl.col("ts") >= dt.datetime(2013, 3, 13, tzinfo=UTC)
    after_issue = pl.col("ts") >= issue
    altered = {
        "target day": history.with_columns(
            pl.when(target_day).then(pl.col("value") * 40 - 3).otherwise(pl.col("value"))
        ),
        "from issue on": history.with_columns(
            pl.when(after_issue).then(-pl.col("value")).otherwise(pl.col("value"))
        ),
    }
    clean, names = _rows(history, issue)
    assert clean.shape == (48, len(names))
    for label, dirty_history in altered.items():
        dirty, _ = _rows(dirty_history, issue)
        np.testing.assert_array_equal(clean, dirty, err_msg=label)
    # and the rows do carry the history: altering the day before issue changes them
    before = history.with_columns(
        pl.when((pl.col("ts") < issue) & (pl.col("ts") >= issue - dt.timedelta(days=1)))
        .then(pl.col("value") * 2)
        .otherwise(pl.col("value"))
    )
    assert not np.array_equal(clean, _rows(before, issue)[0], equal_nan=True)


def test_a_holiday_counts_as_a_sunday_in_the_day_types() -> None:
    # 6 May 2013 was the Early May bank holiday in England (a Monday)
    history = weekly_series(140, start=dt.datetime(2013, 1, 7, tzinfo=UTC))
    cols = ("dow", "day_type", "week_lag_day_type", "recent_day_type")

    def day_types(issue: dt.datetime) -> dict[str, set[float]]:
        x, names = _rows(history, issue)
        return {c: set(x[:, names.index(c)].tolist()) for c in cols}

    # target Monday 6 May (the holiday); its week lag is Monday 29 April; the latest day
    # known at 10:00 on Sunday 5 May is Saturday 4 May (or Sunday 5 May before 09:30)
    on_holiday = day_types(dt.datetime(2013, 5, 5, 10, tzinfo=UTC))
    assert on_holiday["dow"] == {1.0}
    assert on_holiday["day_type"] == {7.0}
    assert on_holiday["week_lag_day_type"] == {1.0}
    assert on_holiday["recent_day_type"] == {6.0, 7.0}
    # target Monday 13 May: an ordinary Monday whose week lag is the holiday
    week_after = day_types(dt.datetime(2013, 5, 12, 10, tzinfo=UTC))
    assert week_after["day_type"] == {1.0}
    assert week_after["week_lag_day_type"] == {7.0}
    # target Tuesday 7 May: the latest day known at issue (before 09:30) is the holiday
    day_after = day_types(dt.datetime(2013, 5, 6, 10, tzinfo=UTC))
    assert day_after["day_type"] == {2.0}
    assert 7.0 in day_after["recent_day_type"]


def test_one_series_forecasts_the_mean_and_the_fast_path_the_median() -> None:
    """With skewed noise (exponential: mean 1, median ln 2 = 0.69) one series' P50 (squared
    error, the aggregate's point forecast) sits near the shape + 1, the many-meter fast
    path's P50 (pinball at 0.5) near the shape + 0.69."""
    history = weekly_series(70)
    rng = np.random.default_rng(7)
    noisy = history.with_columns(pl.col("value") + rng.exponential(1.0, history.height))
    issue = dt.datetime(2013, 3, 12, 10, tzinfo=UTC)
    truth = history.rename({"value": "truth"})
    one = forecast(noisy, issue=issue, tz="UTC", train_days=50).join(
        truth, left_on="target_ts", right_on="ts"
    )
    many = forecast_many({"a": noisy}, issue=issue, tz="UTC", train_days=50).forecasts.join(
        truth, left_on="target_ts", right_on="ts"
    )
    mean_offset = float((one["p50"] - one["truth"]).mean())  # type: ignore[arg-type]
    median_offset = float((many["p50"] - many["truth"]).mean())  # type: ignore[arg-type]
    # the mean of a tree model on exponential noise is itself noisy (0.89 and 1.18 on two
    # seeds), the median steady (0.70 and 0.72): a P50 fitted as the median would fail
    assert 0.8 < mean_offset < 1.3, mean_offset
    assert np.log(2) - 0.1 < median_offset < np.log(2) + 0.1, median_offset
    assert mean_offset > median_offset + 0.1
    assert (one["p10"] <= one["p50"]).all() and (one["p50"] <= one["p90"]).all()


def test_an_unknown_center_is_refused() -> None:
    history = weekly_series(30)
    issue = dt.datetime(2013, 2, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="center must be one of mean, median"):
        forecast(history, issue=issue, tz="UTC", center="mode")
