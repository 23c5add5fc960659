"""Probabilistic demand forecasts (P10/P50/P90) and their rolling-origin backtests.

Frames in, frames out: the CLI, API and batch jobs read a series from the stores and
call :func:`forecast` (one series), :func:`forecast_many` (a fleet of meters, one model
trained across them) or :func:`backtest`; what the horizons mean is in
:mod:`metrify.analytics.forecast.horizon`, how scores are defined in
:mod:`metrify.analytics.forecast.metrics`.
"""

from metrify.analytics.forecast.engine import (
    ManyForecasts,
    backtest,
    backtest_many,
    forecast,
    forecast_many,
)
from metrify.analytics.forecast.horizon import DAY_AHEAD_ISSUE, HORIZONS, INTRADAY_HOURS, Horizon
from metrify.analytics.forecast.metrics import QUANTILES, Score
from metrify.analytics.forecast.models import MODELS
from metrify.analytics.forecast.series import BadSeries

__all__ = [
    "DAY_AHEAD_ISSUE",
    "HORIZONS",
    "INTRADAY_HOURS",
    "MODELS",
    "QUANTILES",
    "BadSeries",
    "Horizon",
    "ManyForecasts",
    "Score",
    "backtest",
    "backtest_many",
    "forecast",
    "forecast_many",
]
