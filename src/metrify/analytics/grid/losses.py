"""Losses of a feeder: the energy it delivered (``grid_measurements``) against the sum
of its meters' energy, per day and over the range.

A day's difference is only a loss when both sides are complete: a meter with a gap, or
a node with a missing interval, makes the difference look like loss (or gain) when it is
missing data. So each day says how many meters were complete, how many readings were
missing, and whether the node's series was whole; ``complete`` days alone make the
range's loss figure, and the range also reports the raw difference over every day
beside the count of days left out.

Energy of a node interval: ``load_mw * interval_s / 3.6`` kWh (the mean MW over the
interval). Estimated meter readings count as present (they are the utility's best value)
and are counted per day, so a reader can see how much of the figure they carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from metrify.analytics.grid.days import day_seconds, local_day

__all__ = ["Losses", "losses"]


@dataclass(frozen=True)
class Losses:
    """``days``: per local day ``day``, ``node_kwh``, ``node_complete``, ``meters_kwh``,
    ``meters`` (registered), ``meters_complete``, ``meters_missing`` (not complete),
    ``missing_readings``, ``estimated_readings``, ``loss_kwh``, ``loss_share`` (of node
    energy), ``complete``. Range figures: over complete days (``loss_*``) and, for
    comparison, over every day with both sides (``raw_*``)."""

    days: pl.DataFrame
    complete_days: int
    incomplete_days: int
    node_kwh: float | None
    meters_kwh: float | None
    loss_kwh: float | None
    loss_share: float | None
    raw_loss_kwh: float | None
    raw_loss_share: float | None


def losses(
    node_load: pl.DataFrame,
    readings: pl.DataFrame,
    meters: pl.DataFrame,
    *,
    tz: str = "UTC",
) -> Losses:
    """Per-day losses of the node whose load is ``node_load`` (``ts``, ``interval_s``,
    ``load_mw``) and whose registered meters are ``meters`` (``meter_id``, optional
    ``interval_s``), from their ``readings`` (``meter_id``, ``ts``, ``interval_s``,
    ``import_kwh``, optional ``status``), local days in ``tz``."""
    node = (
        node_load.filter(pl.col("load_mw").is_not_null())
        .with_columns(day=local_day(pl.col("ts"), tz))
        .group_by("day")
        .agg(
            node_kwh=(pl.col("load_mw") * pl.col("interval_s") / 3.6).sum(),
            node_s=pl.col("interval_s").sum(),
        )
    )
    status = pl.col("status") if "status" in readings.columns else pl.lit(None, pl.String)
    present = readings.filter(pl.col("import_kwh").is_not_null()).with_columns(
        day=local_day(pl.col("ts"), tz), estimated=(status == "estimated").fill_null(False)
    )
    per_meter = present.group_by("day", "meter_id").agg(
        kwh=pl.col("import_kwh").sum(),
        seconds=pl.col("interval_s").sum(),
        estimated=pl.col("estimated").sum(),
        interval_s=pl.col("interval_s").max(),
    )
    days_seen = sorted(set(node["day"].to_list()) | set(per_meter["day"].to_list()))
    lengths = day_seconds(days_seen, tz)
    # the interval each registered meter owes readings at: its own, else what it sent,
    # else the most common interval of its peers
    sent = per_meter.group_by("meter_id").agg(sent_s=pl.col("interval_s").mode().first())
    registered = meters.select(
        "meter_id", reg_s=pl.col("interval_s") if "interval_s" in meters.columns else pl.lit(None)
    ).join(sent, on="meter_id", how="left")
    common = sent["sent_s"].mode().first() if not sent.is_empty() else 1800
    registered = registered.select(
        "meter_id", owe_s=pl.coalesce("reg_s", "sent_s", pl.lit(common)).cast(pl.Int64)
    )
    meter_days = (
        lengths.join(registered, how="cross")
        .join(
            per_meter.select("day", "meter_id", "kwh", got_s="seconds", est="estimated"),
            on=["day", "meter_id"],
            how="left",
        )
        .with_columns(
            owed=pl.col("seconds") // pl.col("owe_s"),
            got=(pl.col("got_s").fill_null(0) // pl.col("owe_s")),
        )
        .group_by("day")
        .agg(
            meters_kwh=pl.col("kwh").sum(),
            meters=pl.len(),
            meters_complete=(pl.col("got") >= pl.col("owed")).sum(),
            missing_readings=(pl.col("owed") - pl.col("got")).clip(lower_bound=0).sum(),
            estimated_readings=pl.col("est").fill_null(0).sum(),
        )
    )
    days = (
        lengths.join(node, on="day", how="left")
        .join(meter_days, on="day", how="left")
        .with_columns(
            node_complete=pl.col("node_s").fill_null(0) >= pl.col("seconds"),
            meters=pl.col("meters").fill_null(0),
        )
        .with_columns(
            meters_missing=pl.col("meters") - pl.col("meters_complete"),
            loss_kwh=pl.col("node_kwh") - pl.col("meters_kwh"),
        )
        .with_columns(
            loss_share=pl.col("loss_kwh") / pl.col("node_kwh"),
            complete=pl.col("node_complete")
            & (pl.col("meters_missing") == 0)
            & (pl.col("meters") > 0),
        )
        .select(
            "day",
            "node_kwh",
            "node_complete",
            "meters_kwh",
            "meters",
            "meters_complete",
            "meters_missing",
            "missing_readings",
            "estimated_readings",
            "loss_kwh",
            "loss_share",
            "complete",
        )
        .sort("day")
    )
    whole = days.filter("complete")
    both = days.filter(pl.col("node_kwh").is_not_null() & pl.col("meters_kwh").is_not_null())

    def _sum(frame: pl.DataFrame, col: str) -> float | None:
        return float(frame[col].sum()) if not frame.is_empty() else None

    node_kwh, meters_kwh = _sum(whole, "node_kwh"), _sum(whole, "meters_kwh")
    loss = None if node_kwh is None or meters_kwh is None else node_kwh - meters_kwh
    raw_node, raw_meters = _sum(both, "node_kwh"), _sum(both, "meters_kwh")
    raw = None if raw_node is None or raw_meters is None else raw_node - raw_meters
    return Losses(
        days=days,
        complete_days=whole.height,
        incomplete_days=days.height - whole.height,
        node_kwh=node_kwh,
        meters_kwh=meters_kwh,
        loss_kwh=loss,
        loss_share=loss / node_kwh if loss is not None and node_kwh else None,
        raw_loss_kwh=raw,
        raw_loss_share=raw / raw_node if raw is not None and raw_node else None,
    )
