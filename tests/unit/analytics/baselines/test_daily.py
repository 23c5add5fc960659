"""The daily model's balance-point search recovers a known balance point and slopes,
and chooses the candidate the data support."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.baselines import fit_daily

START = dt.date(2023, 1, 2)  # a Monday


def year(use: np.ndarray, temps: np.ndarray) -> pl.DataFrame:
    days = [START + dt.timedelta(days=i) for i in range(temps.size)]
    return pl.DataFrame({"day": days, "kwh": use, "temperature_c": temps})


def temperatures(n: int = 365, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    season = 11.0 - 9.0 * np.cos(2 * np.pi * np.arange(n) / 365.0)
    return season + rng.normal(0.0, 3.0, n)


def test_heating_and_cooling_balance_points_and_slopes_are_recovered() -> None:
    t = temperatures()
    rng = np.random.default_rng(2)
    # 6 kWh a day, 0.8 kWh per degree below 15.5 °C, 1.2 per degree above 21 °C
    use = 6.0 + 0.8 * np.maximum(15.5 - t, 0) + 1.2 * np.maximum(t - 21.0, 0)
    use += rng.normal(0.0, 0.3, t.size)
    model = fit_daily(year(use, t), weekend=False)
    assert model.kind == "hdd_cdd"
    assert model.heating_balance_c == pytest.approx(15.5, abs=0.5)
    assert model.cooling_balance_c == pytest.approx(21.0, abs=0.5)
    assert model.heating_slope == pytest.approx(0.8, abs=0.05)
    assert model.cooling_slope == pytest.approx(1.2, abs=0.15)
    assert model.intercept == pytest.approx(6.0, abs=0.3)
    assert model.p == 3
    assert model.weekend_shift is None


def test_heating_only_use_gives_the_heating_model() -> None:
    t = temperatures(seed=3)
    use = 4.0 + 0.5 * np.maximum(14.0 - t, 0.0)
    use += np.random.default_rng(4).normal(0.0, 0.05, t.size)
    model = fit_daily(year(use, t), weekend=False)
    assert model.kind == "hdd_only"
    assert model.heating_balance_c == pytest.approx(14.0, abs=0.5)
    assert model.heating_slope == pytest.approx(0.5, abs=0.02)
    assert model.intercept == pytest.approx(4.0, abs=0.1)
    residuals = use - model.predict(t, np.zeros(t.size))
    # CV(RMSE) over n - p with p = 2, computed here from the residuals
    assert model.cvrmse == pytest.approx(
        float(np.sqrt((residuals**2).sum() / (t.size - 2)) / use.mean())
    )


def test_use_that_ignores_the_weather_is_mostly_intercept_only() -> None:
    """Over many balance points some pair is significant by chance now and then (the
    search's multiple comparisons); most noise years stay intercept-only, and none
    explains more than a sliver of the variance."""
    kinds = []
    for seed in range(10, 20):
        t = temperatures(seed=seed)
        use = 7.0 + np.random.default_rng(seed + 100).normal(0.0, 0.5, t.size)
        model = fit_daily(year(use, t), weekend=False)
        kinds.append(model.kind)
        assert model.r2_adj < 0.05
        if model.kind == "intercept_only":
            assert model.intercept == pytest.approx(float(use.mean()))
            # CV(RMSE) over n - 1: the standard deviation of use over its mean
            assert model.cvrmse == pytest.approx(float(use.std(ddof=1) / use.mean()))
    assert kinds.count("intercept_only") >= 7


def test_a_weekend_shift_is_found_when_the_household_has_one() -> None:
    t = temperatures(seed=6)
    frame = year(np.zeros(t.size), t)
    weekend = (frame["day"].dt.weekday() >= 6).to_numpy()
    use = 5.0 + 0.6 * np.maximum(16.0 - t, 0.0) + 2.0 * weekend
    use += np.random.default_rng(7).normal(0.0, 0.3, t.size)
    # the whole-year model alone (split=False): its weekend term is what is tested here
    model = fit_daily(frame.with_columns(kwh=pl.Series(use)), split=False)
    assert model.kind == "hdd_only"
    assert model.weekend_shift == pytest.approx(2.0, abs=0.15)
    assert model.heating_balance_c == pytest.approx(16.0, abs=0.5)
    assert model.p == 3
    strict = fit_daily(frame.with_columns(kwh=pl.Series(use)), weekend=False)
    assert strict.weekend_shift is None
    assert strict.cvrmse > model.cvrmse


def test_too_few_days_is_an_error() -> None:
    t = temperatures(10)
    with pytest.raises(ValueError, match="at least"):
        fit_daily(year(np.ones(10), t))


def winter(days: pl.DataFrame) -> np.ndarray:
    return days["day"].dt.month().is_in([1, 2, 11, 12]).to_numpy()


def seasonal_household(seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Two years of days: in winter (November to February) 8 kWh a day and 0.8 kWh
    per degree below 7 °C (a storage heater that comes on in frost); the rest of the
    year 5 kWh and 0.3 per degree below 13 °C. Returns the frame and its winter flags."""
    t = temperatures(730, seed=seed)
    frame = year(np.zeros(t.size), t)
    cold = winter(frame)
    use = np.where(
        cold, 8.0 + 0.8 * np.maximum(7.0 - t, 0.0), 5.0 + 0.3 * np.maximum(13.0 - t, 0.0)
    )
    use += np.random.default_rng(seed + 50).normal(0.0, 0.4, t.size)
    return frame.with_columns(kwh=pl.Series(use)), cold


def test_a_season_dependent_balance_point_is_recovered_by_the_split() -> None:
    frame, _ = seasonal_household(seed=21)
    first, second = frame.head(365), frame.tail(365)
    model = fit_daily(first)
    assert model.is_split and model.split.split("/")[0] in ("winter|rest", "seasons")
    jan = next(s for s in model.segments if 1 in s.months)
    jul = next(s for s in model.segments if 7 in s.months)
    assert jan.kind == "hdd_only" and jan.heating_balance_c == pytest.approx(7.0, abs=1.0)
    assert jan.heating_slope == pytest.approx(0.8, abs=0.1)
    assert jan.intercept == pytest.approx(8.0, abs=0.6)
    # no November-to-February day in the July segment; its line is the milder one
    assert not set(jul.months) & {1, 2, 11, 12}
    if jul.heating_balance_c is not None:
        assert jul.heating_balance_c == pytest.approx(13.0, abs=1.5)
        assert jul.heating_slope == pytest.approx(0.3, abs=0.1)
    # the next year, which neither model saw: the split predicts it better than the
    # whole-year line, whose single balance point fits neither season
    y = second["kwh"].to_numpy()
    rmse = {
        name: float(np.sqrt(np.mean((y - m.predict_days(second)) ** 2)))
        for name, m in (("split", model), ("unsplit", fit_daily(first, split=False)))
    }
    assert rmse["split"] < 0.8 * rmse["unsplit"]
    # the noise is 0.4 kWh a day: the split model's error is close to it
    assert rmse["split"] < 0.55
    # predictions are each day's own segment's line, written out here
    t, month = second["temperature_c"].to_numpy(), second["day"].dt.month().to_numpy()
    weekend = (second["day"].dt.weekday() >= 6).to_numpy()
    by_hand = np.empty(t.size)
    for seg in model.segments:
        rows = np.isin(month, seg.months)
        if seg.days != "all":
            rows &= weekend == (seg.days == "weekend")
        line = seg.intercept + (seg.weekend_shift or 0.0) * weekend[rows]
        if seg.heating_slope is not None:
            line = line + seg.heating_slope * np.maximum(seg.heating_balance_c - t[rows], 0.0)
        if seg.cooling_slope is not None:
            line = line + seg.cooling_slope * np.maximum(t[rows] - seg.cooling_balance_c, 0.0)
        by_hand[rows] = line
    assert np.allclose(model.predict_days(second), by_hand)


def test_a_household_without_seasons_is_seldom_cut_and_loses_little_when_it_is() -> None:
    """The cross-validation guard: use that follows one line all year is cut by season
    in at most 2 of 10 years (a cut that wins by chance), and a chance cut predicts the
    next year within 3 % of the whole-year model's error."""
    cuts = 0
    for seed in range(30, 40):
        t = temperatures(730, seed=seed)
        use = 5.0 + 0.6 * np.maximum(15.0 - t, 0.0)
        use += np.random.default_rng(seed + 1).normal(0.0, 0.4, t.size)
        frame = year(use, t)
        first, second = frame.head(365), frame.tail(365)
        model = fit_daily(first)
        cuts += model.split.split("/")[0] != "year"
        y = second["kwh"].to_numpy()
        err = np.sqrt(np.mean((y - model.predict_days(second)) ** 2))
        plain = np.sqrt(np.mean((y - fit_daily(first, split=False).predict_days(second)) ** 2))
        assert err <= 1.03 * plain, (seed, model.split)
    assert cuts <= 2


def test_a_short_baseline_is_never_split_by_season() -> None:
    frame, _ = seasonal_household(seed=22)
    model = fit_daily(frame.head(200))
    assert model.split.split("/")[0] == "year"
    assert not fit_daily(frame.head(365), weekend=False).is_split
