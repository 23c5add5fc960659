"""Weather-normalised baselines: CalTRACK's daily degree-day model with a balance-point
search, the hourly time-of-week-and-temperature model, their CV(RMSE) and NMBE, and
what they answer: how much of a month's change is weather, and the savings after a
change, with ASHRAE Guideline 14's uncertainty.

Frames in, results out; reading the series and storing the fits is the callers' job.
"""

from metrify.analytics.baselines.daily import DailyModel, DailySegment, fit_daily
from metrify.analytics.baselines.hourly import HourlyModel, fit_hourly
from metrify.analytics.baselines.meter import (
    Fit,
    MeterSeries,
    ModelKind,
    fit,
    one_thread,
    savings_after,
    weather_effect_of,
)
from metrify.analytics.baselines.metrics import cvrmse, nmbe
from metrify.analytics.baselines.savings import Savings
from metrify.analytics.baselines.weather import WeatherEffect, combine, month_bounds

__all__ = [
    "DailyModel",
    "DailySegment",
    "Fit",
    "HourlyModel",
    "MeterSeries",
    "ModelKind",
    "Savings",
    "WeatherEffect",
    "combine",
    "cvrmse",
    "fit",
    "fit_daily",
    "fit_hourly",
    "month_bounds",
    "nmbe",
    "one_thread",
    "savings_after",
    "weather_effect_of",
]
