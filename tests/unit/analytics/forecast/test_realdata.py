"""A slice of real GB national demand: the naive's scores against a plain recomputation,
and the model beating it on an ordinary winter fortnight."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrify.analytics.forecast import backtest
from support.realdata import shared_data


@pytest.fixture(scope="module")
def gb() -> pl.DataFrame:
    path = shared_data() / "gb-national-demand" / "gb_demand_2011-11_2014-02.csv"
    raw = pl.read_csv(path, columns=["TIMESTAMP", "ND"], try_parse_dates=True)
    winter = pl.col("TIMESTAMP").is_between(
        dt.datetime(2012, 11, 1), dt.datetime(2013, 2, 1), closed="left"
    )
    return raw.filter(winter).select(
        pl.col("TIMESTAMP").dt.replace_time_zone("UTC").alias("ts"), pl.col("ND").alias("value")
    )


def test_gb_fortnight(gb: pl.DataFrame) -> None:
    start, end = dt.date(2013, 1, 14), dt.date(2013, 1, 27)
    scores = backtest(gb, start=start, end=end, tz="UTC", train_days=60, retrain_days=14)
    by = {s.model: s for s in scores}
    naive, ours = by["seasonal_naive_weekly"], by["metrify"]
    # the weekly naive, recomputed from the file: 336 half-hours back
    v = gb["value"].to_numpy()
    lag = np.concatenate([np.full(336, np.nan), v[:-336]])
    day = gb["ts"].dt.date().to_numpy()
    test = (day >= np.datetime64(start)) & (day <= np.datetime64(end))
    err = np.abs(v[test] - lag[test])
    assert naive.n == ours.n == test.sum() == 14 * 48
    assert naive.mae == pytest.approx(err.mean())
    assert naive.mape == pytest.approx(100 * np.mean(err / v[test]))
    assert ours.mae < 0.9 * naive.mae
    assert ours.pinball < naive.pinball
    assert 0.5 < ours.coverage_p10_p90 <= 1.0
