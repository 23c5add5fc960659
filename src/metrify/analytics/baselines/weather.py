"""How much of a month's change in use is the weather.

Compare a month with an earlier one (the same month a year before when the data go
back that far, otherwise the month before). Their use per day differs by the actual
change; the daily baseline model, fitted on the year up to the month's end, predicts
use per day from each month's own temperatures, and the difference between those two
predictions is the part the weather explains (the same household, only the weather
changed). The model is additive, so the weather's part is exactly the difference of
its degree-day terms ``w(T)``, each day's from its own segment (season and day type)
when the model is split; the calendar's part is the difference of the rest of the
model, ``c``: the intercepts and weekend shifts (one month has more weekend days than
the other; a split model's winter intercept is not its summer one: the lights, the
holidays). What is left is everything else: behaviour, appliances, occupancy::

    actual   = mean use per day in month   - mean use per day in against
    weather  = mean w(T) per day in month  - mean w(T) per day in against
    calendar = mean c per day in month     - mean c per day in against
               (unsplit: weekend shift x (weekend share of month - of against))
    other    = actual - weather - calendar

Per day, so that months of 30 and 31 days compare; the kWh figures are those times the
month's days. For a group of meters (a segment, the fleet) each meter's model answers
for its own use and the per-day figures add up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from metrify.analytics.baselines.daily import DailyModel, day_calendar

__all__ = ["WeatherEffect", "combine", "month_bounds", "weather_effect"]


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """``YYYY-MM`` -> (first day, first day of the next month); ValueError otherwise."""
    try:
        first = dt.datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"month {month!r}: use YYYY-MM") from None
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


@dataclass(frozen=True)
class WeatherEffect:
    """The decomposition of one month's change against another, per day and in kWh over
    the month (``*_kwh`` = per day times ``days``)."""

    month: str
    against: str
    meters: int
    days: int
    actual_per_day: float
    actual_against_per_day: float
    change_per_day: float
    weather_per_day: float
    calendar_per_day: float
    other_per_day: float
    mean_temperature_c: float
    mean_temperature_against_c: float

    @property
    def change_kwh(self) -> float:
        return self.change_per_day * self.days

    @property
    def weather_kwh(self) -> float:
        return self.weather_per_day * self.days

    @property
    def calendar_kwh(self) -> float:
        return self.calendar_per_day * self.days

    @property
    def other_kwh(self) -> float:
        return self.other_per_day * self.days

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out |= {
            "change_kwh": self.change_kwh,
            "weather_kwh": self.weather_kwh,
            "calendar_kwh": self.calendar_kwh,
            "other_kwh": self.other_kwh,
            "weather_share": (
                self.weather_per_day / self.change_per_day if self.change_per_day else None
            ),
        }
        return out


def _in(days: pl.DataFrame, bounds: tuple[dt.date, dt.date]) -> pl.DataFrame:
    return days.filter((pl.col("day") >= bounds[0]) & (pl.col("day") < bounds[1]))


def weather_effect(
    model: DailyModel, days: pl.DataFrame, month: str, against: str
) -> WeatherEffect:
    """Decompose ``month``'s change against ``against`` (both ``YYYY-MM``) for one meter,
    from its daily frame (``day``, ``kwh``, ``temperature_c``) and its fitted model.

    Raises ValueError when either month has no day with use and temperature, or when
    ``against`` is ``month`` itself."""
    if month_bounds(against) == month_bounds(month):
        # a month against itself decomposes nothing: every part is zero by construction,
        # which printed as a finding ("weather +0.0 kWh")
        raise ValueError(f"against {against} is the month itself: compare with another month")
    now, then = _in(days, month_bounds(month)), _in(days, month_bounds(against))
    for name, part in ((month, now), (against, then)):
        if part.is_empty():
            raise ValueError(f"no day of {name} has both use and a temperature")
    first, nxt = month_bounds(month)
    t_now = now["temperature_c"].to_numpy()
    t_then = then["temperature_c"].to_numpy()
    actual_now = float(now["kwh"].mean())  # type: ignore[arg-type]
    actual_then = float(then["kwh"].mean())  # type: ignore[arg-type]
    (we_now, m_now), (we_then, m_then) = day_calendar(now), day_calendar(then)
    weather = float(
        np.mean(model.weather_part(t_now, we_now, m_now))
        - np.mean(model.weather_part(t_then, we_then, m_then))
    )
    calendar = float(
        np.mean(model.base_part(we_now, m_now)) - np.mean(model.base_part(we_then, m_then))
    )
    change = actual_now - actual_then
    return WeatherEffect(
        month=month,
        against=against,
        meters=1,
        days=(nxt - first).days,
        actual_per_day=actual_now,
        actual_against_per_day=actual_then,
        change_per_day=change,
        weather_per_day=weather,
        calendar_per_day=calendar,
        other_per_day=change - weather - calendar,
        mean_temperature_c=float(np.mean(t_now)),
        mean_temperature_against_c=float(np.mean(t_then)),
    )


def combine(effects: list[WeatherEffect]) -> WeatherEffect:
    """The effect for a group: per-day figures summed over its meters, temperatures
    averaged. ValueError on an empty list or on mixed months."""
    if not effects:
        raise ValueError("no meter had the data for both months")
    if len({(e.month, e.against) for e in effects}) != 1:
        raise ValueError("the effects compare different months")
    head = effects[0]

    def total(name: str) -> float:
        return float(sum(getattr(e, name) for e in effects))

    return WeatherEffect(
        month=head.month,
        against=head.against,
        meters=sum(e.meters for e in effects),
        days=head.days,
        actual_per_day=total("actual_per_day"),
        actual_against_per_day=total("actual_against_per_day"),
        change_per_day=total("change_per_day"),
        weather_per_day=total("weather_per_day"),
        calendar_per_day=total("calendar_per_day"),
        other_per_day=total("other_per_day"),
        mean_temperature_c=float(np.mean([e.mean_temperature_c for e in effects])),
        mean_temperature_against_c=float(np.mean([e.mean_temperature_against_c for e in effects])),
    )
