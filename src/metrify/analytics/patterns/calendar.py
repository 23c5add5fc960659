"""Which kind of day a local date is (weekday, weekend, holiday) and its season.

Holidays come from the ``holidays`` package (:mod:`metrify.analytics.holidays`, the
calendar of the ``holidays`` setting, default England and Wales),
not from a file: the Kaggle ``uk_bank_holidays.csv`` beside the London data has two of
its 2013 dates with day and month swapped (Easter Monday as 2013-01-04, the early May
bank holiday as 2013-06-05), which would make ordinary days holidays and hide the real
ones. A holiday outranks a weekend, so a bank holiday is never counted twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final, Literal

import polars as pl

from metrify.analytics.holidays import DEFAULT_CALENDAR
from metrify.analytics.holidays import holiday_dates as shared_holidays

__all__ = [
    "DAY_KINDS",
    "SEASONS",
    "DayKind",
    "Season",
    "day_kind_expr",
    "holiday_dates",
    "season_expr",
]

DayKind = Literal["weekday", "weekend", "holiday"]
Season = Literal["winter", "spring", "summer", "autumn"]

DAY_KINDS: Final[tuple[DayKind, ...]] = ("weekday", "weekend", "holiday")
#: meteorological seasons of the northern hemisphere: Dec-Feb winter, Mar-May spring...
SEASONS: Final[tuple[Season, ...]] = ("winter", "spring", "summer", "autumn")
_SEASON_OF_MONTH: Final = {m: SEASONS[(m % 12) // 3] for m in range(1, 13)}


def holiday_dates(years: Iterable[int], calendar: str = DEFAULT_CALENDAR) -> list[dt.date]:
    """The public holidays of ``years`` (sorted) in ``calendar``, England and Wales's
    bank holidays by default."""
    wanted = sorted(set(years))
    if not wanted:
        return []
    return sorted(d for d in shared_holidays(calendar, wanted[0], wanted[-1]) if d.year in wanted)


def day_kind_expr(date: pl.Expr, holiday: list[dt.date]) -> pl.Expr:
    """The kind of each local date: ``holiday`` first, then Saturday/Sunday ``weekend``."""
    return (
        pl.when(date.is_in(pl.Series(holiday, dtype=pl.Date).implode()))
        .then(pl.lit("holiday"))
        .when(date.dt.weekday() >= 6)
        .then(pl.lit("weekend"))
        .otherwise(pl.lit("weekday"))
    )


def season_expr(date: pl.Expr) -> pl.Expr:
    """The meteorological season of each local date."""
    return date.dt.month().replace_strict(_SEASON_OF_MONTH, return_dtype=pl.String)
