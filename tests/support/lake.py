"""Rows for the lake's tests: versions of readings built from their parameters, so
the tests' expected values come from the input, not from the lake."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.contracts.records import READING
from metrify.stores.postgres import VERSION_TYPES

DAY = dt.date(2013, 1, 1)
STAMP = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)


def batch(
    meter: str, day: dt.date = DAY, *, value: float = 0.5, n: int = 48, second: int = 0
) -> pl.DataFrame:
    """``n`` half-hours of one meter from ``day``, each worth ``value`` plus its index
    / 1000, as one version ingested ``second`` s after STAMP."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    schema = {**READING.schema, **VERSION_TYPES}
    data = {
        "meter_id": [meter] * n,
        "ts": [start + dt.timedelta(minutes=30 * i) for i in range(n)],
        "interval_s": [1800] * n,
        "import_kwh": [value + i / 1000 for i in range(n)],
        "quality": [0] * n,
        "status": ["valid"] * n,
        "source": ["test"] * n,
        "ingested_at": [STAMP + dt.timedelta(seconds=second)] * n,
    }
    return (
        pl.DataFrame(data)
        .with_columns(
            pl.col("ts").dt.cast_time_unit("us"),
            pl.col("ingested_at").dt.cast_time_unit("us"),
            *[pl.lit(None, t).alias(c) for c, t in schema.items() if c not in data],
        )
        .select(pl.col(c).cast(t) for c, t in schema.items())
    )


def content(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's versions in a stable order, lake-only columns left out."""
    cols = [*READING.schema, *VERSION_TYPES]
    return frame.select(cols).sort("meter_id", "ts", "ingested_at")
