"""Half-hourly energy on the local clock: slots, complete days and typical days.

Input everywhere is a frame of measured half-hours, ``id`` (a meter or a segment),
``ts`` (UTC start, timezone-aware) and ``kwh``; a half-hour with no measurement is
simply absent (gaps are not zeros). The series is put on the local clock of ``tz``
because people's days are local: a slot is the local half-hour of the day (0 = 00:00,
47 = 23:30).

A *complete day* has all 48 local half-hours measured. The two clock-change days (46 and
50 half-hours in Europe/London) are never complete, which keeps every day shape a
48-vector without inventing or merging the missing or repeated hour; they still count
for load factor and base load, which need no day shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import polars as pl

from metrify.analytics.holidays import DEFAULT_CALENDAR
from metrify.analytics.patterns.calendar import day_kind_expr, holiday_dates, season_expr

__all__ = ["SLOTS", "complete_days", "day_shapes", "local_half_hours", "slot_label", "typical_days"]

#: half-hour slots in a local day
SLOTS: Final = 48
#: the hours of one measured interval: demand (kW) is its energy over this
HALF_HOUR_H: Final = 0.5


def slot_label(slot: int) -> str:
    """``HH:MM`` of a slot's local start (48, the end of the day, is ``24:00``)."""
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


def local_half_hours(
    frame: pl.DataFrame,
    tz: str,
    holidays: list[dt.date] | None = None,
    calendar: str = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """``frame`` (id, ts, kwh) with its local ``date``, ``slot``, ``kind`` (weekday,
    weekend, holiday), ``season`` and demand ``kw``. Holidays default to those of
    ``calendar`` (England and Wales's bank holidays) in the years of the data."""
    local = frame.with_columns(pl.col("ts").dt.convert_time_zone(tz).alias("_local"))
    local = local.with_columns(
        pl.col("_local").dt.date().alias("date"),
        (pl.col("_local").dt.hour() * 2 + pl.col("_local").dt.minute() // 30)
        .cast(pl.Int32)
        .alias("slot"),
        (pl.col("kwh") / HALF_HOUR_H).alias("kw"),
    ).drop("_local")
    if holidays is None:
        years = local["date"].dt.year().unique().to_list() if local.height else []
        holidays = holiday_dates((int(y) for y in years if y is not None), calendar)
    return local.with_columns(
        day_kind_expr(pl.col("date"), holidays).alias("kind"),
        season_expr(pl.col("date")).alias("season"),
    )


def complete_days(local: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``local`` on complete days (48 distinct slots measured, no more)."""
    counts = local.group_by("id", "date").agg(
        pl.len().alias("_n"), pl.col("slot").n_unique().alias("_slots")
    )
    full = counts.filter((pl.col("_n") == SLOTS) & (pl.col("_slots") == SLOTS)).select("id", "date")
    return local.join(full, on=["id", "date"], how="semi")


def typical_days(complete: pl.DataFrame) -> pl.DataFrame:
    """Mean energy (kWh) per slot of each id's complete days, by kind of day and season,
    and by kind over the whole period (season ``all``): columns id, kind, season, slot,
    kwh, days (the complete days it averages)."""
    by_season = complete.group_by("id", "kind", "season", "slot").agg(
        pl.col("kwh").mean(), pl.col("date").n_unique().alias("days")
    )
    whole = complete.group_by("id", "kind", "slot").agg(
        pl.col("kwh").mean(), pl.col("date").n_unique().alias("days")
    )
    whole = whole.with_columns(pl.lit("all").alias("season")).select(by_season.columns)
    return pl.concat([by_season, whole]).sort("id", "kind", "season", "slot")


def day_shapes(complete: pl.DataFrame, min_days: int = 1) -> tuple[list[str], np.ndarray]:
    """Each id's mean day shape: every complete day normalised to unit energy (so a
    big and a small household with the same habits look alike), then averaged slot by
    slot. Ids with fewer than ``min_days`` complete days with energy are left out.
    Returns (ids, an ids x 48 array), each row shares summing to 1."""
    days = complete.with_columns(pl.col("kwh").sum().over("id", "date").alias("_day"))
    days = days.filter(pl.col("_day") > 0)
    enough = (
        days.group_by("id")
        .agg(pl.col("date").n_unique().alias("_days"))
        .filter(pl.col("_days") >= min_days)
        .select("id")
    )
    days = days.join(enough, on="id", how="semi")
    shares = (
        days.with_columns((pl.col("kwh") / pl.col("_day")).alias("share"))
        .group_by("id", "slot")
        .agg(pl.col("share").mean())
        .sort("id", "slot")
    )
    ids = shares["id"].unique(maintain_order=True).to_list()
    matrix = shares["share"].to_numpy().reshape(len(ids), SLOTS)
    return ids, matrix
