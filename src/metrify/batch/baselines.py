"""The baselines job, and reading a subject's series for the baseline questions.

Each day, every meter linked to a weather station gets CalTRACK's daily model and the
hourly time-of-week-and-temperature model fitted on the year up to that day (the
365 local days ending with it), stored in ``baseline_fits`` with CV(RMSE) and NMBE.
A meter whose year holds too little data is counted and skipped, not failed: a new
meter has no baseline yet. The CLI (``metrify baseline``) and the API read series here
too, so the three answer from the same data.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import polars as pl

from metrify.analytics import baselines
from metrify.analytics.baselines import MeterSeries, ModelKind, prepare
from metrify.batch.context import JobContext, Outcome
from metrify.stores import baselines as store
from metrify.stores.baselines import LinkedMeter
from metrify.stores.pools import Connection

__all__ = [
    "MODELS",
    "NotAnswerable",
    "fit_all",
    "fit_meter",
    "run",
    "savings",
    "series",
    "weather_effect",
]

MODELS: tuple[ModelKind, ...] = ("daily", "hourly")
#: meters read and fitted at a time
CHUNK = 200
#: days of weather read before and after a period: a local day starts up to 14 hours
#: either side of its UTC midnight
_PAD = dt.timedelta(days=1)


def series(
    conn: Connection, linked: list[LinkedMeter], start: dt.date, end: dt.date
) -> Iterator[MeterSeries]:
    """Each meter's use and its station's weather over local days ``[start, end)`` (read
    with a day's margin either side; the models cut the local days themselves)."""
    if not linked:
        return
    lo = dt.datetime.combine(start, dt.time(), dt.UTC) - _PAD
    hi = dt.datetime.combine(end, dt.time(), dt.UTC) + _PAD
    use = store.usage(conn, [m.meter_id for m in linked], lo, hi)
    weather = store.temperatures(conn, sorted({m.station_id for m in linked}), lo, hi)
    by_meter = {k[0]: v for k, v in use.partition_by("meter_id", as_dict=True).items()}
    # each station's hourly temperatures, prepared once for all its meters
    by_station = {
        k[0]: prepare.hourly_temperature(v.select("ts", "temperature_c"))
        for k, v in weather.partition_by("station_id", as_dict=True).items()
    }
    empty_use = use.clear()
    empty_weather = prepare.hourly_temperature(weather.clear().select("ts", "temperature_c"))
    for meter in linked:
        yield MeterSeries(
            meter.meter_id,
            meter.timezone,
            by_meter.get(meter.meter_id, empty_use).select("ts", "kwh"),
            by_station.get(meter.station_id, empty_weather),
            meter.interval_s,
            weather_is_hourly=True,
        )


def fit_all(
    conn: Connection,
    linked: list[LinkedMeter],
    start: dt.date,
    end: dt.date,
    models: tuple[ModelKind, ...] = MODELS,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Fit ``models`` for every meter over ``[start, end)``: the fits' summaries, and
    per meter and model that could not be fitted, why."""
    done: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with baselines.one_thread():
        # a year of a fleet's readings does not fit in memory at once: CHUNK meters at
        # a time (a year of 200 half-hourly meters is 3.5M rows)
        for first in range(0, len(linked), CHUNK):
            for one in series(conn, linked[first : first + CHUNK], start, end):
                for kind in models:
                    try:
                        done.append(baselines.fit(one, kind, start, end).summary())
                    except ValueError as exc:
                        skipped[f"{one.meter_id}/{kind}"] = str(exc)
    return done, skipped


def run(ctx: JobContext) -> Outcome:
    end = ctx.interval.day + dt.timedelta(days=1)
    start = end - dt.timedelta(days=baselines.meter.BASELINE_DAYS)
    linked, unlinked = store.linked_meters(
        ctx.conn, fleet=True, default_tz=ctx.settings.fleet_timezone
    )
    done, skipped = fit_all(ctx.conn, linked, start, end)
    store.save_fits(ctx.conn, done)
    cv = pl.DataFrame(
        [{"model": d["model"], "cvrmse": d["cvrmse"]} for d in done],
        schema={"model": pl.Utf8, "cvrmse": pl.Float64},
    )
    medians = {
        str(m): float(v)
        for m, v in cv.group_by("model").agg(pl.col("cvrmse").median()).iter_rows()
        if v is not None
    }
    return Outcome(
        rows=len(done),
        details={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "meters": len(linked),
            "without_station": len(unlinked),
            "fits": len(done),
            "skipped": len(skipped),
            "median_cvrmse": medians,
        },
    )


# -- the questions ``metrify baseline`` and ``GET /v1/baselines/...`` answer ----------


class NotAnswerable(ValueError):
    """The subject cannot be answered: unknown, without a station or without data."""


P = ParamSpec("P")
R = TypeVar("R")


def _in_calendar(func: Callable[P, R]) -> Callable[P, R]:
    """A period reaching past year 1 or 9999 (a baseline a year before 0001-06) is the
    asker's mistake, not a crash."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except OverflowError:
            raise NotAnswerable("the period reaches outside the calendar (years 1-9999)") from None

    return wrapper


def _subject(
    conn: Connection,
    meter: str | None,
    segment: str | None,
    fleet: bool,
    default_tz: str,
) -> list[LinkedMeter]:
    if sum((meter is not None, segment is not None, fleet)) != 1:
        raise NotAnswerable("give exactly one of a meter, a segment or the fleet")
    linked, unlinked = store.linked_meters(
        conn, meter=meter, segment=segment, fleet=fleet, default_tz=default_tz
    )
    if not linked:
        # one meter is named as every other command names it ("no meter X", as energy and
        # forecast say), not as a group ("meter X has no meters")
        if meter is not None:
            if unlinked:
                raise NotAnswerable(
                    f"meter {meter} is not linked to a weather station"
                    " (give it a station_id: metrify ingest meters)"
                )
            raise NotAnswerable(f"no meter {meter}")
        what = f"segment {segment}" if segment else "the fleet"
        if unlinked:
            raise NotAnswerable(f"{what} has no meter linked to a weather station")
        raise NotAnswerable(f"{what} has no meters")
    return linked


@_in_calendar
def fit_meter(
    conn: Connection,
    meter: str,
    models: tuple[ModelKind, ...],
    start: dt.date | None,
    end: dt.date | None,
    default_tz: str,
) -> list[dict[str, Any]]:
    """Fit ``models`` for one meter over ``[start, end)``; by default the 365 days up
    to its newest reading. NotAnswerable when nothing could be fitted."""
    linked = _subject(conn, meter, None, False, default_tz)
    if end is None:
        newest = store.last_day(conn, [meter])
        if newest is None:
            raise NotAnswerable(f"meter {meter} has no readings")
        end = newest + dt.timedelta(days=1)
    start = start or end - dt.timedelta(days=baselines.meter.BASELINE_DAYS)
    if end <= start:
        raise NotAnswerable("the period's end must come after its start")
    done, skipped = fit_all(conn, linked, start, end, models)
    if not done:
        raise NotAnswerable("; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return done


@_in_calendar
def weather_effect(
    conn: Connection,
    month: str,
    against: str | None,
    *,
    meter: str | None = None,
    segment: str | None = None,
    fleet: bool = False,
    default_tz: str = "UTC",
) -> dict[str, Any]:
    """How much of ``month``'s change against ``against`` is weather, for a meter or
    summed over a segment's or the fleet's meters (those with the data for both)."""
    first, nxt = baselines.month_bounds(month)
    if against is not None and baselines.month_bounds(against) == (first, nxt):
        # checked before any meter is read; the model's decomposition refuses it too
        raise ValueError(f"against {against} is the month itself: compare with another month")
    linked = _subject(conn, meter, segment, fleet, default_tz)
    earliest = min(first - dt.timedelta(days=baselines.meter.BASELINE_DAYS), first)
    effects, skipped = [], {}
    with baselines.one_thread():
        for first_meter in range(0, len(linked), CHUNK):
            chunk = linked[first_meter : first_meter + CHUNK]
            for one in series(conn, chunk, earliest - dt.timedelta(days=31), nxt):
                try:
                    effects.append(baselines.weather_effect_of(one, month, against)[0])
                except ValueError as exc:
                    skipped[one.meter_id] = str(exc)
    if not effects:
        raise NotAnswerable("; ".join(f"{k}: {v}" for k, v in skipped.items()))
    # a group compares the months its meters compare (they share a default): keep the
    # most common pair so the sum is over one comparison
    pairs = [(e.month, e.against) for e in effects]
    pair = max(set(pairs), key=pairs.count)
    kept = [e for e in effects if (e.month, e.against) == pair]
    total = baselines.combine(kept)
    return total.as_dict() | {
        "subject": meter or segment or "fleet",
        "meters_skipped": len(linked) - len(kept),
    }


@_in_calendar
def savings(
    conn: Connection,
    meter: str,
    change: dt.date,
    until: dt.date | None,
    model: ModelKind,
    baseline_days: int,
    default_tz: str,
) -> dict[str, Any]:
    """Savings from ``change`` against the baseline of the ``baseline_days`` before it."""
    if baseline_days < 30:
        raise NotAnswerable("the baseline period needs at least 30 days")
    linked = _subject(conn, meter, None, False, default_tz)
    end = until or change + dt.timedelta(days=365)
    if end <= change:
        raise NotAnswerable("the reporting period's end must come after the change")
    start = change - dt.timedelta(days=baseline_days)
    one = next(series(conn, linked, start, end))
    with baselines.one_thread():
        result, fitted = baselines.savings_after(one, change, model, end, baseline_days)
    return {
        "meter_id": meter,
        "change": change.isoformat(),
        "baseline_from": start.isoformat(),
        "reporting_to": end.isoformat(),
        **result.as_dict(),
        "baseline": fitted.summary(),
    }
