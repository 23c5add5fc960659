"""What the baselines answer: the weather's part of a month's change, savings with
ASHRAE 14's uncertainty, and the frames built from readings and weather."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats  # type: ignore[import-untyped]

from metrify.analytics.baselines import DailyModel, combine, month_bounds
from metrify.analytics.baselines.prepare import daily_frame, hourly_frame
from metrify.analytics.baselines.savings import savings
from metrify.analytics.baselines.weather import weather_effect


def model(shift: float | None = None) -> DailyModel:
    """use = 5 + 0.5 x HDD(15 °C) (+ shift at weekends)."""
    return DailyModel("hdd_only", 5.0, 15.0, 0.5, None, None, shift, 365, 2, 0, 0, 0, 0, 6.0)


def month_days(first: dt.date, temp: float, extra: float) -> pl.DataFrame:
    nxt = month_bounds(first.strftime("%Y-%m"))[1]
    days = [first + dt.timedelta(days=i) for i in range((nxt - first).days)]
    use = [5.0 + 0.5 * max(15.0 - temp, 0.0) + extra for _ in days]
    return pl.DataFrame({"day": days, "kwh": use, "temperature_c": [temp] * len(days)})


def test_a_colder_month_is_weather_and_a_new_appliance_is_not() -> None:
    # March at 9 °C against February at 5 °C, with 1 kWh a day of new use in March
    feb = month_days(dt.date(2023, 2, 1), 5.0, 0.0)
    mar = month_days(dt.date(2023, 3, 1), 9.0, 1.0)
    effect = weather_effect(model(), pl.concat([feb, mar]), "2023-03", "2023-02")
    # per day: actual 5 + 3 + 1 = 9 against 5 + 5 = 10; weather 0.5 x (6 - 10) = -2
    assert effect.change_per_day == pytest.approx(-1.0)
    assert effect.weather_per_day == pytest.approx(-2.0)
    assert effect.other_per_day == pytest.approx(1.0)
    assert effect.days == 31
    assert effect.as_dict()["weather_kwh"] == pytest.approx(-62.0)
    two = combine([effect, effect])
    assert two.meters == 2 and two.other_per_day == pytest.approx(2.0)


def test_a_month_against_itself_is_refused() -> None:
    # it answered "weather +0.0, everything else +0.0": zero by construction, not a finding
    mar = month_days(dt.date(2023, 3, 1), 9.0, 1.0)
    with pytest.raises(ValueError, match="is the month itself"):
        weather_effect(model(), mar, "2023-03", "2023-03")


def test_weekend_days_are_calendar_not_weather() -> None:
    # same temperature in both months; use is 2 kWh higher at weekends
    days = [dt.date(2023, 4, 1) + dt.timedelta(days=i) for i in range(61)]  # April, May
    weekend = np.array([d.isoweekday() >= 6 for d in days])
    frame = pl.DataFrame(
        {"day": days, "kwh": 8.0 + 2.0 * weekend, "temperature_c": [10.0] * len(days)}
    )
    effect = weather_effect(model(2.0), frame, "2023-05", "2023-04")
    # April 2023 has 10 weekend days of 30, May 8 of 31
    assert effect.weather_per_day == pytest.approx(0.0)
    assert effect.calendar_per_day == pytest.approx(2.0 * (8 / 31 - 10 / 30))
    assert effect.other_per_day == pytest.approx(0.0, abs=1e-12)


def test_savings_and_their_uncertainty_follow_ashrae_14() -> None:
    rng = np.random.default_rng(1)
    residuals = rng.normal(0.0, 1.0, 200)
    predicted = np.full(100, 10.0)
    actual = np.full(100, 9.0)
    got = savings("daily", residuals, 2, 0.2, predicted, actual)
    assert got.savings_kwh == pytest.approx(100.0)
    assert got.savings_pct == pytest.approx(10.0)
    r = residuals - residuals.mean()
    rho = float(r[1:] @ r[:-1] / (r @ r))
    n_prime = 200 * (1 - rho) / (1 + rho) if rho > 0 else 200.0
    t = stats.t.ppf(0.95, 198)
    want = 1.26 * t * 0.2 * 10.0 * np.sqrt(100 * (200 / n_prime) * (1 + 2 / n_prime))
    assert got.uncertainty_kwh == pytest.approx(want)
    assert got.significant == (want < 100.0)


def test_strongly_autocorrelated_residuals_widen_the_uncertainty() -> None:
    base = np.sin(np.arange(200) / 10.0)  # slow residuals: rho near 1
    noisy = np.random.default_rng(2).normal(0.0, 1.0, 200)
    p, a = np.full(30, 10.0), np.full(30, 9.5)
    assert (
        savings("daily", base, 2, 0.2, p, a).uncertainty_kwh
        > savings("daily", noisy, 2, 0.2, p, a).uncertainty_kwh
    )


def test_frames_are_local_days_and_complete_hours() -> None:
    # London, 31 March 2013: the clocks go forward, a 23-hour day (46 half-hours)
    start = dt.datetime(2013, 3, 30, 0, 0, tzinfo=dt.UTC)
    ts = [start + dt.timedelta(minutes=30 * i) for i in range(48 * 3)]
    usage = pl.DataFrame({"ts": ts, "kwh": [0.5] * len(ts)})
    hourly_ts = [start + dt.timedelta(hours=i) for i in range(72)]
    weather = pl.DataFrame({"ts": hourly_ts, "temperature_c": [float(i % 24) for i in range(72)]})
    days = daily_frame(usage, weather, "Europe/London")
    by_day = dict(zip(days["day"].to_list(), days["kwh"].to_list(), strict=True))
    # local 31 March runs 00:00 UTC to 23:00 UTC: 46 half-hours of 0.5
    assert by_day[dt.date(2013, 3, 31)] == pytest.approx(23.0)
    hours = hourly_frame(usage.filter(pl.col("ts") != ts[5]), weather, "Europe/London")
    # the hour missing a half-hour is left out; hours of the week are local
    assert hours.height == 71
    first = hours.row(0, named=True)
    assert first["tow"] == 5 * 24  # Saturday 00:00 local (GMT on 30 March)
    after = hours.filter(pl.col("ts") == dt.datetime(2013, 3, 31, 12, tzinfo=dt.UTC))
    assert after["tow"][0] == 6 * 24 + 13  # Sunday 13:00 BST


def test_a_split_models_weather_and_calendar_parts_come_from_each_days_segment() -> None:
    """Winter (Nov-Feb): 9 + 0.6 x HDD(12 °C); the rest of the year 5 + 0.3 x HDD(14 °C).
    March (rest) at 8 °C against February (winter) at 4 °C, use exactly on the lines."""
    from metrify.analytics.baselines import DailySegment

    cold = DailySegment((1, 2, 11, 12), "all", "hdd_only", 9.0, 12.0, 0.6, None, None, None, 100)
    mild = DailySegment(
        (3, 4, 5, 6, 7, 8, 9, 10), "all", "hdd_only", 5.0, 14.0, 0.3, None, None, None, 200
    )
    split = DailyModel(
        "hdd_only", 6.0, 15.0, 0.4, None, None, None, 300, 4, 0, 0, 0, 0, 7.0,
        split="winter|rest/week", segments=(cold, mild),
    )  # fmt: skip
    feb = month_days(dt.date(2023, 2, 1), 4.0, 0.0).with_columns(kwh=pl.lit(9.0 + 0.6 * 8.0))
    mar = month_days(dt.date(2023, 3, 1), 8.0, 0.0).with_columns(kwh=pl.lit(5.0 + 0.3 * 6.0))
    effect = weather_effect(split, pl.concat([feb, mar]), "2023-03", "2023-02")
    # per day: weather 0.3 x 6 - 0.6 x 8 = -3.0; calendar (the intercepts) 5 - 9 = -4.0
    assert effect.change_per_day == pytest.approx((5.0 + 1.8) - (9.0 + 4.8))
    assert effect.weather_per_day == pytest.approx(-3.0)
    assert effect.calendar_per_day == pytest.approx(-4.0)
    assert effect.other_per_day == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="month"):
        split.predict(np.array([5.0]), np.array([0]))
