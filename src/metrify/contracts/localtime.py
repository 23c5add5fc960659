"""Each row's time on its own zone's wall clock, without converting every row.

Consumption follows the local clock, so VEE's spike baseline and the detectors' hour of
the week are taken in each meter's zone. Converting a column with
``dt.convert_time_zone`` looks every row up in the zone's rules; on a file batch with its
week of history that is millions of lookups per zone, and was one of the costliest steps
of a batch. A batch holds few distinct instants (a day of 15-minute readings has 96 of
them, whatever the fleet size), and a zone's offset from UTC changes a couple of times a
year at most. So the offset is looked up once per distinct instant and zone, reduced to
the instants where it changes, and applied to the rows by integer arithmetic: exact for
every row, since every row's instant is one of those looked up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

__all__ = [
    "DAY_US",
    "HOUR_US",
    "epoch_us",
    "hour_of_day",
    "hour_of_week",
    "known_zones",
    "local_us",
    "utc_of_wall",
    "wall_of_utc",
]

HOUR_US: Final = 3_600_000_000
DAY_US: Final = 24 * HOUR_US
#: 1970-01-01 was a Thursday: weekday 3 counting Monday as 0
_EPOCH_WEEKDAY: Final = 3


def local_us(frame: pl.DataFrame, zone: str | None, zones: Iterable[str]) -> pl.Expr:
    """Microseconds since the epoch on each row's wall clock: ``ts`` (UTC) plus the UTC
    offset of the row's zone at that instant.

    ``zone``: the column naming each row's zone (None: every row is UTC); ``zones``: the
    zones to apply. Rows of zones ``zoneinfo`` does not know, or of none, count as UTC.
    """
    us = pl.col("ts").dt.epoch("us")
    wanted = sorted({z for z in known_zones(zones) if z != "UTC"})
    if zone is None or not wanted or not frame.height:
        return us
    instants = frame.select(pl.col("ts").drop_nulls().unique().sort()).to_series()
    offset: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for name in wanted:
        offset = pl.when(pl.col(zone) == name).then(_offset(instants, name)).otherwise(offset)
    return us + offset


def known_zones(names: Iterable[str]) -> list[str]:
    """The zones among ``names`` that ``zoneinfo`` knows, in their order; a meter with
    another (a typo in its reference row) is taken in UTC rather than failing its batch."""
    known = []
    for name in names:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        known.append(name)
    return known


def epoch_us(moment: dt.datetime) -> int:
    """``moment`` as UTC microseconds; a naive datetime is taken as UTC (the contract's zone)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def hour_of_day(local: pl.Expr) -> pl.Expr:
    """0..23 from :func:`local_us`."""
    return local // HOUR_US % 24


def hour_of_week(local: pl.Expr) -> pl.Expr:
    """0 = Monday 00:00-01:00 ... 167 = Sunday 23:00, from :func:`local_us`."""
    weekday = (local // DAY_US + _EPOCH_WEEKDAY) % 7
    return weekday * 24 + hour_of_day(local)


def _offset(instants: pl.Series, zone: str) -> pl.Expr:
    """The offset of ``zone`` (microseconds) at each row's ``ts``, as a piecewise constant
    over the sorted distinct ``instants``: one step per change, so a few comparisons."""
    table = pl.DataFrame({"ts": instants}).select(
        us=pl.col("ts").dt.epoch("us"),
        off=pl.col("ts").dt.convert_time_zone(zone).dt.replace_time_zone(None).dt.epoch("us")
        - pl.col("ts").dt.epoch("us"),
    )
    steps = table.filter(pl.col("off") != pl.col("off").shift(1).fill_null(pl.col("off") + 1))
    starts, offsets = steps["us"].to_list(), steps["off"].to_list()
    expr: pl.Expr = pl.lit(offsets[0] if offsets else 0, dtype=pl.Int64)
    us = pl.col("ts").dt.epoch("us")
    for start, off in zip(starts[1:], offsets[1:], strict=True):
        expr = pl.when(us >= start).then(pl.lit(off, dtype=pl.Int64)).otherwise(expr)
    return expr


def wall_of_utc(us: pl.Series, zone: str) -> pl.Series:
    """UTC instants (µs since the epoch) as times on ``zone``'s wall clock (µs)."""
    return (
        us.cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(zone)
        .dt.replace_time_zone(None)
        .dt.epoch("us")
    )


def utc_of_wall(wall: pl.Series, zone: str) -> pl.Series:
    """Times on ``zone``'s wall clock (µs) as UTC instants (µs since the epoch): a time
    the clock repeats (the hour it falls back) taken the first time, one it skips (the
    hour it springs forward) null, for the caller to drop or place."""
    return (
        wall.cast(pl.Datetime("us"))
        .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        .dt.epoch("us")
    )
