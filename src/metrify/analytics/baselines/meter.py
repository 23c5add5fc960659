"""The baseline questions for one meter, from its stored series: fit a model over a
period, say how much of a month's change is weather, measure savings after a change.

The callers (CLI, API, batch job, benchmark) hand over a :class:`MeterSeries` read from
the stores and get plain results back; periods are local dates, end exclusive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from metrify.analytics.baselines import prepare
from metrify.analytics.baselines.daily import DailyModel, fit_daily
from metrify.analytics.baselines.hourly import HourlyModel, fit_hourly
from metrify.analytics.baselines.savings import Savings, savings
from metrify.analytics.baselines.weather import WeatherEffect, month_bounds, weather_effect

__all__ = [
    "Fit",
    "MeterSeries",
    "ModelKind",
    "fit",
    "one_thread",
    "savings_after",
    "weather_effect_of",
]

ModelKind = Literal["daily", "hourly"]
#: a baseline is a year, CalTRACK's 365 days, so that every season is in it
BASELINE_DAYS = 365


def one_thread() -> Any:
    """A context in which BLAS uses one thread: the models solve many small systems,
    where threads cost more than they bring (and the machine runs other jobs)."""
    return threadpool_limits(1)


@dataclass(frozen=True)
class MeterSeries:
    """One meter's use (``ts`` UTC, ``kwh``) and its station's weather (``ts`` UTC,
    ``temperature_c``), with the meter's zone and reading interval."""

    meter_id: str
    tz: str
    usage: pl.DataFrame
    weather: pl.DataFrame
    interval_s: int = 1800
    #: ``weather`` is already :func:`prepare.hourly_temperature`'s hourly means
    weather_is_hourly: bool = False

    def daily(self) -> pl.DataFrame:
        return prepare.daily_frame(
            self.usage, self.weather, self.tz, self.interval_s,
            weather_is_hourly=self.weather_is_hourly,
        )  # fmt: skip

    def hourly(self) -> pl.DataFrame:
        return prepare.hourly_frame(
            self.usage, self.weather, self.tz, self.interval_s,
            weather_is_hourly=self.weather_is_hourly,
        )  # fmt: skip


@dataclass(frozen=True)
class Fit:
    """A fitted baseline and what it was fitted on."""

    meter_id: str
    kind: ModelKind
    start: dt.date
    end: dt.date
    model: DailyModel | HourlyModel

    def summary(self) -> dict[str, Any]:
        params = (
            self.model.as_dict() if isinstance(self.model, DailyModel) else self.model.summary()
        )
        return {
            "meter_id": self.meter_id,
            "model": self.kind,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "n": self.model.n,
            "p": self.model.p,
            "cvrmse": self.model.cvrmse,
            "nmbe": self.model.nmbe,
            "params": params,
        }


def _local_days(frame: pl.DataFrame, tz: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    if "day" in frame.columns:
        return frame.filter((pl.col("day") >= start) & (pl.col("day") < end))
    local = pl.col("ts").dt.convert_time_zone(tz).dt.date()
    return frame.filter((local >= start) & (local < end))


def _frame(series: MeterSeries, kind: ModelKind) -> pl.DataFrame:
    if kind == "daily":
        return series.daily()
    if kind == "hourly":
        return series.hourly()
    raise ValueError(f"model {kind!r}: use daily or hourly")


def _fit_frame(kind: ModelKind, frame: pl.DataFrame) -> DailyModel | HourlyModel:
    return fit_daily(frame) if kind == "daily" else fit_hourly(frame)


def fit(series: MeterSeries, kind: ModelKind, start: dt.date, end: dt.date) -> Fit:
    """Fit ``kind`` on the meter's local days ``[start, end)``; ValueError when the
    period has too little data."""
    frame = _local_days(_frame(series, kind), series.tz, start, end)
    return Fit(series.meter_id, kind, start, end, _fit_frame(kind, frame))


def default_against(month: str, days: pl.DataFrame) -> str:
    """The month to compare with: the same month a year before when the data reach back
    to it, otherwise the month before."""
    first, _ = month_bounds(month)
    year_before = dt.date(first.year - 1, first.month, 1)
    if not days.is_empty() and days["day"].min() <= year_before:  # type: ignore[operator]
        return year_before.strftime("%Y-%m")
    prev = first - dt.timedelta(days=1)
    return prev.strftime("%Y-%m")


def weather_effect_of(
    series: MeterSeries, month: str, against: str | None = None
) -> tuple[WeatherEffect, Fit]:
    """How much of ``month``'s change against ``against`` (default
    :func:`default_against`) is weather, by the daily model fitted on the
    :data:`BASELINE_DAYS` days up to the month's end."""
    days = series.daily()
    against = against or default_against(month, days)
    _, end = month_bounds(month)
    start = end - dt.timedelta(days=BASELINE_DAYS)
    model = fit_daily(_local_days(days, series.tz, start, end))
    effect = weather_effect(model, days, month, against)
    return effect, Fit(series.meter_id, "daily", start, end, model)


def savings_after(
    series: MeterSeries,
    change: dt.date,
    kind: ModelKind = "daily",
    until: dt.date | None = None,
    baseline_days: int = BASELINE_DAYS,
) -> tuple[Savings, Fit]:
    """Savings from ``change`` (a local date) to ``until`` (default: a year later, or
    the data's end) against the model fitted on the ``baseline_days`` before it."""
    frame = _frame(series, kind)
    start = change - dt.timedelta(days=baseline_days)
    base = _local_days(frame, series.tz, start, change)
    report = _local_days(frame, series.tz, change, until or change + dt.timedelta(days=365))
    model = _fit_frame(kind, base)
    if kind == "daily":
        assert isinstance(model, DailyModel)
        residuals = base["kwh"].to_numpy() - model.predict_days(base)
        predicted = model.predict_days(report)
    else:
        assert isinstance(model, HourlyModel)
        residuals = base["kwh"].to_numpy() - model.predict(base)
        predicted = model.predict(report) if report.height else report["kwh"].to_numpy()
    result = savings(kind, residuals, model.p, model.cvrmse, predicted, report["kwh"].to_numpy())
    return result, Fit(series.meter_id, kind, start, change, model)
