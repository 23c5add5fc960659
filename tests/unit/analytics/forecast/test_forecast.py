"""Forecasts: the right rows, no look-ahead, a model that learns a known shape, many
series at once, and backtest scores checked against a plain recomputation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.forecast import MODELS, QUANTILES, backtest, forecast, forecast_many

from .synthetic import UTC, weekly_series

ISSUE = dt.datetime(2013, 3, 12, 10, tzinfo=UTC)  # 64 days after the start (7 January)


def truth_shape(ts: pl.Series) -> np.ndarray:
    """The noise-free load of :func:`weekly_series` at the given times."""
    slot = (ts.dt.hour() * 2 + ts.dt.minute() // 30).to_numpy()
    weekend = ts.dt.weekday().to_numpy() >= 6
    return 10 + 5 * np.sin(2 * np.pi * (slot - 14) / 48) + np.where(weekend, -3.0, 0.0)


def test_interface_constants() -> None:
    assert QUANTILES == (0.1, 0.5, 0.9)
    assert {"metrify", "seasonal_naive_weekly"} <= set(MODELS)


def test_naive_is_last_week_and_covers_the_next_day() -> None:
    history = weekly_series(70, noise=0.3)
    out = forecast(history, issue=ISSUE, tz="UTC", model="seasonal_naive_weekly")
    assert out.columns == ["issued_at", "target_ts", "p10", "p50", "p90", "model"]
    assert out.height == 48
    assert out["target_ts"][0] == dt.datetime(2013, 3, 13, tzinfo=UTC)
    assert (out["issued_at"] == ISSUE).all()
    week_before = history.with_columns(pl.col("ts") + dt.timedelta(days=7))
    joined = out.join(week_before, left_on="target_ts", right_on="ts")
    assert joined.height == 48
    np.testing.assert_allclose(joined["p50"].to_numpy(), joined["value"].to_numpy())
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()


@pytest.mark.parametrize("model", ["metrify", "seasonal_naive_weekly", "lightgbm_linear"])
def test_no_future_data_leaks(model: str) -> None:
    """Corrupting everything at or after the issue time leaves the forecast unchanged."""
    history = weekly_series(80, noise=0.3)
    weather = history.select("ts", (pl.col("value") * 0.5).alias("temperature_c"))
    after = pl.col("ts") >= ISSUE
    bad_history = history.with_columns(
        pl.when(after).then(pl.col("value") * 50 + 7).otherwise(pl.col("value"))
    )
    bad_weather = weather.with_columns(pl.when(after).then(99.0).otherwise(pl.col("temperature_c")))
    kw = {"issue": ISSUE, "tz": "UTC", "model": model, "train_days": 40}
    clean = forecast(history, weather=weather, **kw)  # type: ignore[arg-type]
    dirty = forecast(bad_history, weather=bad_weather, **kw)  # type: ignore[arg-type]
    assert clean.equals(dirty)


def test_backtest_does_not_look_ahead() -> None:
    """The backtest keeps the whole series in memory: its forecasts for the days up to
    D must not change when everything from D's issue time on is corrupted."""
    history = weekly_series(84, noise=0.3)
    end = dt.date(2013, 3, 20)
    issue_of_end = dt.datetime(2013, 3, 19, 10, tzinfo=UTC)
    dirty = history.with_columns(
        pl.when(pl.col("ts") >= issue_of_end).then(pl.col("value") * 50).otherwise(pl.col("value"))
    )
    kw = {
        "start": dt.date(2013, 3, 8),
        "end": end,
        "tz": "UTC",
        "models": ["metrify", "seasonal_naive_weekly"],
        "train_days": 40,
    }
    clean_scores = backtest(history, **kw)  # type: ignore[arg-type]
    dirty_scores = backtest(dirty, **kw)  # type: ignore[arg-type]
    cols = ["issued_at", "target_ts", "p10", "p50", "p90"]
    for a, b in zip(clean_scores, dirty_scores, strict=True):
        assert a.forecasts.height == 13 * 48
        assert a.forecasts.select(cols).equals(b.forecasts.select(cols))


def test_lightgbm_learns_the_daily_and_weekly_shape() -> None:
    history = weekly_series(70, noise=0.3)
    out = forecast(history, issue=ISSUE, tz="UTC", model="metrify")
    assert out["model"].unique().to_list() == ["metrify"]
    err = np.abs(out["p50"].to_numpy() - truth_shape(out["target_ts"]))
    # the noise is N(0, 0.3): a model that learned the shape is far inside 0.5 on average
    assert err.mean() < 0.3, err.mean()
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    width = (out["p90"] - out["p10"]).mean()
    # an 80% band of N(0, 0.3) noise is 2 * 1.2816 * 0.3 = 0.77 wide; allow for estimation
    assert 0.3 < width < 1.6, width  # type: ignore[operator]


def test_forecast_many_one_model_scale_free_and_failures_reported() -> None:
    base = weekly_series(70, noise=0.3, seed=3)
    frames = {
        "small": base,
        "big": base.with_columns(pl.col("value") * 100),
        "irregular": base.with_columns(
            pl.col("ts") + pl.int_range(pl.len()).cast(pl.Duration("us")) * 7
        ),
        "stale": base.filter(pl.col("ts") < dt.datetime(2013, 2, 1, tzinfo=UTC)),
    }
    many = forecast_many(frames, issue=ISSUE, tz="UTC")
    assert set(many.failed) == {"irregular", "stale"}
    assert "7 days before" in many.failed["stale"]
    out = many.forecasts
    assert out.columns == ["series_id", "issued_at", "target_ts", "p10", "p50", "p90", "model"]
    assert out.group_by("series_id").len().sort("series_id").rows() == [("big", 48), ("small", 48)]
    small = out.filter(pl.col("series_id") == "small").sort("target_ts")
    big = out.filter(pl.col("series_id") == "big").sort("target_ts")
    # the features are divided by the series' own level, so 100x the load gives 100x the
    # forecast (up to the one size feature, log10 of the level, which trees may split on)
    np.testing.assert_allclose(big["p50"].to_numpy(), 100 * small["p50"].to_numpy(), rtol=0.01)


def test_backtest_naive_scores_match_a_plain_recomputation() -> None:
    history = weekly_series(60, noise=0.5, seed=7)
    start, end = dt.date(2013, 2, 20), dt.date(2013, 3, 7)
    (naive,) = backtest(history, start=start, end=end, tz="UTC", models=["seasonal_naive_weekly"])
    v = history["value"].to_numpy()
    ts = history["ts"]
    lagged = np.concatenate([np.full(336, np.nan), v[:-336]])
    day = ts.dt.date().to_numpy()
    test = (day >= np.datetime64(start)) & (day <= np.datetime64(end))
    before = (day < np.datetime64(start)) & np.isfinite(lagged)
    err = np.abs(v[test] - lagged[test])
    assert naive.n == test.sum() == 16 * 48
    assert naive.mae == pytest.approx(err.mean())
    assert naive.mape == pytest.approx(100 * np.mean(err / np.abs(v[test])))
    assert naive.mase == pytest.approx(err.mean() / np.abs(v[before] - lagged[before]).mean())
    assert naive.rmae == pytest.approx(1.0)


def test_intraday_covers_the_next_six_hours() -> None:
    history = weekly_series(40, noise=0.3)
    issue = dt.datetime(2013, 2, 14, 7, 10, tzinfo=UTC)  # between two interval starts
    out = forecast(history, issue=issue, horizon="intraday", tz="UTC", train_days=20)
    # 07:30 .. 13:00: the intervals starting after the issue time and before issue + 6 h
    assert out["target_ts"].to_list() == [
        dt.datetime(2013, 2, 14, 7, 30, tzinfo=UTC) + dt.timedelta(minutes=30 * i)
        for i in range(12)
    ]
    err = np.abs(out["p50"].to_numpy() - truth_shape(out["target_ts"]))
    assert err.mean() < 0.4, err.mean()


def test_unknown_model_and_horizon_are_refused() -> None:
    history = weekly_series(30)
    with pytest.raises(ValueError, match="unknown model"):
        forecast(history, issue=ISSUE, model="prophet")
    with pytest.raises(ValueError, match="horizon must be one of"):
        forecast(history, issue=ISSUE, horizon="week-ahead")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time-zone-aware"):
        forecast(history, issue=ISSUE.replace(tzinfo=None))


def test_an_interval_still_running_at_issue_time_is_not_used() -> None:
    history = weekly_series(40, noise=0.3)
    issue = dt.datetime(2013, 2, 14, 10, 10, tzinfo=UTC)
    running = dt.datetime(2013, 2, 14, 10, 0, tzinfo=UTC)  # ends at 10:30, after the issue
    dirty = history.with_columns(
        pl.when(pl.col("ts") >= running).then(pl.col("value") * 50).otherwise(pl.col("value"))
    )
    kw = {"issue": issue, "tz": "UTC", "horizon": "intraday", "train_days": 20}
    assert forecast(history, **kw).equals(forecast(dirty, **kw))  # type: ignore[arg-type]
