"""The forecast service: read a subject's history from the store, hand it to the models,
store what comes back. Shared by ``metrify forecast``, the ``forecast`` batch job and
the benchmark, so all three forecast alike.

The models (:mod:`metrify.analytics.forecast`) are pure computation on frames; this
module decides what they are given: the history before the issue time (a lookback
long enough for weekly lags, yearly for groups whose seasons matter), the weather of
the linked station over the history and the target day (observed weather standing in
for a weather forecast), the subject's local zone and its holidays.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from metrify.analytics.holidays import DEFAULT_CALENDAR
from metrify.stores import forecasts, series
from metrify.stores.pools import Connection
from metrify.stores.series import Described, Subject

__all__ = [
    "DEFAULT_MODEL",
    "ForecastError",
    "Issued",
    "backtest_subject",
    "default_issue",
    "describe",
    "forecast_groups",
    "forecast_meters",
    "forecast_subject",
]

#: the model stored when none is named
DEFAULT_MODEL: Final = "metrify"
#: how far back a forecast reads: eight weeks for a meter (its two-week lags and a few
#: weeks to learn from; 3,500 meters x a year would be 61M buckets); for a group or node
#: forecast alone, the year of issue times the model trains on and its lags
LOOKBACK: Final = {"meter": dt.timedelta(days=56)}
GROUP_LOOKBACK: Final = dt.timedelta(days=400)
#: what the pooled forecast of the groups reads (it trains on the last 56 issue times)
POOLED_LOOKBACK: Final = dt.timedelta(days=84)
#: weather read past the issue time: the whole target day and then some
WEATHER_AHEAD: Final = dt.timedelta(days=3)
HALF_HOUR: Final = dt.timedelta(minutes=30)

Progress = Callable[[int, int], None]


def _models() -> Any:
    """The models package, imported when first used: it brings LightGBM and scikit-learn
    along, which every other ``metrify`` command (and ``--help``) should not pay for."""
    from metrify.analytics import forecast

    return forecast


class ForecastError(ValueError):
    """A forecast that cannot be made from what is stored (an unknown subject, no or
    too little history): the caller's to fix, reported as one line."""


def lookback(kind: str) -> dt.timedelta:
    return LOOKBACK.get(kind, GROUP_LOOKBACK)


def _none_before(issue: dt.datetime, span: dt.timedelta) -> str:
    """Why a subject was not forecast: only ``span`` before the issue is read, so "no
    stored history before 2024-12-31" was wrong for GB demand stored for 2011-2014."""
    return f"no stored history in the {span.days} days before {issue.isoformat()}"


def describe(conn: Connection, subject: Subject) -> Described:
    try:
        return series.describe(conn, subject)
    except series.UnknownSubject as exc:
        raise ForecastError(str(exc)) from None


def zone_of(described: Described, fleet_tz: str) -> str:
    """The zone whose local days a forecast of the subject follows."""
    return described.zone or fleet_tz


def default_issue(
    conn: Connection, described: Described, now: dt.datetime | None = None
) -> dt.datetime:
    """Now, or the end of the stored history when that is earlier (a series loaded from
    files of 2013 is forecast from where it ends), on a half-hour boundary."""
    now = now or dt.datetime.now(dt.UTC)
    stored = series.span(conn, described)
    if stored is None:
        raise ForecastError(f"{described.subject} has no stored history")
    issue = min(now, stored[1])
    return issue - (issue - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) % HALF_HOUR


@dataclass
class Issued:
    """One stored forecast issue of one subject."""

    subject: Subject
    issued_at: dt.datetime
    horizon: str
    frame: pl.DataFrame
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        targets = self.frame["target_ts"]
        return {
            "subject_type": self.subject.kind,
            "subject_id": self.subject.key,
            "horizon": self.horizon,
            "issued_at": self.issued_at.isoformat(),
            "models": sorted(set(self.frame["model"].to_list())),
            "targets": self.frame.filter(pl.col("model") == self.frame["model"][0]).height,
            "first_target": targets.min().isoformat() if targets.len() else None,  # type: ignore[union-attr]
            "last_target": targets.max().isoformat() if targets.len() else None,  # type: ignore[union-attr]
            "rows": self.frame.height,
            "seconds": round(self.seconds, 3),
        }


def _tag(frame: pl.DataFrame, subject: Subject, horizon: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(subject.kind).alias("subject_type"),
        pl.lit(subject.key).alias("subject_id"),
        pl.lit(horizon).alias("horizon"),
    ).select(forecasts.COLUMNS)


def forecast_subject(
    conn: Connection,
    subject: Subject,
    *,
    horizon: str = "day-ahead",
    issue: dt.datetime | None = None,
    model_names: Sequence[str] = (DEFAULT_MODEL,),
    fleet_tz: str = "UTC",
    holidays: str = DEFAULT_CALENDAR,
    store: bool = True,
) -> Issued:
    """Forecast one subject from what is stored before ``issue`` (default:
    :func:`default_issue`) with each named model, and store the issue (replacing an
    earlier run of the same issue)."""
    began = time.perf_counter()
    described = describe(conn, subject)
    issue = issue or default_issue(conn, described)
    history = series.history(conn, described, issue - lookback(subject.kind), issue)
    if history.is_empty():
        raise ForecastError(f"{subject} has {_none_before(issue, lookback(subject.kind))}")
    weather = series.weather(
        conn, described.station, issue - lookback(subject.kind), issue + WEATHER_AHEAD
    )
    frames = []
    models = _models()
    for name in model_names:
        try:
            made = models.forecast(
                history,
                issue=issue,
                horizon=horizon,
                weather=weather,
                holidays=holidays,
                tz=zone_of(described, fleet_tz),
                model=name,
                # a meter's skewed load: the median; an aggregate's: the mean
                center="median" if subject.kind == "meter" else "mean",
            )
        except ValueError as exc:  # BadSeries, or an unknown model or horizon
            raise ForecastError(f"{subject}: {exc}") from None
        frames.append(made)
    out = _tag(pl.concat(frames, how="vertical_relaxed"), subject, horizon)
    if store:
        forecasts.write(conn, out)
    return Issued(subject, issue, horizon, out, time.perf_counter() - began)


@dataclass
class Batch:
    """What a forecast of many subjects did: rows stored, subjects forecast, and the
    ones skipped with why (too short a history, say), by subject."""

    rows: int = 0
    done: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: seconds spent reading histories, in the models and writing forecasts
    phases: dict[str, float] = field(default_factory=dict)

    def timed(self, phase: str, since: float) -> float:
        """Add the time since ``since`` to ``phase``; returns now."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "subjects": self.done,
            "skipped": len(self.skipped),
            "skipped_first": dict(list(self.skipped.items())[:5]),
            "seconds": round(self.seconds, 3),
            "phases_s": {k: round(v, 3) for k, v in self.phases.items()},
        }


def forecast_groups(
    conn: Connection,
    *,
    issue: dt.datetime,
    horizon: str = "day-ahead",
    model_names: Sequence[str] = (DEFAULT_MODEL,),
    fleet_tz: str = "UTC",
    holidays: str = DEFAULT_CALENDAR,
    pooled: bool = True,
    progress: Progress | None = None,
) -> Batch:
    """Forecast the fleet and every grid node at ``issue``; a subject the models cannot
    forecast (no history yet) is skipped and named, the others are stored.

    ``pooled`` (the job's way): one model trained across the groups that share a weather
    station (:func:`metrify.analytics.forecast.forecast_many`; its features are
    scale-free, so a national MW series and a feeder's kWh can share it); otherwise one
    model per subject trained on its own year (:func:`forecast_subject`), which costs a
    model fit per node: see bench/results/forecast-run-2026-12-06.md for both."""
    if pooled:
        return _pooled_groups(
            conn,
            issue=issue,
            horizon=horizon,
            model_names=model_names,
            fleet_tz=fleet_tz,
            holidays=holidays,
        )
    began = time.perf_counter()
    out = Batch()
    subjects = series.group_subjects(conn)
    for i, subject in enumerate(subjects):
        try:
            issued = forecast_subject(
                conn,
                subject,
                horizon=horizon,
                issue=issue,
                model_names=model_names,
                fleet_tz=fleet_tz,
                holidays=holidays,
            )
        except ForecastError as exc:
            out.skipped[str(subject)] = str(exc)
        else:
            out.rows += issued.frame.height
            out.done += 1
        if progress is not None:
            progress(i + 1, len(subjects))
    out.seconds = time.perf_counter() - began
    return out


def _pooled_groups(
    conn: Connection,
    *,
    issue: dt.datetime,
    horizon: str,
    model_names: Sequence[str],
    fleet_tz: str,
    holidays: str,
) -> Batch:
    began = time.perf_counter()
    out = Batch()
    models = _models()
    by_station: dict[str | None, dict[str, pl.DataFrame]] = {}
    named: dict[str, Subject] = {}
    for subject in series.group_subjects(conn):
        described = series.describe(conn, subject)
        history = series.history(conn, described, issue - POOLED_LOOKBACK, issue)
        if history.is_empty():
            out.skipped[str(subject)] = _none_before(issue, POOLED_LOOKBACK)
            continue
        name = f"{subject.kind}:{subject.key}"
        named[name] = subject
        by_station.setdefault(described.station, {})[name] = history
    frames = []
    mark = out.timed("read", began)
    for station, histories in by_station.items():
        weather = series.weather(conn, station, issue - POOLED_LOOKBACK, issue + WEATHER_AHEAD)
        mark = out.timed("read", mark)
        for model in model_names:
            try:
                made = models.forecast_many(
                    histories,
                    issue=issue,
                    horizon=horizon,
                    weather=weather,
                    holidays=holidays,
                    tz=fleet_tz,
                    model=model,
                )
            except models.BadSeries:
                # refused as a whole (series of different steps, say): one by one
                made = _one_by_one(models, histories, issue, horizon, weather, holidays,
                                   fleet_tz, model)  # fmt: skip
            except ValueError as exc:  # an unknown model or horizon: the caller's
                raise ForecastError(str(exc)) from None
            out.skipped.update({str(named[k]): why for k, why in made.failed.items()})
            kinds = pl.Series([named[k].kind for k in made.forecasts["series_id"]], dtype=pl.String)
            keys = pl.Series([named[k].key for k in made.forecasts["series_id"]], dtype=pl.String)
            frames.append(
                made.forecasts.with_columns(
                    subject_type=kinds, subject_id=keys, horizon=pl.lit(horizon)
                ).select(forecasts.COLUMNS)
            )
        mark = out.timed("model", mark)
    if frames:
        made_all = pl.concat(frames, how="vertical_relaxed")
        out.rows = forecasts.write(conn, made_all)
        out.done = made_all.select("subject_type", "subject_id").n_unique()
    out.timed("write", mark)
    out.seconds = time.perf_counter() - began
    return out


def _one_by_one(
    models: Any,
    histories: dict[str, pl.DataFrame],
    issue: dt.datetime,
    horizon: str,
    weather: pl.DataFrame | None,
    holidays: str,
    tz: str,
    model: str,
) -> Any:
    """:func:`forecast_many`'s answer made series by series, for a group refused whole."""
    frames, failed = [], {}
    for name, history in histories.items():
        try:
            one = models.forecast_many(
                {name: history},
                issue=issue,
                horizon=horizon,
                weather=weather,
                holidays=holidays,
                tz=tz,
                model=model,
            )
        except models.BadSeries as exc:
            failed[name] = str(exc)
            continue
        frames.append(one.forecasts)
        failed.update(one.failed)
    when = pl.Datetime("us", "UTC")
    schema = {"series_id": pl.String(), "issued_at": when, "target_ts": when}
    schema |= {c: pl.Float64() for c in ("p10", "p50", "p90")} | {"model": pl.String()}
    joined = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return models.ManyForecasts(joined, failed)


def forecast_meters(
    conn: Connection,
    *,
    issue: dt.datetime,
    meters: list[str] | None = None,
    horizon: str = "day-ahead",
    model_names: Sequence[str] = (DEFAULT_MODEL,),
    fleet_tz: str = "UTC",
    holidays: str = DEFAULT_CALENDAR,
    progress: Progress | None = None,
) -> Batch:
    """Forecast many meters (every registered one when ``meters`` is None) at ``issue``:
    one COPY of their histories, one model per (zone, weather station) trained across
    the meters that share them (:func:`metrify.analytics.forecast.forecast_many`; a
    fleet is mostly one such group; meters of another interval form their own), one
    COPY of every forecast. Meters whose history the models cannot use are skipped and
    named (a whole group, if the models refuse it as a whole); the rest are stored."""
    began = time.perf_counter()
    out = Batch()
    models = _models()
    ids = meters if meters is not None else series.meter_ids(conn)
    groups = _meter_groups(conn, ids, fleet_tz)
    histories = series.meter_histories(conn, meters, issue - lookback("meter"), issue)
    by_meter = {
        str(k[0]): f.drop("meter_id")
        for k, f in histories.partition_by("meter_id", as_dict=True).items()
    }
    del histories
    for meter in ids:
        if meter not in by_meter:
            out.skipped[meter] = _none_before(issue, lookback("meter"))
    frames: list[pl.DataFrame] = []
    done = 0
    mark = out.timed("read", began)
    for (zone, station, _), members in groups.items():
        frames_in = {m: by_meter[m] for m in members if m in by_meter}
        if not frames_in:
            continue
        weather = series.weather(conn, station, issue - lookback("meter"), issue + WEATHER_AHEAD)
        mark = out.timed("read", mark)
        for name in model_names:
            try:
                made = models.forecast_many(
                    frames_in,
                    issue=issue,
                    horizon=horizon,
                    weather=weather,
                    holidays=holidays,
                    tz=zone,
                    model=name,
                )
            except models.BadSeries as exc:  # the group as a whole: its meters wait
                out.skipped.update(dict.fromkeys(frames_in, str(exc)))
                break
            except ValueError as exc:  # an unknown model or horizon: the caller's
                raise ForecastError(str(exc)) from None
            out.skipped.update(made.failed)
            frames.append(
                made.forecasts.rename({"series_id": "subject_id"})
                .with_columns(
                    pl.lit("meter").alias("subject_type"), pl.lit(horizon).alias("horizon")
                )
                .select(forecasts.COLUMNS)
            )
        done += len(frames_in)
        mark = out.timed("model", mark)
        if progress is not None:
            progress(done, len(ids))
    if frames:
        made_all = pl.concat(frames, how="vertical_relaxed")
        out.rows = forecasts.write(conn, made_all)
        out.done = made_all["subject_id"].n_unique()
    out.timed("write", mark)
    if progress is not None:
        progress(len(ids), len(ids))
    out.seconds = time.perf_counter() - began
    return out


def _meter_groups(
    conn: Connection, ids: list[str], fleet_tz: str
) -> dict[tuple[str, str | None, int], list[str]]:
    """The meters by (zone, weather station, step of their series): each group is
    forecast by one model, which needs one step. A meter of 30 minutes or less has a
    value every 30-minute bucket; an hourly one, every other bucket (its readings count
    in the bucket of their start), so it goes with the hourly ones."""
    places = series.meter_places(conn, ids)
    groups: dict[tuple[str, str | None, int], list[str]] = {}
    for meter in ids:
        zone, station, interval = places.get(meter, (None, None, None))
        step = max(1800, interval or 1800)
        groups.setdefault((zone or fleet_tz, station, step), []).append(meter)
    return groups


def backtest_subject(
    conn: Connection,
    subject: Subject,
    *,
    start: dt.date,
    end: dt.date,
    horizon: str = "day-ahead",
    model_names: Sequence[str] | None = None,
    fleet_tz: str = "UTC",
    holidays: str = DEFAULT_CALENDAR,
) -> list[dict[str, Any]]:
    """Rolling-origin backtest of the subject over the local days [start, end], every
    forecast made from the stored data before its issue time; one dict of scores per
    model (:meth:`metrify.analytics.forecast.Score.as_dict`)."""
    if end < start:
        raise ForecastError("--to must not be before --from")
    described = describe(conn, subject)
    zone = zone_of(described, fleet_tz)
    # one subject: read all it may learn from, whatever its kind
    first = dt.datetime.combine(start, dt.time(), dt.UTC) - GROUP_LOOKBACK
    last = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), dt.UTC)
    history = series.history(conn, described, first, last)
    if history.is_empty():
        raise ForecastError(f"{subject} has no stored history up to {end}")
    weather = series.weather(conn, described.station, first, last + WEATHER_AHEAD)
    models = _models()
    try:
        scores = models.backtest(
            history,
            start=start,
            end=end,
            horizon=horizon,
            weather=weather,
            holidays=holidays,
            tz=zone,
            models=list(model_names) if model_names else None,
            center="median" if subject.kind == "meter" else "mean",
        )
    except ValueError as exc:  # BadSeries, or an unknown model or horizon
        raise ForecastError(f"{subject}: {exc}") from None
    return [s.as_dict() for s in scores]
