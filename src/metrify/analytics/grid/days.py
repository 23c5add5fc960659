"""Days in a zone and how long each one is (23, 24 or 25 hours where clocks change).

Losses and flexibility are judged per local day; counting the intervals a day owes
needs its true length, which only the zone knows.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl

__all__ = ["day_seconds", "local_day"]


def local_day(ts: pl.Expr, tz: str) -> pl.Expr:
    """The local date of a UTC instant in ``tz``."""
    return ts.dt.convert_time_zone(tz).dt.date()


def day_seconds(days: list[dt.date], tz: str) -> pl.DataFrame:
    """``day``, ``seconds``: the length of each local day in ``tz``."""
    zone = ZoneInfo(tz)
    seconds = []
    for day in days:
        start = dt.datetime.combine(day, dt.time(), zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        seconds.append(int((end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds()))
    return pl.DataFrame(
        {"day": days, "seconds": seconds}, schema={"day": pl.Date, "seconds": pl.Int64}
    )
