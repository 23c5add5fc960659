"""Utilisation of a node against its capacity: time above 80% and 100%, the
load-duration curve, and headroom at the peak and at a high percentile.

Everything is weighted by time (``interval_s``), not by row count, so a series that
mixes 5-minute and 30-minute rows, or has gaps, still counts hours as hours. Headroom at
a percentile (capacity minus the load exceeded only ``1 - p`` of the time) is what a
planner uses beside the raw peak: one freak interval should not decide a reinforcement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["Loading", "duration_curve", "loading", "time_quantile"]

#: the utilisation thresholds counted, as shares of capacity
THRESHOLDS = (0.8, 1.0)


@dataclass(frozen=True)
class Loading:
    """How loaded a node was over a range. Loads in MW; ``None`` where the node has no
    capacity on record (utilisation then cannot be judged) or no load was measured."""

    intervals: int
    hours: float
    missing: int
    capacity_mw: float | None
    peak_mw: float | None
    peak_ts: dt.datetime | None
    mean_mw: float | None
    load_factor: float | None
    peak_utilisation: float | None
    hours_above_80: float | None
    hours_above_100: float | None
    headroom_mw: float | None
    percentile: float
    load_at_percentile_mw: float | None
    headroom_at_percentile_mw: float | None


def _present(load: pl.DataFrame) -> pl.DataFrame:
    return load.filter(pl.col("load_mw").is_not_null()).sort("ts")


def time_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The value not exceeded for share ``q`` of the time (weights are durations): the
    smallest value whose cumulative time share reaches ``q``."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w) / w.sum()
    idx = int(np.searchsorted(cum, q - 1e-12, side="left"))
    return float(v[min(idx, len(v) - 1)])


def loading(load: pl.DataFrame, capacity_mw: float | None, *, percentile: float = 0.99) -> Loading:
    """Utilisation of ``load`` (``ts``, ``interval_s``, ``load_mw``) against
    ``capacity_mw``. Hours above a threshold count intervals whose load is strictly
    above that share of capacity; ``missing`` counts rows whose load is null."""
    if not 0.0 < percentile <= 1.0:
        raise ValueError(f"percentile {percentile}: expected a share in (0, 1]")
    present = _present(load)
    missing = load.height - present.height
    if capacity_mw is not None and capacity_mw <= 0:
        capacity_mw = None
    if present.is_empty():
        return Loading(
            0,
            0.0,
            missing,
            capacity_mw,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            percentile,
            None,
            None,
        )
    mw = present["load_mw"].to_numpy().astype(float)
    secs = present["interval_s"].to_numpy().astype(float)
    hours = float(secs.sum() / 3600.0)
    at = int(np.argmax(mw))
    peak = float(mw[at])
    mean = float((mw * secs).sum() / secs.sum())
    q_load = time_quantile(mw, secs, percentile)
    above: list[float | None] = [None, None]
    util = headroom = headroom_q = None
    if capacity_mw is not None:
        above = [float(secs[mw > t * capacity_mw].sum() / 3600.0) for t in THRESHOLDS]
        util = peak / capacity_mw
        headroom = capacity_mw - peak
        headroom_q = capacity_mw - q_load
    return Loading(
        intervals=present.height,
        hours=hours,
        missing=missing,
        capacity_mw=capacity_mw,
        peak_mw=peak,
        peak_ts=present["ts"][at],
        mean_mw=mean,
        load_factor=mean / peak if peak > 0 else None,
        peak_utilisation=util,
        hours_above_80=above[0],
        hours_above_100=above[1],
        headroom_mw=headroom,
        percentile=percentile,
        load_at_percentile_mw=q_load,
        headroom_at_percentile_mw=headroom_q,
    )


def duration_curve(
    load: pl.DataFrame, capacity_mw: float | None = None, *, points: int = 101
) -> pl.DataFrame:
    """The load-duration curve sampled at ``points`` shares of time from 0 to 1:
    ``time_share`` s, ``load_mw`` (the load exceeded, or met, for share s of the time;
    s = 0 is the peak, s = 1 the minimum), ``hours`` and ``utilisation`` (load over
    capacity, null without one)."""
    if points < 2:
        raise ValueError("a duration curve needs at least 2 points")
    present = _present(load)
    shares = np.linspace(0.0, 1.0, points)
    if present.is_empty():
        values: list[float | None] = [None] * points
        total = 0.0
    else:
        mw = present["load_mw"].to_numpy().astype(float)
        secs = present["interval_s"].to_numpy().astype(float)
        order = np.argsort(-mw, kind="stable")
        mw, secs = mw[order], secs[order]
        total = float(secs.sum())
        # time before each interval starts, as a share: the load at share s is that of
        # the interval covering s (the last one for s = 1)
        start = (np.cumsum(secs) - secs) / total
        idx = np.clip(np.searchsorted(start, shares, side="right") - 1, 0, len(mw) - 1)
        values = [float(v) for v in mw[idx]]
    cap = capacity_mw if capacity_mw and capacity_mw > 0 else None
    return pl.DataFrame(
        {
            "time_share": shares,
            "hours": shares * total / 3600.0,
            "load_mw": values,
        },
        schema={"time_share": pl.Float64, "hours": pl.Float64, "load_mw": pl.Float64},
    ).with_columns(utilisation=pl.col("load_mw") / cap if cap else pl.lit(None, dtype=pl.Float64))
