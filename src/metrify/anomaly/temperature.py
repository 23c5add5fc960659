"""Temperature adjustment of a meter's expected level, where the meter is weather-sensitive.

Why: a home heated by electricity draws more on a cold day. Its hour-of-week baseline
remembers a few weeks, so it expects the weather of those weeks; a cold snap then looks
like new load, and the first warm spell of spring like a bypass. The adjustment makes the
expected level follow the weather, and only for meters whose use is measurably driven by
it: for every other meter nothing changes.

The model, per meter: ``expected = level(hour of week) + k * x`` where ``x`` is the heating
degrees of the reading's hour (``max(0, heating_base_c - T)``, T the meter's station's
observation for that hour) minus the heating degrees the baseline was learnt at (the
station's mean over the ``memory_weeks`` before the batch, at the same hour of the day), and
``k`` (kW per degree) is the slope of the meter's residuals (observed minus baseline) on ``x``.

``k`` is learnt incrementally, in the state the detector already keeps: decayed sums of a
weighted least-squares fit of daily residuals (``n, Σx, Σy, Σxx, Σxy, Σyy``; a day weighs 1,
a part of a day its share) kept in two extra slots of the meter's profile arrays (hours
168 and 169, after the 168 hours of the week). Robust: residuals are clipped to 3 sigma of
the current fit before they are added (a day away or a party does not bend the slope), rows
the detectors flag never teach it, and the sums fade with ``temp_half_life_days``.

A meter counts as weather-sensitive when the fit rests on at least ``temp_min_days`` days,
its slope is positive (heating) and its t-statistic is at least ``temp_min_t``. Until then
(and for a meter without a station, or an hour without an observation) ``k`` is zero.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Final

import polars as pl

from metrify.anomaly.state import pack_slots, unpack_slots
from metrify.contracts.records import TS
from metrify.settings.anomaly import AnomalyConfig

#: profile rows (``how``) that hold the temperature fit: (n, Σx, Σy) and (Σxx, Σxy, Σyy)
SLOT_A: Final = 168
SLOT_B: Final = 169
#: hourly observations per station: the shape the detectors take
HOURLY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "station_id": pl.String(),
    "ts": TS,
    "temperature_c": pl.Float64(),
}
_FIT = ("t_n", "t_sx", "t_sy", "t_sxx", "t_sxy", "t_syy")
_CLIP_SIGMAS: Final = 3.0
#: the adjusted level never goes below this share of the unadjusted one (the fit is a line;
#: far outside the temperatures it saw, it must not predict a home switched off)
MIN_SHARE: Final = 0.2


def hourly(observations: pl.DataFrame) -> pl.DataFrame:
    """Observations as one mean temperature per station and UTC hour (sub-hourly averaged)."""
    return (
        observations.filter(pl.col("temperature_c").is_not_null())
        .group_by("station_id", ts=pl.col("ts").dt.truncate("1h"))
        .agg(pl.col("temperature_c").mean())
        .select(list(HOURLY_SCHEMA))
    )


def degrees(
    weather: pl.DataFrame, start: dt.datetime, end: dt.datetime, cfg: AnomalyConfig
) -> pl.DataFrame:
    """``x`` per (station, hour) in [start, end): heating degrees minus the baseline's.

    The baseline's heating degrees: the station's mean over the ``memory_weeks`` before
    ``start`` at the same hour of the day (the baseline remembers that long, and its level
    per hour of the day was learnt at that hour's temperatures). An hour of the day with
    fewer than 3 days of history gets no ``x``.
    """
    memory = dt.timedelta(weeks=cfg.memory_weeks)
    hdd = (cfg.heating_base_c - pl.col("temperature_c")).clip(lower_bound=0.0)
    w = weather.filter(pl.col("ts").is_between(start - memory, end, closed="left")).select(
        "station_id", "ts", hdd=hdd, hod=pl.col("ts").dt.hour()
    )
    ref = (
        w.filter(pl.col("ts") < start)
        .group_by("station_id", "hod")
        .agg(ref=pl.col("hdd").mean(), days=pl.len())
        .filter(pl.col("days") >= 3)
    )
    return (
        w.filter(pl.col("ts") >= start)
        .join(ref, on=["station_id", "hod"], how="inner")
        .select("station_id", hour="ts", x=pl.col("hdd") - pl.col("ref"))
    )


def fit_of(profile: pl.DataFrame) -> pl.DataFrame:
    """Per subject: the fit's decayed sums (``t_n``, ``t_sx``, ... ``t_syy``) from its slots."""
    return unpack_slots(profile, (SLOT_A, SLOT_B), _FIT)


def slope(cfg: AnomalyConfig) -> list[pl.Expr]:
    """Columns from the sums of :func:`fit_of`: ``k`` (kW per heating degree; 0 unless the
    meter is weather-sensitive), and for any fit with enough days the slope ``t_beta``,
    intercept ``t_icpt``, residual sigma ``t_sigma`` and t-statistic ``t_stat``."""
    n = pl.col("t_n")
    mx, my = pl.col("t_sx") / n, pl.col("t_sy") / n
    cxx = pl.col("t_sxx") - n * mx * mx
    cxy = pl.col("t_sxy") - n * mx * my
    cyy = pl.col("t_syy") - n * my * my
    beta = cxy / cxx
    dof = n - 2.0
    resid = (cyy - beta * cxy).clip(lower_bound=0.0) / dof
    se = (resid / cxx).sqrt()
    t = beta / se
    ok = (n >= cfg.temp_min_days) & (cxx > 1e-9) & (dof > 0)
    sensitive = ok & (beta > 0) & (t >= cfg.temp_min_t)
    return [
        pl.when(sensitive).then(beta).otherwise(0.0).fill_nan(0.0).fill_null(0.0).alias("k"),
        pl.when(ok).then(resid.sqrt()).otherwise(None).alias("t_sigma"),
        pl.when(ok).then(t).otherwise(None).alias("t_stat"),
        pl.when(ok).then(my - beta * mx).otherwise(None).alias("t_icpt"),
        pl.when(ok).then(beta).otherwise(None).alias("t_beta"),
    ]


def attach(
    rows: pl.DataFrame,
    weather: pl.DataFrame,
    profile: pl.DataFrame,
    cfg: AnomalyConfig,
) -> pl.DataFrame:
    """``rows`` with ``x`` (null where unknown) and the subject's slope ``k`` (0 if none)."""
    start = rows["ts"].min()
    end = rows["ts"].max()
    assert isinstance(start, dt.datetime) and isinstance(end, dt.datetime)
    deg = degrees(weather, start.replace(minute=0, second=0, microsecond=0), end, cfg)
    fit = fit_of(profile).with_columns(slope(cfg)).select("subject_id", "k")
    return (
        rows.with_columns(hour=pl.col("ts").dt.truncate("1h"))
        .join(deg, on=["station_id", "hour"], how="left")
        .join(fit, on="subject_id", how="left")
        .with_columns(pl.col("k").fill_null(0.0))
        .drop("hour")
    )


def learn(
    rows: pl.DataFrame,
    profile: pl.DataFrame,
    prior_scalars: pl.DataFrame,
    new_scalars: pl.DataFrame,
    cfg: AnomalyConfig,
) -> pl.DataFrame:
    """The fit's slot rows of the subjects of ``new_scalars``, with the batch's days added.

    ``rows``: the rows the baseline learnt from, judged on a trusted prior, with ``x`` and
    ``base`` (the unadjusted expected level). Residuals are averaged per subject and UTC day;
    each day weighs its share of a full day. Old sums fade by the time the subject's clock
    moved on; a day's residual is clipped to 3 sigma of the current fit first.
    """
    per_day = 86400.0
    days = (
        rows.filter(pl.col("x").is_not_null())
        .group_by("subject_id", pl.col("ts").dt.date().alias("day"))
        .agg(
            w=(pl.col("interval_s").cast(pl.Float64).sum() / per_day).clip(upper_bound=1.0),
            x=pl.col("x").mean(),
            y=(pl.col("value") - pl.col("base")).mean(),
        )
    )
    old = fit_of(profile)
    current = old.with_columns(slope(cfg)).select("subject_id", "t_icpt", "t_beta", "t_sigma")
    pred = pl.col("t_icpt") + pl.col("t_beta") * pl.col("x")
    band = _CLIP_SIGMAS * pl.col("t_sigma")
    days = (
        days.join(current, on="subject_id", how="left")
        .with_columns(
            y=pl.when(pl.col("t_sigma").is_not_null() & (pl.col("t_sigma") > 0))
            .then(pl.col("y").clip(pred - band, pred + band))
            .otherwise(pl.col("y"))
        )
        .group_by("subject_id")
        .agg(
            b_n=pl.col("w").sum(),
            b_sx=(pl.col("w") * pl.col("x")).sum(),
            b_sy=(pl.col("w") * pl.col("y")).sum(),
            b_sxx=(pl.col("w") * pl.col("x") ** 2).sum(),
            b_sxy=(pl.col("w") * pl.col("x") * pl.col("y")).sum(),
            b_syy=(pl.col("w") * pl.col("y") ** 2).sum(),
        )
    )
    half_life_s = cfg.temp_half_life_days * per_day
    elapsed = (pl.col("last_ts") - pl.col("prev_ts")).dt.total_seconds().fill_null(0.0)
    fade = (0.5 ** (elapsed / half_life_s)).clip(upper_bound=1.0)
    merged = (
        new_scalars.select("subject_id", "last_ts")
        .join(prior_scalars.select("subject_id", prev_ts="last_ts"), on="subject_id", how="left")
        .join(old, on="subject_id", how="left")
        .join(days, on="subject_id", how="left")
        .with_columns(pl.col(*_FIT).fill_null(0.0), fade=fade)
        .with_columns(
            [
                (pl.col(c) * pl.col("fade") + pl.col("b_" + c[2:]).fill_null(0.0)).alias(c)
                for c in _FIT
            ]
        )
        .filter(pl.col("t_n") > 0)
    )
    return pack_slots(merged, (SLOT_A, SLOT_B), _FIT)


Loader = Callable[[list[str], dt.datetime, dt.datetime], pl.DataFrame]


class TemperatureCache:
    """Hourly temperatures of the stations a pipeline's meters refer to, kept in memory.

    The detect stage asks, per batch, for its stations over [batch start - memory, batch
    end]; only what is not cached yet is read (one query per batch at most, usually none).
    A station's coverage ends at its latest observation, so weather arriving after the
    readings is read by a later batch (the same span is asked again after ``retry_s``).
    Rows older than the oldest window asked for (less a day) are dropped, so the cache
    stays a few weeks of a few stations.
    """

    def __init__(self, load: Loader, *, retry_s: float = 60.0) -> None:
        self._load = load
        self._retry_s = retry_s
        self._rows = pl.DataFrame(schema=HOURLY_SCHEMA)
        self._cover: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        self._asked: dict[str, tuple[dt.datetime, float]] = {}

    def get(self, stations: list[str], start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
        """Hourly temperatures of ``stations`` in [start, end)."""
        if not stations:
            return pl.DataFrame(schema=HOURLY_SCHEMA)
        now = time.monotonic()
        want = {
            s: self._from(s, start)
            for s in stations
            if not self._covers(s, start, end) and not self._asked_lately(s, end, now)
        }
        if want:
            self._asked.update({s: (end, now) for s in want})
            fresh = hourly(self._load(sorted(want), min(want.values()), end))
            keep = self._rows.join(
                fresh.select("station_id", "ts"), on=["station_id", "ts"], how="anti"
            )
            oldest = start - dt.timedelta(days=1)
            self._rows = pl.concat([keep, fresh]).filter(pl.col("ts") >= oldest)
            last = dict(fresh.group_by("station_id").agg(pl.col("ts").max()).iter_rows())
            for s in want:
                lo, hi = self._cover.get(s, (start, start))
                lo = start if want[s] == start else lo
                seen = last.get(s)
                if seen is not None:
                    hi = max(hi, seen + dt.timedelta(hours=1))
                self._cover[s] = (lo, hi)
            # what was dropped is no longer covered, for any station
            self._cover = {s: (max(lo, oldest), hi) for s, (lo, hi) in self._cover.items()}
        return self._rows.filter(
            pl.col("station_id").is_in(stations) & pl.col("ts").is_between(start, end, "left")
        )

    def _from(self, station: str, start: dt.datetime) -> dt.datetime:
        """Where a station's missing hours begin: after its coverage, if that reaches back."""
        span = self._cover.get(station)
        return span[1] if span is not None and span[0] <= start <= span[1] else start

    def _asked_lately(self, station: str, end: dt.datetime, now: float) -> bool:
        """Asked, less than ``retry_s`` ago, for hours up to ``end`` or later, and they
        were not there: a feed lagging the meters (or stopped) is not asked for the same
        hours by every batch that needs them (a re-delivery, several streams' batches of
        the same hour). Hours never asked for are always read."""
        asked = self._asked.get(station)
        return asked is not None and asked[0] >= end and now - asked[1] < self._retry_s

    def _covers(self, station: str, start: dt.datetime, end: dt.datetime) -> bool:
        span = self._cover.get(station)
        return span is not None and span[0] <= start and span[1] >= end


def window(
    first: dt.datetime, last: dt.datetime, cfg: AnomalyConfig
) -> tuple[dt.datetime, dt.datetime]:
    """The span of weather a batch of readings in [first, last] needs."""
    return (
        first - dt.timedelta(weeks=cfg.memory_weeks) - dt.timedelta(hours=1),
        last + dt.timedelta(hours=1),
    )
