"""Synthetic half-hourly series whose right answers are known by construction."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

UTC = dt.UTC
START = dt.datetime(2013, 1, 7, tzinfo=UTC)  # a Monday


def weekly_series(
    days: int, noise: float = 0.0, seed: int = 1, start: dt.datetime = START
) -> pl.DataFrame:
    """A load with a daily shape, weekend dip and optional noise, 30-minute intervals."""
    n = days * 48
    i = np.arange(n)
    slot = i % 48
    day = i // 48
    weekday = (start.weekday() + day) % 7
    shape = 10 + 5 * np.sin(2 * np.pi * (slot - 14) / 48) + np.where(weekday >= 5, -3.0, 0.0)
    rng = np.random.default_rng(seed)
    value = shape + noise * rng.normal(size=n)
    ts = pl.datetime_range(
        start,
        start + dt.timedelta(minutes=30 * (n - 1)),
        "30m",
        time_unit="us",
        time_zone="UTC",
        eager=True,
    )
    return pl.DataFrame({"ts": ts, "value": value})
