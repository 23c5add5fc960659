"""Which meters make a node's peak: each meter's demand at the node's peak intervals.

For each meter: its demand averaged over the node's ``top`` highest intervals, its own
peak, its **coincidence factor** (demand at the system peak / own peak: 1 when it peaks
with the node, near 0 when it is off then) and its **share of the peak** (its demand at
the peak over the node's peak demand; with a measured node load the shares add up to
less than 1 by the losses and unmetered load). Averaging over a few top intervals rather
than the single highest keeps one interval's noise from naming the drivers.

The peak is the measured node load's when there is one, else the meters' sum. A meter
interval covers a node peak instant when it starts at or before it and ends after it
(intervals divide the day, so the covering start is the instant floored to the meter's
interval): a 5-minute node series and 30-minute meters meet correctly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from metrify.analytics.grid.demand import meter_kw, node_kw, total_kw

__all__ = ["PeakDrivers", "peak_drivers"]


@dataclass(frozen=True)
class PeakDrivers:
    """``meters``: one row per meter (``meter_id``, ``own_peak_kw``, ``own_peak_ts``,
    ``at_peak_kw``, ``coincidence_factor``, ``share_of_peak``, ``at_peak_intervals``:
    of the ``top`` peak intervals, how many the meter has a reading for), highest share
    first. ``group_coincidence`` is the meters' coincident peak over the sum of their
    own peaks (the inverse of the diversity factor)."""

    basis: str  # "node" (measured load) or "meters" (their sum)
    peak_kw: float | None
    peak_ts: list[dt.datetime]
    meters_peak_kw: float | None
    sum_of_peaks_kw: float | None
    group_coincidence: float | None
    meters: pl.DataFrame


def _floor(ts: pl.Expr, seconds: int) -> pl.Expr:
    return ts.dt.truncate(f"{seconds}s")


def peak_drivers(
    readings: pl.DataFrame, node_load: pl.DataFrame | None = None, *, top: int = 1
) -> PeakDrivers:
    """Peak drivers of the meters in ``readings`` at the ``top`` peak intervals of
    ``node_load`` (or of the meters' sum when it is None or empty)."""
    if top < 1:
        raise ValueError("top must be at least 1")
    kw = meter_kw(readings)
    total = total_kw(readings)
    node = node_kw(node_load) if node_load is not None else pl.DataFrame()
    basis = "node" if not node.is_empty() else "meters"
    series = node if basis == "node" else total
    empty = pl.DataFrame(
        schema={
            "meter_id": pl.String,
            "own_peak_kw": pl.Float64,
            "own_peak_ts": pl.Datetime("us", "UTC"),
            "at_peak_kw": pl.Float64,
            "coincidence_factor": pl.Float64,
            "share_of_peak": pl.Float64,
            "at_peak_intervals": pl.UInt32,
        }
    )
    if series.is_empty():
        return PeakDrivers(basis, None, [], None, None, None, empty)
    peaks = series.sort(["kw", "ts"], descending=[True, False]).head(top)
    peak_kw = float(peaks["kw"].mean())  # type: ignore[arg-type]
    peak_ts = sorted(peaks["ts"].to_list())
    # each meter's covering interval start for each peak instant
    lengths = kw["interval_s"].unique().to_list()
    covering = (
        pl.concat(
            [
                peaks.select(pk=pl.col("ts"), ts=_floor(pl.col("ts"), int(s)), interval_s=pl.lit(s))
                for s in lengths
            ]
        )
        if lengths
        else pl.DataFrame()
    )
    own = (
        kw.sort(["kw", "ts"], descending=[True, False])
        .group_by("meter_id", maintain_order=True)
        .agg(own_peak_kw=pl.col("kw").first(), own_peak_ts=pl.col("ts").first())
    )
    if covering.is_empty():
        return PeakDrivers(basis, peak_kw, peak_ts, None, None, None, empty)
    covering = covering.with_columns(pl.col("interval_s").cast(kw.schema["interval_s"]))
    at = (
        kw.join(covering, on=["ts", "interval_s"])
        .group_by("meter_id")
        .agg(at_peak_sum=pl.col("kw").sum(), at_peak_intervals=pl.len())
    )
    meters = (
        own.join(at, on="meter_id", how="left")
        .with_columns(
            # a meter without a reading at a peak instant is unknown there, not zero:
            # average over the instants it was read at
            at_peak_kw=pl.col("at_peak_sum") / pl.col("at_peak_intervals").cast(pl.Float64),
            at_peak_intervals=pl.col("at_peak_intervals").fill_null(0).cast(pl.UInt32),
        )
        .with_columns(
            coincidence_factor=pl.when(pl.col("own_peak_kw") > 0).then(
                pl.col("at_peak_kw") / pl.col("own_peak_kw")
            ),
            share_of_peak=(pl.col("at_peak_kw") / peak_kw) if peak_kw > 0 else pl.lit(None),
        )
        .select(empty.columns)
        .cast(empty.schema)
        .sort(["share_of_peak", "meter_id"], descending=[True, False], nulls_last=True)
    )
    meters_peak = float(total["kw"].max())  # type: ignore[arg-type]
    sum_peaks = float(meters["own_peak_kw"].sum())
    return PeakDrivers(
        basis=basis,
        peak_kw=peak_kw,
        peak_ts=peak_ts,
        meters_peak_kw=meters_peak,
        sum_of_peaks_kw=sum_peaks,
        group_coincidence=meters_peak / sum_peaks if sum_peaks > 0 else None,
        meters=meters,
    )
