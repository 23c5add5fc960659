"""Meter energy per interval as demand (kW), and the node's own series in kW.

Every grid analysis compares meters with each other or with the node that feeds them;
converting once here (kWh over an interval of ``interval_s`` is a mean demand of
kWh * 3600 / interval_s kW) keeps every caller in one unit.
"""

from __future__ import annotations

import polars as pl

__all__ = ["meter_kw", "node_kw", "total_kw"]


def meter_kw(readings: pl.DataFrame) -> pl.DataFrame:
    """``meter_id``, ``ts``, ``interval_s``, ``kw`` of the readings with a value."""
    return readings.filter(pl.col("import_kwh").is_not_null()).select(
        "meter_id",
        "ts",
        "interval_s",
        kw=pl.col("import_kwh") * 3600.0 / pl.col("interval_s"),
    )


def total_kw(readings: pl.DataFrame) -> pl.DataFrame:
    """The meters' summed demand per interval start: ``ts``, ``interval_s``, ``kw``,
    ``meters`` (how many had a value). Assumes the meters share an interval length,
    as the meters of one feeder do; rows of other lengths are summed by start anyway."""
    return (
        meter_kw(readings)
        .group_by("ts")
        .agg(pl.col("interval_s").max(), pl.col("kw").sum(), meters=pl.len())
        .sort("ts")
    )


def node_kw(load: pl.DataFrame) -> pl.DataFrame:
    """``ts``, ``interval_s``, ``kw`` of a node's measured load (MW)."""
    return (
        load.filter(pl.col("load_mw").is_not_null())
        .select("ts", "interval_s", kw=pl.col("load_mw") * 1000.0)
        .sort("ts")
    )
