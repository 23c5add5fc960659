"""Detectors for meter readings: unusual consumption, sustained drops, level shifts, export.

Revenue protection looks for meters recording far less than they used to (bypass,
tampering; also vacancy, which billing wants to know about) and for export where no
generation is registered (unregistered PV is a safety issue for line crews as well as a
tariff one). Network planning wants sudden new load. Single far-off intervals are kept
too: a reading 20 MADs above the meter's usual level at that hour is worth a look even
when it is plausible enough to pass validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from metrify.anomaly.baseline import judge
from metrify.anomaly.config import AnomalyConfig
from metrify.anomaly.records import Kind, Subject, empty_incidents, incidents, severity_by
from metrify.records import Quality, Status


@dataclass
class Detected:
    """Flags per row (key columns + ``anomaly``), incidents, and the subjects' new state."""

    flags: pl.DataFrame
    incidents: pl.DataFrame
    profile: pl.DataFrame
    scalars: pl.DataFrame


def detect_readings(
    frame: pl.DataFrame,
    has_pv: pl.DataFrame,
    profile: pl.DataFrame,
    scalars: pl.DataFrame,
    cfg: AnomalyConfig,
) -> Detected:
    """Run every reading detector on one batch (``has_pv``: ``meter_id``, ``has_pv``)."""
    usable = (
        pl.col("import_kwh").is_not_null()
        & ((pl.col("quality") & int(Quality.MISSING)) == 0)
        & (pl.col("status") != Status.REJECTED.value)
    )
    base = frame.select(
        subject_id="meter_id",
        ts="ts",
        interval_s="interval_s",
        value=pl.col("import_kwh") * 3600.0 / pl.col("interval_s"),
        usable=usable,
    )
    j = judge(
        base,
        profile,
        scalars,
        cfg,
        floor=cfg.scale_floor_kw,
        min_excess=cfg.high_min_kw,
        levels=True,
        peak_factor=cfg.peak_factor,
    )
    rows = j.rows
    base_fell = pl.col("drop_base").fill_null(0.0) < cfg.vacancy_base_share
    common = Subject("meter", "subject_id", cfg.merge_gap_s)
    found = [
        incidents(
            rows.filter("high").select(
                "subject_id",
                "ts",
                "interval_s",
                "expected",
                "value",
                score="z",
                peak_ref=pl.col("peak_ref").fill_null(pl.col("value")),
            ),
            kind=Kind.UNUSUAL_CONSUMPTION,
            detector="hour_of_week_robust_z",
            # how far beyond the meter's own typical daily peak: a household's busy
            # evening is routine, three times its usual peak is not.
            severity=severity_by(
                pl.col("value") / pl.col("peak_ref"), [(0, "low"), (3, "medium"), (6, "high")]
            ),
            evidence={
                "expected_kw": pl.col("expected").round(3),
                "observed_kw": pl.col("value").round(3),
                "typical_daily_peak_kw": pl.col("peak_ref").round(3),
                "robust_z": pl.col("score"),
            },
            on=common,
        ),
        *[
            incidents(
                rows.filter(pl.col("drop") & which).select(
                    "subject_id",
                    "ts",
                    "interval_s",
                    "expected",
                    "value",
                    "base_ratio",
                    score=1.0 - pl.col("ratio"),
                    since="drop_start",
                ),
                kind=kind,
                detector="ewma_ratio",
                severity=severity,
                evidence={
                    "expected_kw": pl.col("expected").round(3),
                    "observed_kw": pl.col("value").round(3),
                    "observed_share": (pl.col("value") / pl.col("expected")).round(3),
                    "base_load_share": pl.col("base_ratio").round(3),
                },
                on=common,
            )
            for kind, which, severity in (
                # the base load fell with the rest: a bypass or tampering suspect; a
                # visit is worth it after a day, urgent once it has held for three.
                (Kind.SUSTAINED_DROP, base_fell, _lasted(72, "high", "medium")),
                # use fell to the base load, which stayed: an empty home, for billing
                (Kind.VACANCY, ~base_fell, pl.lit("low")),
            )
        ],
        incidents(
            rows.filter("shift").select(
                "subject_id",
                "ts",
                "interval_s",
                "expected",
                "value",
                score="ratio",
                since="shift_start",
            ),
            kind=Kind.LEVEL_SHIFT,
            detector="ewma_ratio",
            severity=_lasted(72, "medium", "low"),
            evidence={
                "expected_kw": pl.col("expected").round(3),
                "observed_kw": pl.col("value").round(3),
                "ratio": pl.col("score").round(3),
            },
            on=common,
        ),
    ]
    export = _export(frame, has_pv, cfg)
    found.append(
        incidents(
            export,
            kind=Kind.UNEXPECTED_EXPORT,
            detector="export_without_pv",
            # export held for an hour or more is generation, not a glitch.
            severity=pl.when((pl.col("ts_end") - pl.col("ts_start")) >= pl.duration(hours=1))
            .then(pl.lit("high"))
            .otherwise(pl.lit("medium")),
            evidence={
                "registered_pv": pl.lit(False),
                "export_kwh_mean": pl.col("export_kwh").round(4),
                "active_power_kw_mean": pl.col("active_power_kw").round(3),
            },
            on=common,
        )
        if export.height
        else empty_incidents()
    )
    flags = rows.select(
        "subject_id", "ts", anomaly=pl.col("high") | pl.col("drop") | pl.col("shift")
    )
    if export.height:
        flags = flags.join(
            export.select("subject_id", "ts", e=pl.lit(True)), on=["subject_id", "ts"], how="left"
        ).select("subject_id", "ts", anomaly=pl.col("anomaly") | pl.col("e").fill_null(False))
    return Detected(
        flags=flags.rename({"subject_id": "meter_id"}),
        incidents=pl.concat(found),
        profile=j.profile,
        scalars=j.scalars,
    )


def _lasted(hours: float, long: str, short: str) -> pl.Expr:
    """Severity by how long the incident has lasted so far."""
    return (
        pl.when((pl.col("ts_end") - pl.col("ts_start")) >= pl.duration(hours=hours))
        .then(pl.lit(long))
        .otherwise(pl.lit(short))
    )


def _export(frame: pl.DataFrame, has_pv: pl.DataFrame, cfg: AnomalyConfig) -> pl.DataFrame:
    """Rows exporting (or flowing backwards) on meters with no registered generation."""
    exporting = (pl.col("export_kwh").fill_null(0.0) > cfg.export_min_kwh) | (
        pl.col("active_power_kw").fill_null(0.0)
        < -cfg.export_min_kwh * 3600.0 / pl.col("interval_s")
    )
    rows = frame.filter(exporting & (pl.col("status") != Status.REJECTED.value))
    if not rows.height:
        return pl.DataFrame()
    # a meter absent from ``has_pv`` is unknown to the reference data: no judgement
    rows = rows.join(has_pv, on="meter_id", how="inner").filter(~pl.col("has_pv"))
    return rows.select(
        subject_id="meter_id",
        ts="ts",
        interval_s="interval_s",
        score=pl.col("export_kwh").fill_null(0.0),
        export_kwh=pl.col("export_kwh").fill_null(0.0),
        active_power_kw=pl.col("active_power_kw"),
    )
