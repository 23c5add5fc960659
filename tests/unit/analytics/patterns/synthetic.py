"""Synthetic households with known answers: half-hourly kWh from a 48-slot day shape."""

from __future__ import annotations

import datetime as dt

import polars as pl


def household(
    meter: str, day: list[float], start: dt.date, days: int, tz: str = "UTC"
) -> pl.DataFrame:
    """``days`` local days from ``start`` of the same 48 half-hourly values (kWh), as
    (id, ts UTC, kwh)."""
    assert len(day) == 48
    rows = []
    for d in range(days):
        date = start + dt.timedelta(days=d)
        for slot, kwh in enumerate(day):
            local = dt.datetime.combine(date, dt.time(slot // 2, 30 * (slot % 2)))
            rows.append((meter, local, kwh))
    frame = pl.DataFrame(rows, schema=["id", "local", "kwh"], orient="row")
    return frame.select(
        "id",
        pl.col("local")
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .dt.cast_time_unit("us")
        .alias("ts"),
        pl.col("kwh").cast(pl.Float64),
    ).drop_nulls("ts")
