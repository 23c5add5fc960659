"""The mean P50 of one aggregate series: a ridge per interval of the day, LightGBM per
daypart, and their blend."""

from __future__ import annotations

import numpy as np
import pytest

from metrify.analytics.forecast.models import (
    BASE_PARAMS,
    DAYPARTS,
    MeanBlend,
    SlotRidge,
)

NAMES = (
    "slot",
    "day_type",
    "doy",
    "holiday_near",
    "mean24",
    "mean24_week_before",
    "recent_days_back",
    "week_lag",
    "recent_same_slot",
    "week_lag_adjusted",
)


def _rows(days: int, seed: int) -> np.ndarray:
    """Feature rows of ``days`` days of half-hours, in the columns of :data:`NAMES`."""
    rng = np.random.default_rng(seed)
    n = days * 48
    cols = {
        "slot": np.tile(np.arange(48.0), days),
        "day_type": np.repeat(rng.integers(1, 8, days), 48).astype(float),
        "doy": np.repeat(rng.integers(1, 366, days), 48).astype(float),
        "holiday_near": np.zeros(n),
        "mean24": rng.normal(1.0, 0.05, n),
        "mean24_week_before": rng.normal(1.0, 0.05, n),
        "recent_days_back": np.ones(n),
        "week_lag": rng.uniform(0.6, 1.4, n),
        "recent_same_slot": rng.uniform(0.6, 1.4, n),
        "week_lag_adjusted": rng.uniform(0.6, 1.4, n),
    }
    return np.stack([cols[c] for c in NAMES], axis=1)


def test_slot_ridge_fits_each_interval_its_own_line() -> None:
    rng = np.random.default_rng(3)
    slot = np.repeat([0.0, 1.0, 2.0], 400)
    x = rng.normal(0.0, 1.0, (slot.size, 2))
    slope, shift = np.array([2.0, -1.0, 0.5]), np.array([10.0, 20.0, 30.0])
    s = slot.astype(int)
    y = slope[s] * x[:, 0] + shift[s]  # the second input is noise the model should ignore
    ridge = SlotRidge().fit(x, y, slot)
    new_x = np.array([[1.0, 5.0], [-2.0, -5.0], [3.0, 0.0], [0.0, 0.0]])
    new_slot = np.array([0.0, 1.0, 2.0, 7.0])  # slot 7 never seen in training
    got = ridge.predict(new_x, new_slot)
    # by hand: 2*1 + 10, -1*-2 + 20, 0.5*3 + 30 (a ridge penalty of 1 on 400 rows shrinks
    # a slope by about 1/400)
    assert got[:3] == pytest.approx([12.0, 22.0, 31.5], abs=0.05)
    assert np.isnan(got[3])


def test_mean_blend_splits_the_day_only_with_enough_rows() -> None:
    x = _rows(300, 1)  # 14,400 rows: 1,800 per eighth of the day
    y = x[:, NAMES.index("week_lag")]
    long = MeanBlend(BASE_PARAMS, NAMES, 48).fit(x, y, seed=0)
    assert long.parts == DAYPARTS and len(long.trees) == DAYPARTS
    short = MeanBlend(BASE_PARAMS, NAMES, 48).fit(x[: 100 * 48], y[: 100 * 48], seed=0)
    assert short.parts == 1 and len(short.trees) == 1


def test_mean_blend_follows_a_different_rule_in_each_half_of_the_day() -> None:
    """Mornings follow last week's value, afternoons yesterday's plus a Sunday dip: a point
    forecast that ignored the slot or the day type would miss by about 0.1-0.2."""
    x, new = _rows(300, 1), _rows(20, 2)

    def truth(rows: np.ndarray) -> np.ndarray:
        col = {n: rows[:, i] for i, n in enumerate(NAMES)}
        morning = col["slot"] < 24
        sunday = np.where(col["day_type"] == 7, -0.2, 0.0)
        return np.where(morning, col["week_lag"], col["recent_same_slot"] + sunday)

    rng = np.random.default_rng(5)
    y = truth(x) + rng.normal(0.0, 0.01, x.shape[0])
    model = MeanBlend(BASE_PARAMS, NAMES, 48).fit(x, y, seed=0)
    err = np.abs(model.predict(new) - truth(new))
    assert err.mean() < 0.03, err.mean()


def test_a_missing_lag_still_gets_a_forecast() -> None:
    """Before a series has a week of history its week lag is NaN: the ridge reads the last
    day's mean there, so the blend stays finite."""
    x = _rows(300, 1)
    y = x[:, NAMES.index("week_lag")]
    model = MeanBlend(BASE_PARAMS, NAMES, 48).fit(x, y, seed=0)
    new = _rows(2, 4)
    new[:, NAMES.index("week_lag")] = np.nan
    new[:, NAMES.index("week_lag_adjusted")] = np.nan
    assert np.isfinite(model.predict(new)).all()
