"""Every pattern of a set of meters over a period in one call: what the job stores.

Segments are described by their *average household*: at each half-hour, the mean
energy of the members measured then. Its load factor is the diversified one (members'
peaks do not coincide, so it is higher than theirs), which is what a network sees per
connection; taking the mean over the members measured (not the sum) keeps a member's
gap from looking like a drop in demand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from metrify.analytics.holidays import DEFAULT_CALENDAR
from metrify.analytics.patterns.clusters import Clustering, Criterion, cluster_shapes
from metrify.analytics.patterns.metrics import Definitions, metrics
from metrify.analytics.patterns.profiles import (
    complete_days,
    day_shapes,
    local_half_hours,
    typical_days,
)

__all__ = ["Patterns", "analyse", "segment_series"]


@dataclass(frozen=True)
class Patterns:
    """What :func:`analyse` found.

    ``meters``: :func:`~metrify.analytics.patterns.metrics.metrics` per meter (``id``)
    plus ``cluster`` (None for meters left out of the clustering); ``meter_days``: their
    typical days; ``shapes``: (ids, ids x 48 unit-energy day shapes) of the clustered
    meters; ``segments`` and ``segment_days``: the same per (``dim``, ``id``) segment;
    ``clustering``: None when too few meters had enough complete days or no k gave
    clusters worth the name, and ``no_clustering`` then says which."""

    meters: pl.DataFrame
    meter_days: pl.DataFrame
    shapes: tuple[list[str], np.ndarray]
    clustering: Clustering | None
    no_clustering: str | None
    segments: pl.DataFrame
    segment_days: pl.DataFrame
    definitions: Definitions


def segment_series(frame: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """The average household of each segment: ``frame`` (id, ts, kwh) joined with
    ``members`` (id, dim, key), mean kWh per (dim, key, ts) over the members measured;
    returned as (dim, id = key, ts, kwh)."""
    joined = frame.join(members, on="id", how="inner")
    return (
        joined.group_by("dim", "key", "ts")
        .agg(pl.col("kwh").mean())
        .rename({"key": "id"})
        .select("dim", "id", "ts", "kwh")
    )


def analyse(
    frame: pl.DataFrame,
    tz: str,
    members: pl.DataFrame | None = None,
    definitions: Definitions | None = None,
    k: int | None = None,
    criterion: Criterion = "silhouette",
    min_days: int = 30,
    resamples: int = 50,
    holidays: list[dt.date] | None = None,
    seed: int = 0,
    calendar: str = DEFAULT_CALENDAR,
) -> Patterns:
    """Patterns of the meters in ``frame`` (id, ts UTC, kwh: measured half-hours) on the
    clock of ``tz``, and of the segments ``members`` (id, dim, key) names. Meters with
    fewer than ``min_days`` complete days are described but not clustered. Holidays:
    ``holidays`` when given, else those of ``calendar``."""
    d = definitions or Definitions()
    local = local_half_hours(frame, tz, holidays, calendar)
    per_meter = metrics(local, d)
    full = complete_days(local)
    days = typical_days(full)
    ids, shapes = day_shapes(full, min_days)
    clustering, note = None, None
    try:
        clustering = cluster_shapes(
            ids, shapes, k=k, criterion=criterion, resamples=resamples, seed=seed
        )
    except ValueError as exc:  # too few households, or no k worth the name
        note = str(exc)
    labels = pl.DataFrame(
        {
            "id": clustering.ids if clustering else [],
            "cluster": clustering.labels.tolist() if clustering else [],
        },
        schema={"id": pl.String, "cluster": pl.Int32},
    )
    per_meter = per_meter.join(labels, on="id", how="left")
    seg_metrics, seg_days = _segments(frame, members, tz, d, holidays, calendar)
    return Patterns(per_meter, days, (ids, shapes), clustering, note, seg_metrics, seg_days, d)


def _segments(
    frame: pl.DataFrame,
    members: pl.DataFrame | None,
    tz: str,
    d: Definitions,
    holidays: list[dt.date] | None,
    calendar: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    out_metrics, out_days = [], []
    if members is not None and members.height:
        series = segment_series(frame, members)
        for (dim,), part in series.group_by("dim", maintain_order=True):
            local = local_half_hours(part.drop("dim"), tz, holidays, calendar)
            out_metrics.append(metrics(local, d).with_columns(pl.lit(dim).alias("dim")))
            out_days.append(
                typical_days(complete_days(local)).with_columns(pl.lit(dim).alias("dim"))
            )
    if not out_metrics:
        empty = metrics(local_half_hours(frame.head(0), tz, []), d)
        return empty.with_columns(pl.lit("").alias("dim")).head(0), pl.DataFrame()
    return pl.concat(out_metrics), pl.concat(out_days)
