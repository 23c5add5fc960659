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
    model = fit_daily(frame.with_columns(kwh=pl.Series(use)))
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
