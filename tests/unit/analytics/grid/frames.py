"""Small synthetic series with answers known by construction."""

from __future__ import annotations

import datetime as dt

import polars as pl

T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)  # a Monday


def node(
    loads: list[float | None], interval_s: int = 1800, start: dt.datetime = T0
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [start + dt.timedelta(seconds=i * interval_s) for i in range(len(loads))],
            "interval_s": [interval_s] * len(loads),
            "load_mw": loads,
        },
        schema={"ts": pl.Datetime("us", "UTC"), "interval_s": pl.Int32, "load_mw": pl.Float64},
    )


def readings(
    kwh: dict[str, list[float | None]], interval_s: int = 1800, start: dt.datetime = T0
) -> pl.DataFrame:
    rows = [
        (m, start + dt.timedelta(seconds=i * interval_s), interval_s, v)
        for m, values in kwh.items()
        for i, v in enumerate(values)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "meter_id": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "interval_s": pl.Int32,
            "import_kwh": pl.Float64,
        },
        orient="row",
    )
