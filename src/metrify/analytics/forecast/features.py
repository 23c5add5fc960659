"""The features a forecast issued at one time may use, built for many targets at once.

Every lag is taken only where its interval starts before the issue time (position < k,
the count of intervals known at issue); anything later is NaN. That one rule is what
keeps a rolling-origin backtest honest: the same code builds training rows (for past
issue times) and the rows to predict, so neither can see past its own issue time.

Values are divided by the series' mean over the 7 days before issue (``scale``), so one
model serves a national demand in MW and a household in kWh, and a model trained on
many meters at once (the fast path) learns shapes rather than sizes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from metrify.analytics.forecast.series import Panel
from metrify.analytics.holidays import holiday_dates

BASE_FEATURES: tuple[str, ...] = (
    "slot",  # local interval of the day (0..per_day-1)
    "dow",  # local weekday of the target (1 = Monday)
    "day_type",  # dow, but a public holiday counts as a Sunday (7): holidays are few
    # in a year of training rows, Sundays are many, and the load of the two is alike
    "doy",  # local day of the year of the target (season)
    "holiday",  # target's local date is a public holiday
    "holiday_near",  # the day before or after the target's date is a holiday (bridges)
    "lead_days",  # how far ahead of the issue time the target lies
    "log_scale",  # size of the series (mean over the 7 days before issue, log10)
    "last",  # latest value before issue
    "mean24",  # mean of the 24 h before issue
    "mean24_week_before",  # mean of the same 24 h one week earlier
    "recent_same_slot",  # same local time on the latest day known at issue
    "recent_same_slot_prev",  # and the day before that
    "recent_days_back",  # how many days back that latest known day is
    "week_lag",  # same time one week before the target
    "two_week_lag",  # same time two weeks before
    "week_lag_adjusted",  # week_lag scaled by how the last 24 h compare with a week before
    "week_lag_day_type",  # day_type of the week_lag's day: a holiday there misleads the lag
    "recent_day_type",  # day_type of the recent_same_slot's day
)
WEATHER_FEATURES: tuple[str, ...] = (
    "temp_recent_same_slot",  # temperature at the recent_same_slot time (persistence)
    "temp_mean24",  # mean temperature of the 24 h before issue
    "temp_week_lag",  # temperature at the week_lag time
)


@dataclass(frozen=True)
class Calendar:
    """Local-time calendar of every grid interval (computed once per panel)."""

    slot: np.ndarray
    dow: np.ndarray
    doy: np.ndarray
    holiday: np.ndarray
    holiday_near: np.ndarray


def calendar(panel: Panel, tz: str, country: str | None) -> Calendar:
    """Slot, weekday, day of year and holiday flags of every grid interval in ``tz``."""
    local = panel.grid().dt.convert_time_zone(tz)
    minutes = (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)).to_numpy()
    slot = (minutes * 60) // panel.step_s
    dates = local.dt.date()
    if country:
        years = dates.dt.year()
        days = holiday_dates(country, int(years.min()) - 1, int(years.max()) + 1)  # type: ignore[arg-type]
        known = np.array(sorted(days), dtype="datetime64[D]")
        local_days = dates.to_numpy().astype("datetime64[D]")
        one = np.timedelta64(1, "D")
        hol = np.isin(local_days, known)
        near = np.isin(local_days - one, known) | np.isin(local_days + one, known)
    else:
        hol = np.zeros(panel.n, dtype=bool)
        near = hol
    return Calendar(
        slot=slot.astype(np.float64),
        dow=local.dt.weekday().to_numpy().astype(np.float64),
        doy=local.dt.ordinal_day().to_numpy().astype(np.float64),
        holiday=hol.astype(np.float64),
        holiday_near=near.astype(np.float64),
    )


def temperature_on_grid(panel: Panel, weather: pl.DataFrame | None) -> np.ndarray | None:
    """``weather.temperature_c`` on the panel's grid: the latest observation at or before
    each interval start (within 3 hours), so hourly stations serve half-hourly meters."""
    if weather is None:
        return None
    if "ts" not in weather.columns or "temperature_c" not in weather.columns:
        raise ValueError("weather needs columns ts and temperature_c")
    ts = pl.col("ts")
    ts_type = weather.schema["ts"]
    if not isinstance(ts_type, pl.Datetime):
        raise ValueError(f"weather column ts must be a Datetime, got {ts_type}")
    ts = (
        ts.dt.replace_time_zone("UTC")
        if ts_type.time_zone is None
        else ts.dt.convert_time_zone("UTC")
    )
    obs = (
        weather.select(
            ts.dt.cast_time_unit("us").alias("ts"), pl.col("temperature_c").cast(pl.Float64)
        )
        .drop_nulls()
        .sort("ts")
    )
    grid = panel.grid().to_frame()
    joined = grid.join_asof(obs, on="ts", strategy="backward", tolerance=dt.timedelta(hours=3))
    return joined["temperature_c"].fill_null(np.nan).to_numpy().astype(np.float64)


@dataclass(frozen=True)
class Design:
    """Feature rows for (series, target) pairs; rows are series-major."""

    x: np.ndarray  # (rows, features)
    y: np.ndarray  # target / scale (NaN where unknown)
    scale: np.ndarray  # per row
    series: np.ndarray  # series index per row
    target: np.ndarray  # grid position per row
    issue_k: np.ndarray  # intervals known at issue, per row
    names: tuple[str, ...]


def _window_means(cs: np.ndarray, cnt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = cs.shape[1] - 1
    a = np.clip(a, 0, n)
    b = np.clip(b, 0, n)
    total = cs[:, b] - cs[:, a]
    count = cnt[:, b] - cnt[:, a]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _known(arr: np.ndarray, idx: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``arr[..., idx]`` where the position was known at issue (0 <= idx < k), else NaN."""
    ok = (idx >= 0) & (idx < k)
    safe = np.where(ok, idx, 0)
    out = arr[..., safe]
    return np.where(ok, out, np.nan)


def design(
    panel: Panel,
    cal: Calendar,
    temp: np.ndarray | None,
    issues_k: list[int],
    targets: list[np.ndarray],
    series: np.ndarray | None = None,
) -> Design:
    """Feature rows for every series (or the ``series`` subset) and every (issue, target)."""
    p = panel.per_day
    values = panel.values if series is None else panel.values[series]
    rows_series = np.arange(panel.values.shape[0]) if series is None else series
    k = np.concatenate(
        [np.full(len(j), kk, dtype=np.int64) for kk, j in zip(issues_k, targets, strict=True)]
    )
    j = np.concatenate(targets).astype(np.int64)
    filled = np.nan_to_num(values, nan=0.0)
    cs = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(filled, axis=1)], axis=1)
    cnt = np.concatenate(
        [np.zeros((values.shape[0], 1)), np.cumsum(np.isfinite(values), axis=1)], axis=1
    )
    scale = _window_means(cs, cnt, k - 7 * p, k)
    scale = np.where(scale > 0, scale, np.nan)
    mean24 = _window_means(cs, cnt, k - p, k)
    mean24_wb = _window_means(cs, cnt, k - 8 * p, k - 7 * p)
    back = np.maximum(1, -((k - j - 1) // p))  # ceil((j - k + 1) / p), at least a day
    recent = _known(values, j - back * p, k)
    recent_prev = _known(values, j - (back + 1) * p, k)
    week = _known(values, j - 7 * p, k)
    day_type = np.where(cal.holiday > 0, 7.0, cal.dow)  # calendar only: known in advance
    two_week = _known(values, j - 14 * p, k)
    last = _known(values, k - 1, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        adjusted = week * np.where(mean24_wb > 0, mean24 / mean24_wb, np.nan)
    s_count = values.shape[0]

    def bcast(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (s_count, a.size))

    cols: list[np.ndarray] = [
        bcast(cal.slot[j]),
        bcast(cal.dow[j]),
        bcast(day_type[j]),
        bcast(cal.doy[j]),
        bcast(cal.holiday[j]),
        bcast(cal.holiday_near[j]),
        bcast((j - k) / p),
        np.log10(scale),
        last / scale,
        mean24 / scale,
        mean24_wb / scale,
        recent / scale,
        recent_prev / scale,
        bcast(back.astype(np.float64)),
        week / scale,
        two_week / scale,
        adjusted / scale,
        bcast(day_type[np.maximum(j - 7 * p, 0)]),
        bcast(day_type[np.maximum(j - back * p, 0)]),
    ]
    names = BASE_FEATURES
    if temp is not None:
        t_cs = np.concatenate([[0.0], np.cumsum(np.nan_to_num(temp, nan=0.0))])[None, :]
        t_cnt = np.concatenate([[0.0], np.cumsum(np.isfinite(temp))])[None, :]
        cols += [
            bcast(_known(temp, j - back * p, k)),
            bcast(_window_means(t_cs, t_cnt, k - p, k)[0]),
            bcast(_known(temp, j - 7 * p, k)),
        ]
        names = BASE_FEATURES + WEATHER_FEATURES
    x = np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=-1).reshape(-1, len(cols))
    y_raw = values[:, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (y_raw / scale).reshape(-1)
    return Design(
        x=x,
        y=y,
        scale=scale.reshape(-1),
        series=np.repeat(rows_series, j.size),
        target=np.tile(j, s_count),
        issue_k=np.tile(k, s_count),
        names=names,
    )
