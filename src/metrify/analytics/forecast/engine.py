"""Forecast one series or many at an issue time, and backtest with rolling origins.

Leakage is ruled out by construction twice over: ``forecast`` drops every reading that
starts at or after the issue time before anything else looks at the history, and the
features (see :mod:`.features`) only read positions known at each row's own issue time.
The backtest trains periodically (every ``retrain_days``, on the issue times before the
training time whose targets had all happened by then: an expanding window capped at
``train_days``), so a year of daily origins costs about 52 fits rather than 365.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from metrify.analytics.forecast.features import Calendar, calendar, design, temperature_on_grid
from metrify.analytics.forecast.horizon import (
    DAY_AHEAD_ISSUE,
    INTRADAY_HOURS,
    Horizon,
    aware,
    backtest_issues,
    check_horizon,
    local_midnight,
    target_window,
    training_issues,
)
from metrify.analytics.forecast.metrics import Score, score, weekly_naive_mae
from metrify.analytics.forecast.models import MODELS, NAIVE, QuantileGBM, check_model, naive_bands
from metrify.analytics.forecast.series import BadSeries, Panel, panel_from_frames
from metrify.analytics.holidays import DEFAULT_CALENDAR

#: how P50 is fitted for one series (forecast, backtest) and for many (the fast path)
SINGLE, MANY = "mean", "median"
CENTERS = ("mean", "median")


def check_center(center: str) -> str:
    """``center`` if it names a way to fit P50, else a ValueError saying which do."""
    if center not in CENTERS:
        raise ValueError(f"center must be one of {', '.join(CENTERS)}; got {center!r}")
    return center


#: days of history a model needs before the issue time
MIN_DAYS = {NAIVE: 7, "lightgbm": 21, "lightgbm_linear": 21}
TRAIN_DAYS = 365
FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "issued_at": pl.Datetime("us", "UTC"),
    "target_ts": pl.Datetime("us", "UTC"),
    "p10": pl.Float64(),
    "p50": pl.Float64(),
    "p90": pl.Float64(),
    "model": pl.String(),
}


@dataclass(frozen=True)
class _Setup:
    panel: Panel
    cal: Calendar
    temp: np.ndarray | None
    horizon: Horizon
    tz: str
    intraday_hours: int


def _targets(setup: _Setup, issue: dt.datetime) -> np.ndarray:
    start, end = target_window(issue, setup.horizon, setup.tz, setup.intraday_hours)
    a = setup.panel.index_at_or_after(start)
    b = setup.panel.index_at_or_after(end)
    return np.arange(max(a, 0), b, dtype=np.int64)


def _prepare(
    panel: Panel,
    issues: Sequence[dt.datetime],
    horizon: Horizon,
    weather: pl.DataFrame | None,
    holidays: str | None,
    tz: str,
    intraday_hours: int,
) -> _Setup:
    """Extend the grid over the last target window and compute calendar and temperature."""
    last_end = max(target_window(i, horizon, tz, intraday_hours)[1] for i in issues)
    panel = panel.extended(panel.index_at_or_after(last_end))
    return _Setup(
        panel=panel,
        cal=calendar(panel, tz, holidays),
        temp=temperature_on_grid(panel, weather),
        horizon=horizon,
        tz=tz,
        intraday_hours=intraday_hours,
    )


def _fit(
    setup: _Setup,
    model: str,
    fit_issue: dt.datetime,
    train_days: int,
    series: np.ndarray | None = None,
    max_rows: int = 400_000,
    center: str = "median",
) -> QuantileGBM:
    """Train on earlier issue times whose targets all started before ``fit_issue``.

    ``center``: how P50 is fitted (see :class:`.models.QuantileGBM`): ``"mean"`` for one
    aggregate series, ``"median"`` for the many-meters fast path.
    """
    panel = setup.panel
    fit_k = panel.available(fit_issue)
    per_day_issues = 1 if setup.horizon == "day-ahead" else max(1, 24 // setup.intraday_hours)
    ks, targets = [], []
    for issue in training_issues(
        fit_issue, setup.horizon, setup.tz, train_days * per_day_issues, setup.intraday_hours
    ):
        k = panel.available(issue)
        if k < 7 * panel.per_day:
            break
        j = _targets(setup, issue)
        j = j[j < fit_k]
        if j.size:
            ks.append(k)
            targets.append(j)
    if not ks:
        raise BadSeries(
            f"not enough history before {fit_issue.isoformat()} to train {model}"
            f" (needs at least {MIN_DAYS[model]} days)"
        )
    train = design(panel, setup.cal, setup.temp, ks, targets, series)
    return QuantileGBM(linear=model == "lightgbm_linear", center=center).fit(
        train, panel.per_day, max_rows=max_rows
    )


def _predict(
    setup: _Setup,
    model: str,
    fitted: QuantileGBM | None,
    issues: Sequence[dt.datetime],
    series: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(series index, issue index, target position, bands (rows, 3)) for ``issues``."""
    panel = setup.panel
    ks = [panel.available(i) for i in issues]
    targets = [_targets(setup, i) for i in issues]
    if model == NAIVE:
        chosen = np.arange(panel.values.shape[0]) if series is None else series
        sub = Panel(
            tuple(panel.names[s] for s in chosen), panel.t0, panel.step_s, panel.values[chosen]
        )
        s_idx, o_idx, t_idx, bands = [], [], [], []
        for o, (k, j) in enumerate(zip(ks, targets, strict=True)):
            b = naive_bands(sub, k, j)  # (S, T, 3)
            s_idx.append(np.repeat(chosen, j.size))
            o_idx.append(np.full(chosen.size * j.size, o))
            t_idx.append(np.tile(j, chosen.size))
            bands.append(b.reshape(-1, 3))
        return (
            np.concatenate(s_idx),
            np.concatenate(o_idx),
            np.concatenate(t_idx),
            np.concatenate(bands),
        )
    assert fitted is not None
    rows = design(panel, setup.cal, setup.temp, ks, targets, series)
    per_issue = np.concatenate([np.full(j.size, o) for o, j in enumerate(targets)])
    s_count = rows.x.shape[0] // max(per_issue.size, 1)
    return rows.series, np.tile(per_issue, s_count), rows.target, fitted.predict(rows)


def _frame(
    setup: _Setup,
    issues: Sequence[dt.datetime],
    model: str,
    s_idx: np.ndarray,
    o_idx: np.ndarray,
    t_idx: np.ndarray,
    bands: np.ndarray,
) -> pl.DataFrame:
    panel = setup.panel
    step_us = panel.step_s * 1_000_000
    t0_us = int(panel.t0.timestamp() * 1_000_000)
    issue_us = np.array([int(i.timestamp() * 1_000_000) for i in issues], dtype=np.int64)
    return pl.DataFrame(
        {
            "series": s_idx.astype(np.int64),
            "issued_at": pl.Series(issue_us[o_idx]).cast(pl.Datetime("us", "UTC")),
            "target_ts": pl.Series(t0_us + t_idx.astype(np.int64) * step_us).cast(
                pl.Datetime("us", "UTC")
            ),
            "p10": bands[:, 0],
            "p50": bands[:, 1],
            "p90": bands[:, 2],
            "model": model,
        }
    ).with_columns(pl.col("p10", "p50", "p90").fill_nan(None))


def _check_length(panel: Panel, issue: dt.datetime, model: str) -> None:
    known = panel.available(issue)
    need = MIN_DAYS[model] * panel.per_day
    if known < need:
        raise BadSeries(
            f"model {model} needs at least {MIN_DAYS[model]} days of history before the issue"
            f" time; the series has {known / panel.per_day:.1f} days"
        )


def forecast(
    history: pl.DataFrame,
    *,
    issue: dt.datetime,
    horizon: Horizon = "day-ahead",
    weather: pl.DataFrame | None = None,
    holidays: str | None = DEFAULT_CALENDAR,
    tz: str = "Europe/London",
    model: str = "metrify",
    intraday_hours: int = INTRADAY_HOURS,
    train_days: int = TRAIN_DAYS,
    center: str = SINGLE,
) -> pl.DataFrame:
    """P10/P50/P90 for every interval the horizon covers, issued at ``issue``.

    ``center``: ``"mean"`` (the default: an aggregate's point forecast) or ``"median"``
    (a single meter, whose skewed load makes the mean a worse point for MAE).

    ``history``: ``ts`` (interval start) and ``value``; readings at or after ``issue`` are
    ignored, so passing a longer history changes nothing. ``weather``: ``ts`` and
    ``temperature_c`` (hourly is fine); only observations before ``issue`` are used.
    Returns ``issued_at, target_ts, p10, p50, p90, model``, one row per target interval.
    """
    issue = aware(issue)
    check_horizon(horizon)
    inner = check_model(model)
    panel = panel_from_frames({"series": history}, until=issue)
    _check_length(panel, issue, inner)
    setup = _prepare(panel, [issue], horizon, _before(weather, issue), holidays, tz, intraday_hours)
    check_center(center)
    fitted = None if inner == NAIVE else _fit(setup, inner, issue, train_days, center=center)
    out = _frame(setup, [issue], model, *_predict(setup, inner, fitted, [issue]))
    return out.drop("series")


def _before(weather: pl.DataFrame | None, issue: dt.datetime) -> pl.DataFrame | None:
    """Weather observed before the issue time (the models use no weather forecast yet)."""
    if weather is None:
        return None
    ts = weather.schema.get("ts")
    if isinstance(ts, pl.Datetime) and ts.time_zone is None:
        return weather.filter(pl.col("ts") < issue.replace(tzinfo=None))
    return weather.filter(pl.col("ts") < issue)


@dataclass
class ManyForecasts:
    """``forecast_many``'s answer: one frame for every series that could be forecast,
    and why each other series could not (id -> message)."""

    forecasts: pl.DataFrame
    failed: dict[str, str] = field(default_factory=dict)


def forecast_many(
    frames: Mapping[str, pl.DataFrame],
    *,
    issue: dt.datetime,
    horizon: Horizon = "day-ahead",
    weather: pl.DataFrame | None = None,
    holidays: str | None = DEFAULT_CALENDAR,
    tz: str = "Europe/London",
    model: str = "metrify",
    intraday_hours: int = INTRADAY_HOURS,
    train_days: int = 28,
    max_train_series: int = 200,
    max_rows: int = 200_000,
) -> ManyForecasts:
    """Forecast many series at one issue time with ONE model trained across them.

    The fast path for a fleet of meters: the features are scale-free, so a single
    LightGBM per quantile, trained on a sample of ``max_train_series`` series over the
    last ``train_days`` issue times, serves every series. Series that cannot be used are
    reported in ``failed`` instead of failing the whole batch. The frame carries
    ``series_id`` in front of the :func:`forecast` columns.
    """
    issue = aware(issue)
    check_horizon(horizon)
    inner = check_model(model)
    good: dict[str, pl.DataFrame] = {}
    failed: dict[str, str] = {}
    for name, frame in frames.items():
        try:
            panel_from_frames({name: frame}, until=issue)
        except BadSeries as exc:
            failed[name] = str(exc)
        else:
            good[name] = frame
    if not good:
        return ManyForecasts(
            pl.DataFrame(schema={"series_id": pl.String, **FORECAST_SCHEMA}), failed
        )
    panel = panel_from_frames(good, until=issue)
    setup = _prepare(panel, [issue], horizon, _before(weather, issue), holidays, tz, intraday_hours)
    known = np.isfinite(
        setup.panel.values[
            :, max(0, panel.available(issue) - 7 * panel.per_day) : panel.available(issue)
        ]
    ).any(axis=1)
    usable = np.flatnonzero(known)
    for s in np.flatnonzero(~known):
        failed[panel.names[s]] = "no readings in the 7 days before the issue time"
    fitted = None
    if inner != NAIVE and usable.size:
        rng = np.random.default_rng(0)
        train = (
            usable
            if usable.size <= max_train_series
            else np.sort(rng.choice(usable, max_train_series, replace=False))
        )
        fitted = _fit(setup, inner, issue, train_days, train, max_rows=max_rows, center=MANY)
    out = _frame(setup, [issue], model, *_predict(setup, inner, fitted, [issue], usable))
    names = pl.Series("series_id", list(panel.names))
    out = out.with_columns(names.gather(out["series"]).alias("series_id")).drop("series")
    return ManyForecasts(out.select("series_id", *FORECAST_SCHEMA), failed)


def backtest(
    history: pl.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    horizon: Horizon = "day-ahead",
    weather: pl.DataFrame | None = None,
    holidays: str | None = DEFAULT_CALENDAR,
    tz: str = "Europe/London",
    models: Sequence[str] | None = None,
    issue_time: dt.time = DAY_AHEAD_ISSUE,
    intraday_hours: int = INTRADAY_HOURS,
    retrain_days: int = 7,
    train_days: int = TRAIN_DAYS,
    center: str = SINGLE,
) -> list[Score]:
    """Rolling-origin backtest over the local days ``start``..``end`` (inclusive).

    Each forecast is issued as :mod:`.horizon` says (day-ahead at ``issue_time`` on the
    day before) with only the data known then; models retrain every ``retrain_days`` on
    the ``train_days`` of issue times before. Every model is scored on the same points:
    those whose actual is known and that every model forecast. MASE is scaled by the
    weekly naive's in-sample MAE before ``start``. ``models`` defaults to
    ``("metrify", "seasonal_naive_weekly")``; ``center`` as in :func:`forecast`.
    """
    check_center(center)
    scores = _backtest_panel(
        {"series": history},
        start=start,
        end=end,
        horizon=horizon,
        weather=weather,
        holidays=holidays,
        tz=tz,
        models=models,
        issue_time=issue_time,
        intraday_hours=intraday_hours,
        retrain_days=retrain_days,
        train_days=train_days,
        max_train_series=1,
        center=center,
    )
    return scores["series"]


def backtest_many(
    frames: Mapping[str, pl.DataFrame],
    *,
    start: dt.date,
    end: dt.date,
    horizon: Horizon = "day-ahead",
    weather: pl.DataFrame | None = None,
    holidays: str | None = DEFAULT_CALENDAR,
    tz: str = "Europe/London",
    models: Sequence[str] | None = None,
    issue_time: dt.time = DAY_AHEAD_ISSUE,
    intraday_hours: int = INTRADAY_HOURS,
    retrain_days: int = 28,
    train_days: int = 28,
    max_train_series: int = 200,
) -> dict[str, list[Score]]:
    """:func:`backtest` of :func:`forecast_many`'s fast path: one model per quantile
    trained across the series (a sample of ``max_train_series``) at each retrain, scored
    per series. Every frame must share one interval length; bad series raise."""
    return _backtest_panel(
        frames,
        start=start,
        end=end,
        horizon=horizon,
        weather=weather,
        holidays=holidays,
        tz=tz,
        models=models,
        issue_time=issue_time,
        intraday_hours=intraday_hours,
        retrain_days=retrain_days,
        train_days=train_days,
        max_train_series=max_train_series,
        center=MANY,
    )


def _backtest_panel(
    frames: Mapping[str, pl.DataFrame],
    *,
    start: dt.date,
    end: dt.date,
    horizon: Horizon,
    weather: pl.DataFrame | None,
    holidays: str | None,
    tz: str,
    models: Sequence[str] | None,
    issue_time: dt.time,
    intraday_hours: int,
    retrain_days: int,
    train_days: int,
    max_train_series: int,
    center: str,
) -> dict[str, list[Score]]:
    check_horizon(horizon)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if retrain_days < 1:
        raise ValueError("retrain_days must be at least 1")
    asked = list(dict.fromkeys(models)) if models else ["metrify", NAIVE]
    for m in asked:
        check_model(m)
    wanted = asked if NAIVE in asked else [*asked, NAIVE]  # the naive is needed for rMAE
    issues = backtest_issues(start, end, horizon, tz, issue_time, intraday_hours)
    panel = panel_from_frames(frames)
    for m in wanted:
        _check_length(panel, issues[0], check_model(m))
    setup = _prepare(panel, issues, horizon, weather, holidays, tz, intraday_hours)
    all_series = np.arange(panel.values.shape[0])
    rng = np.random.default_rng(0)
    frames_by_model: dict[str, pl.DataFrame] = {}
    for m in wanted:
        inner = check_model(m)
        parts = []
        block = 0
        while block < len(issues):
            first = issues[block]
            chunk = [i for i in issues[block:] if i - first < dt.timedelta(days=retrain_days)]
            fitted = None
            if inner != NAIVE:
                train = all_series
                if all_series.size > max_train_series:
                    train = np.sort(rng.choice(all_series, max_train_series, replace=False))
                fitted = _fit(setup, inner, first, train_days, train, center=center)
            parts.append(_frame(setup, chunk, m, *_predict(setup, inner, fitted, chunk)))
            block += len(chunk)
        frames_by_model[m] = pl.concat(parts)
    grid = setup.panel.grid()
    cut = panel.index_at_or_after(local_midnight(start, ZoneInfo(tz)))
    result: dict[str, list[Score]] = {}
    for s, name in enumerate(panel.names):
        actual = pl.DataFrame({"target_ts": grid, "actual": setup.panel.values[s]}).with_columns(
            pl.col("actual").fill_nan(None)
        )
        own = {
            m: f.filter(pl.col("series") == s).drop("series") for m, f in frames_by_model.items()
        }
        # the same points for every model: actual known and every model has a forecast
        common = actual.drop_nulls()
        for frame in own.values():
            common = common.join(
                frame.drop_nulls("p50").select("target_ts"), on="target_ts", how="semi"
            )
        scored = {
            m: f.join(common, on="target_ts", how="inner").sort("target_ts") for m, f in own.items()
        }
        naive = scored[NAIVE]
        naive_mae = (
            float(np.mean(np.abs(naive["actual"].to_numpy() - naive["p50"].to_numpy())))
            if naive.height
            else np.nan
        )
        mase_scale = weekly_naive_mae(panel.values[s, : max(cut, 0)], panel.per_day)
        result[name] = [
            score(m, scored[m], mase_scale=mase_scale, naive_mae=naive_mae) for m in asked
        ]
    return result


__all__ = ["MODELS", "ManyForecasts", "backtest", "backtest_many", "forecast", "forecast_many"]
