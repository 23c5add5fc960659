"""Constructed meter series: a clean household shape with a small deterministic wobble,
so a test changes one thing at a known place and derives the expected result from that."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # a Monday
STEP = 1800
PER_DAY = 86400 // STEP


def household_kwh(i: int, per_day: int = 48) -> float:
    """A household's kWh in interval ``i`` (``per_day`` a day, half hours by default):
    0.15 at night, up to ~0.65 in the evening, a morning bump, 3 % wobble."""
    hour = (i % per_day) * 24 / per_day
    level = (
        0.15
        + 0.5 * math.exp(-(((hour - 19) / 2.5) ** 2))
        + 0.15 * math.exp(-(((hour - 8) / 1.5) ** 2))
    )
    return level * (1 + 0.03 * math.sin(i * 1.7))


def shape(i: int) -> float:
    """kWh per half hour: 0.15 at night, up to ~0.65 in the evening, 3 % wobble."""
    return round(household_kwh(i, PER_DAY), 4)


def series(
    meter: str,
    days: int,
    change: dict[int, float] | None = None,
    first: int = 0,
    export: dict[int, float] | None = None,
) -> pl.DataFrame:
    """Half-hourly readings of ``meter`` from interval ``first`` on, ``change`` replacing
    the shape's import at the intervals it names and ``export`` giving export there."""
    rows = []
    for i in range(first, first + days * PER_DAY):
        value = change.get(i, shape(i)) if change else shape(i)
        rows.append(
            {
                "meter_id": meter,
                "ts": T0 + dt.timedelta(seconds=STEP * i),
                "interval_s": STEP,
                "import_kwh": value,
                "export_kwh": (export or {}).get(i, 0.0),
            }
        )
    return pl.DataFrame(rows).with_columns(
        pl.col("ts").dt.cast_time_unit("us"), pl.col("interval_s").cast(pl.Int32)
    )
