"""The hourly TOWT model: time-of-week coefficients and temperature slopes recovered
from synthetic hours, occupancy from the residuals, CalTRACK's bin merging."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.baselines import fit_hourly
from metrify.analytics.baselines.hourly import BIN_EDGES_C, bin_edges, temperature_terms


def hours(n_days: int = 364, seed: int = 1) -> pl.DataFrame:
    """Hourly rows from Monday 2 January 2023 (UTC, read as local time), with a
    seasonal and daily temperature cycle."""
    rng = np.random.default_rng(seed)
    n = n_days * 24
    i = np.arange(n)
    t = 11.0 - 9.0 * np.cos(2 * np.pi * i / (365 * 24)) + 4.0 * np.sin(2 * np.pi * i / 24)
    t = t + rng.normal(0.0, 1.0, n)
    start = dt.datetime(2023, 1, 2)
    ts = [start + dt.timedelta(hours=int(k)) for k in i]
    return pl.DataFrame(
        {
            "ts": ts,
            "temperature_c": t,
            "tow": (i % 168).astype(np.int16),
            "month": [x.month for x in ts],
        }
    )


def test_a_weekly_profile_and_a_heating_slope_are_recovered() -> None:
    frame = hours()
    tow = frame["tow"].to_numpy()
    t = frame["temperature_c"].to_numpy()
    profile = 0.3 + 0.4 * ((tow % 24 >= 17) & (tow % 24 < 22)) + 0.1 * (tow >= 120)
    use = profile + 0.05 * np.maximum(12.78 - t, 0.0)  # heating below 55 °F
    model = fit_hourly(frame.with_columns(kwh=pl.Series(use)), segmentation="all")
    predicted = model.predict(frame)
    assert np.allclose(predicted, use, atol=1e-6)
    assert model.cvrmse == pytest.approx(0.0, abs=1e-6)
    # the time-of-week coefficients carry the profile where the temperature term is 0
    assert model.n == frame.height


def test_segmented_model_fits_a_seasonal_change_of_profile() -> None:
    frame = hours(seed=2)
    tow = frame["tow"].to_numpy()
    month = frame["month"].to_numpy()
    rng = np.random.default_rng(3)
    # winter evenings use more than summer evenings: one profile cannot fit both
    evening = (tow % 24 >= 17) & (tow % 24 < 22)
    use = 0.3 + evening * np.where((month <= 3) | (month >= 11), 0.8, 0.2)
    use = use + rng.normal(0.0, 0.02, use.size)
    frame = frame.with_columns(kwh=pl.Series(use))
    whole = fit_hourly(frame, segmentation="all")
    monthly = fit_hourly(frame)
    assert sorted(monthly.months) == list(range(1, 13))
    assert monthly.cvrmse < 0.7 * whole.cvrmse


def test_occupied_hours_are_those_using_more_than_the_weather_explains() -> None:
    frame = hours(seed=4)
    tow = frame["tow"].to_numpy()
    busy = (tow % 24 >= 8) & (tow % 24 < 18) & (tow < 120)  # weekday office hours
    use = 0.2 + 1.0 * busy + np.random.default_rng(5).normal(0.0, 0.01, tow.size)
    model = fit_hourly(frame.with_columns(kwh=pl.Series(use)), segmentation="all")
    expected = np.array([(h % 24 >= 8) & (h % 24 < 18) & (h < 120) for h in range(168)])
    assert (model.occupied == expected).all()


def test_bins_with_too_few_hours_are_merged() -> None:
    # nothing above 20 °C: the bins at 23.89 and 32.22 °C hold no hours and go
    temps = np.linspace(-5.0, 20.0, 1000)
    edges = bin_edges(temps)
    assert edges == list(BIN_EDGES_C[:4])
    # the piecewise terms add back up to the temperature
    terms = temperature_terms(temps, edges)
    assert np.allclose(terms.sum(axis=1), temps)


def test_too_few_hours_is_an_error() -> None:
    frame = hours(n_days=3).with_columns(kwh=pl.lit(1.0))
    with pytest.raises(ValueError, match="at least"):
        fit_hourly(frame)


def test_shrunk_monthly_corrections_keep_what_the_months_share_and_their_own_level() -> None:
    """A household with one weekly profile all year and a month-by-month level (the
    months differ by a constant); noisy hours. The shrunk model keeps each month's
    level (unpenalised) and pulls the month's hour-of-week noise towards the year's
    profile, so it predicts a second year of the same household better than CalTRACK's
    month-by-month models, which fit each month's noise."""
    frame = hours(n_days=728, seed=8)
    tow, month = frame["tow"].to_numpy(), frame["month"].to_numpy()
    profile = 0.3 + 0.5 * ((tow % 24 >= 17) & (tow % 24 < 22))
    level = 0.05 * month
    truth = profile + level
    rng = np.random.default_rng(9)
    use = truth + rng.normal(0.0, 0.4, truth.size)
    frame = frame.with_columns(kwh=pl.Series(use), truth=pl.Series(truth))
    first, second = frame.head(364 * 24), frame.tail(364 * 24)
    shrunk = fit_hourly(first)
    plain = fit_hourly(first, shrink=False)
    assert shrunk.shrinkage is not None and plain.shrinkage is None
    assert set(shrunk.shrinkage) == set(range(1, 13))
    # against the noise-free truth of the unseen year
    want = second["truth"].to_numpy()
    err = {
        name: float(np.sqrt(np.mean((m.predict(second) - want) ** 2)))
        for name, m in (("shrunk", shrunk), ("plain", plain))
    }
    assert err["shrunk"] < 0.8 * err["plain"]
    # the months' levels survive the shrinkage. Each month's segment is fitted on its
    # three-month window (neighbours at weight 0.5), so its level is the window's:
    # July (0.5 x 0.30 + 0.35 + 0.5 x 0.40) / 2 = 0.35, January (0.5 x 0.60 + 0.05 +
    # 0.5 x 0.10) / 2 = 0.20 above the profile: July is 0.15 kWh above January
    jan, jul = second["month"].to_numpy() == 1, second["month"].to_numpy() == 7
    got = shrunk.predict(second)
    assert got[jul].mean() - got[jan].mean() == pytest.approx(0.15, abs=0.03)
