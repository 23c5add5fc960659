"""The scores against hand computations on tiny series."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from metrify.analytics.forecast.metrics import mean_pinball, pinball, score, weekly_naive_mae


def test_pinball_by_hand() -> None:
    actual = np.array([10.0, 10.0])
    # under-forecast by 2 costs q*2, over-forecast by 2 costs (1-q)*2
    assert pinball(actual, np.array([8.0, 12.0]), 0.9) == pytest.approx((0.9 * 2 + 0.1 * 2) / 2)
    assert pinball(actual, np.array([8.0, 8.0]), 0.1) == pytest.approx(0.1 * 2)
    bands = (np.array([9.0, 9.0]), np.array([10.0, 10.0]), np.array([11.0, 11.0]))
    # P10 one below: 0.1*1; P50 exact: 0; P90 one above: 0.1*1
    assert mean_pinball(actual, bands) == pytest.approx((0.1 + 0 + 0.1) / 3)


def test_weekly_naive_mae_skips_gaps() -> None:
    per_day = 1  # one value a day keeps the arithmetic visible
    values = np.array([1.0, 2, 3, 4, 5, 6, 7, 3, 2, np.nan, 4])
    # pairs (t, t-7): (3,1)->2, (2,2)->0, (nan,3) skipped, (4,4)->0
    assert weekly_naive_mae(values, per_day) == pytest.approx(2 / 3)
    assert math.isnan(weekly_naive_mae(values[:5], per_day))


def test_score_by_hand() -> None:
    rows = pl.DataFrame(
        {
            "actual": [10.0, 0.0, 20.0, 5.0],
            "p10": [8.0, -1.0, 21.0, 4.0],
            "p50": [9.0, 1.0, 22.0, 5.0],
            "p90": [12.0, 2.0, 23.0, 6.0],
        }
    )
    s = score("m", rows, mase_scale=2.0, naive_mae=4.0)
    assert s.mae == pytest.approx((1 + 1 + 2 + 0) / 4)
    # the zero actual is left out of MAPE
    assert s.mape == pytest.approx(100 * (1 / 10 + 2 / 20 + 0 / 5) / 3)
    assert s.mase == pytest.approx(1.0 / 2.0)
    assert s.rmae == pytest.approx(1.0 / 4.0)
    assert s.coverage_p10_p90 == pytest.approx(3 / 4)  # 20 is below P10 = 21
    assert s.n == 4
    d = s.as_dict()
    assert set(d) == {"model", "mae", "mape", "mase", "rmae", "pinball", "coverage_p10_p90", "n"}
