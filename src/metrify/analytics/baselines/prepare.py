"""From stored series to the frames the baseline models fit: daily use with the day's
mean temperature, and hourly use with the hour's temperature.

Inputs are what the stores hand over: the meter's interval readings (``ts`` the UTC
start, ``kwh``) and its weather station's observations (``ts`` UTC, ``temperature_c``).
Days and times of week are the meter's LOCAL ones (a household's routine follows the
clock on the wall), so a London day on which the clocks change has 23 or 25 hours.

Rules (CalTRACK's data sufficiency, stated so that a reader can check them):

* a day's use counts when its intervals cover at least :data:`MIN_DAY_COVERAGE` of the
  local day; the sum is then scaled up by the covered share, so a day missing one
  half-hour is not read as a day of lower use;
* a day's temperature is the mean of its hourly temperatures and counts when at least
  half of its hours have one (CalTRACK 2.0's 50 % rule);
* an hour's use counts only when all its intervals are there; an hour without a
  temperature takes one interpolated linearly from neighbours at most
  :data:`MAX_TEMPERATURE_GAP_H` hours away, or is left out.
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

import polars as pl

__all__ = [
    "MAX_TEMPERATURE_GAP_H",
    "MIN_DAY_COVERAGE",
    "daily_frame",
    "hourly_frame",
    "hourly_temperature",
]

MIN_DAY_COVERAGE: Final = 0.9
MAX_TEMPERATURE_GAP_H: Final = 3


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """``ts`` as a UTC-aware datetime whatever zone (or none, meaning UTC) it came in."""
    ts = frame.schema["ts"]
    if not isinstance(ts, pl.Datetime):
        raise ValueError("ts must be a datetime column")
    if ts.time_zone is None:
        return frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))


def hourly_temperature(weather: pl.DataFrame) -> pl.DataFrame:
    """Mean temperature per UTC hour (``ts``, ``temperature_c``), gaps of up to
    :data:`MAX_TEMPERATURE_GAP_H` hours interpolated."""
    weather = _utc(weather.select("ts", "temperature_c")).drop_nulls()
    if weather.is_empty():
        return pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "temperature_c": pl.Float64})
    hours = (
        weather.with_columns(pl.col("ts").dt.truncate("1h"))
        .group_by("ts")
        .agg(pl.col("temperature_c").mean())
        .sort("ts")
        .with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    )
    first, last = hours["ts"].min(), hours["ts"].max()
    assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
    grid = pl.DataFrame(
        {
            "ts": pl.datetime_range(first, last, "1h", eager=True, time_zone="UTC").cast(
                pl.Datetime("us", "UTC")
            )
        }
    )
    full = grid.join(hours, on="ts", how="left")
    # an hour without an observation is filled only when real ones lie at most
    # MAX_TEMPERATURE_GAP_H hours apart around it
    seen = pl.col("temperature_c").is_not_null()
    index = pl.int_range(pl.len())
    return (
        full.with_columns(
            before=pl.when(seen).then(index).forward_fill(),
            after=pl.when(seen).then(index).backward_fill(),
        )
        .filter(seen | (pl.col("after") - pl.col("before") <= MAX_TEMPERATURE_GAP_H + 1))
        .with_columns(pl.col("temperature_c").interpolate())
        .select("ts", "temperature_c")
        .drop_nulls()
    )


def _day_seconds(days: pl.Series, zone: ZoneInfo) -> pl.Series:
    """Seconds in each local day (86,400, or 82,800 / 90,000 when the clocks change)."""
    out = []
    for day in days.to_list():
        start = dt.datetime.combine(day, dt.time(), zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        out.append((end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds())
    return pl.Series("day_s", out, dtype=pl.Float64)


def daily_frame(
    usage: pl.DataFrame,
    weather: pl.DataFrame,
    tz: str,
    interval_s: int = 1800,
    *,
    weather_is_hourly: bool = False,
) -> pl.DataFrame:
    """One row per local day with enough use and temperature: ``day``, ``kwh`` (scaled
    to the whole day), ``coverage`` and ``temperature_c`` (the day's mean), sorted.

    ``weather_is_hourly``: ``weather`` is :func:`hourly_temperature`'s already (a
    station shared by many meters is prepared once)."""
    zone = ZoneInfo(tz)
    usage = _utc(usage.select("ts", "kwh")).drop_nulls()
    days = (
        usage.with_columns(day=pl.col("ts").dt.convert_time_zone(tz).dt.date())
        .group_by("day")
        .agg(pl.col("kwh").sum(), pl.len().alias("n"))
        .sort("day")
    )
    if days.is_empty():
        return pl.DataFrame(
            schema={
                "day": pl.Date,
                "kwh": pl.Float64,
                "coverage": pl.Float64,
                "temperature_c": pl.Float64,
            }
        )
    days = days.with_columns(
        coverage=(pl.col("n") * interval_s / _day_seconds(days["day"], zone)).clip(upper_bound=1.0)
    ).filter(pl.col("coverage") >= MIN_DAY_COVERAGE)
    days = days.with_columns(kwh=pl.col("kwh") / pl.col("coverage"))
    temps = weather if weather_is_hourly else hourly_temperature(weather)
    hours_in_day = _day_seconds(days["day"], zone) / 3600.0
    daily_t = (
        temps.with_columns(day=pl.col("ts").dt.convert_time_zone(tz).dt.date())
        .group_by("day")
        .agg(pl.col("temperature_c").mean(), pl.len().alias("hours"))
    )
    return (
        days.with_columns(hours_in_day=hours_in_day)
        .join(daily_t, on="day", how="inner")
        .filter(pl.col("hours") >= 0.5 * pl.col("hours_in_day"))
        .select("day", "kwh", "coverage", "temperature_c")
        .sort("day")
    )


def hourly_frame(
    usage: pl.DataFrame,
    weather: pl.DataFrame,
    tz: str,
    interval_s: int = 1800,
    *,
    weather_is_hourly: bool = False,
) -> pl.DataFrame:
    """One row per complete UTC hour with a temperature: ``ts`` (UTC), ``kwh``,
    ``temperature_c``, and the local ``tow`` (hour of the week, Monday 00:00 is 0) and
    ``month`` (1-12) the hourly model segments by."""
    usage = _utc(usage.select("ts", "kwh")).drop_nulls()
    per_hour = max(1, 3600 // interval_s)
    hours = (
        usage.with_columns(pl.col("ts").dt.truncate("1h"))
        .group_by("ts")
        .agg(pl.col("kwh").sum(), pl.len().alias("n"))
        .filter(pl.col("n") >= per_hour)
        .drop("n")
        .with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    )
    temps = weather if weather_is_hourly else hourly_temperature(weather)
    local = pl.col("ts").dt.convert_time_zone(tz)
    return (
        hours.join(temps, on="ts", how="inner")
        .with_columns(
            tow=(local.dt.weekday().cast(pl.Int16) - 1) * 24 + local.dt.hour().cast(pl.Int16),
            month=local.dt.month().cast(pl.Int8),
        )
        .sort("ts")
    )
