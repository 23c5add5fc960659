"""Days of readings before 1970 (a mutation survivor): a local time before the epoch is
a negative count of microseconds, and its day must be floored, not truncated toward
zero, or 1969-12-31 is counted as 1970-01-01."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.stores.quality_daily import day_counts


def _rows(items: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": [m for m, _ in items],
            "ts": [t for _, t in items],
            "interval_s": [1800] * len(items),
            "quality": [0] * len(items),
            "status": ["valid"] * len(items),
        }
    ).with_columns(pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC"))


def test_days_before_the_epoch_are_floored_on_utc_and_on_a_local_clock() -> None:
    rows = _rows(
        [
            ("UTC1", "1969-12-31T23:00:00Z"),
            ("UTC1", "1969-12-31T23:30:00Z"),
            ("UTC1", "1970-01-01T00:00:00Z"),
            # 03:00 UTC is 22:00 the day before in New York (UTC-5 in winter)
            ("NY", "1970-01-01T03:00:00Z"),
            ("NY", "1970-01-01T05:30:00Z"),
        ]
    )
    zones = pl.DataFrame({"meter_id": ["NY"], "tz": ["America/New_York"]})
    counts = day_counts(rows, zones)
    got = sorted((m, d, p) for m, d, p in counts.select("meter_id", "day", "present").iter_rows())
    assert got == [
        ("NY", dt.date(1969, 12, 31), 1),
        ("NY", dt.date(1970, 1, 1), 1),
        ("UTC1", dt.date(1969, 12, 31), 2),
        ("UTC1", dt.date(1970, 1, 1), 1),
    ]
