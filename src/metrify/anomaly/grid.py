"""Detectors for grid measurements: frequency, voltage, loading, and unusual load.

Grid operations care about the physics first: frequency beyond ±0.2 Hz of nominal
(50 Hz unless a node or region says otherwise), voltage outside the statutory band of
the node's nominal kV, feeders loaded above a share of their rating. Load far from its
usual level for the hour of the week is reported too, but a LOW load is at most ``low``
severity: holiday dips and solar-driven midday lows are real and harmless, and must not
page anyone. Prices are market outcomes, not measurements, and are not judged.
"""

from __future__ import annotations

import polars as pl

from metrify.anomaly.baseline import judge
from metrify.anomaly.meters import Detected
from metrify.anomaly.records import Subject, incidents, severity_by
from metrify.contracts.anomalies import Kind
from metrify.settings.anomaly import AnomalyConfig


def nominal_hz(cfg: AnomalyConfig) -> pl.Expr:
    """Nominal frequency of each row's node: exact id, else longest id prefix, else default."""
    expr: pl.Expr = pl.lit(cfg.nominal_hz)
    for key in sorted(cfg.nominal_hz_by_node, key=len):
        expr = (
            pl.when(pl.col("node_id").str.starts_with(key))
            .then(pl.lit(cfg.nominal_hz_by_node[key]))
            .otherwise(expr)
        )
    return expr


def detect_grid(
    frame: pl.DataFrame,
    nodes: pl.DataFrame,
    profile: pl.DataFrame,
    scalars: pl.DataFrame,
    cfg: AnomalyConfig,
) -> Detected:
    """Run the grid detectors (``nodes``: ``node_id``, ``capacity_mw``, ``nominal_kv``)."""
    rows = frame.join(nodes, on="node_id", how="left").with_columns(
        hz=nominal_hz(cfg),
        load_share=pl.col("load_mw") / pl.col("capacity_mw"),
    )
    common = Subject("node", "node_id", cfg.merge_gap_s)
    found = []
    freq = rows.filter((pl.col("frequency_hz") - pl.col("hz")).abs() > cfg.frequency_band_hz)
    found.append(
        incidents(
            freq.select(
                "node_id",
                "ts",
                "interval_s",
                "frequency_hz",
                "hz",
                score=(pl.col("frequency_hz") - pl.col("hz")).abs(),
            ),
            kind=Kind.FREQUENCY_EXCURSION,
            detector="frequency_band",
            # statutory limits are ±0.5 Hz in GB; beyond 0.8 Hz load shedding starts.
            severity=severity_by(
                pl.col("score"), [(0, "medium"), (0.5, "high"), (0.8, "critical")]
            ),
            evidence={
                "nominal_hz": pl.col("hz"),
                "observed_hz": pl.col("frequency_hz").round(3),
                "max_deviation_hz": pl.col("score"),
            },
            on=common,
        )
    )
    dev = (pl.col("voltage_kv") / pl.col("nominal_kv") - 1.0).abs()
    volt = rows.filter(pl.col("nominal_kv").is_not_null() & (dev > cfg.voltage_band))
    found.append(
        incidents(
            volt.select("node_id", "ts", "interval_s", "voltage_kv", "nominal_kv", score=dev),
            kind=Kind.VOLTAGE_OUT_OF_BAND,
            detector="statutory_voltage_band",
            severity=severity_by(
                pl.col("score"), [(0, "medium"), (cfg.voltage_band * 1.5, "high")]
            ),
            evidence={
                "nominal_kv": pl.col("nominal_kv"),
                "observed_kv": pl.col("voltage_kv").round(3),
                "band": pl.lit(cfg.voltage_band),
            },
            on=common,
        )
    )
    over = rows.filter(pl.col("load_share") > cfg.overload_share)
    found.append(
        incidents(
            over.select(
                "node_id", "ts", "interval_s", "load_mw", "capacity_mw", score="load_share"
            ),
            kind=Kind.FEEDER_OVERLOAD,
            detector="capacity_share",
            severity=severity_by(
                pl.col("score"), [(0, "medium"), (1.0, "high"), (1.2, "critical")]
            ),
            evidence={
                "capacity_mw": pl.col("capacity_mw"),
                "observed_mw": pl.col("load_mw").round(3),
                "share": pl.col("score").round(3),
            },
            on=common,
        )
    )
    base = frame.select(
        subject_id="node_id",
        ts="ts",
        interval_s="interval_s",
        value="load_mw",
        usable=pl.col("load_mw").is_not_null() & (pl.col("status") != "rejected"),
    )
    j = judge(
        base,
        profile,
        scalars,
        cfg,
        floor=1e-3,
        min_excess=0.0,
        levels=False,
        floor_share=cfg.grid_scale_floor_share,
    )
    unusual = j.rows.filter(pl.col("high") | pl.col("low")).select(
        node_id="subject_id",
        ts="ts",
        interval_s="interval_s",
        expected="expected",
        value="value",
        score="z",
        up=pl.col("high").cast(pl.Float64),
    )
    found.append(
        incidents(
            unusual.with_columns(score=pl.col("score").abs()),
            kind=Kind.UNUSUAL_LOAD,
            detector="hour_of_week_robust_z",
            # more load than usual can stress the network (medium at most, the overload
            # detector owns the hard limit); less load than usual is information.
            severity=pl.when(pl.col("up") > 0.5)
            .then(severity_by(pl.col("score"), [(0, "low"), (12, "medium")]))
            .otherwise(pl.lit("low")),
            evidence={
                "expected_mw": pl.col("expected").round(3),
                "observed_mw": pl.col("value").round(3),
                "direction": pl.when(pl.col("up") > 0.5)
                .then(pl.lit("up"))
                .otherwise(pl.lit("down")),
            },
            on=common,
        )
    )
    flagged = pl.concat(
        [
            freq.select("node_id", "ts"),
            volt.select("node_id", "ts"),
            over.select("node_id", "ts"),
            unusual.select("node_id", "ts"),
        ]
    ).unique()
    flags = (
        frame.select("node_id", "ts")
        .join(flagged.with_columns(anomaly=pl.lit(True)), on=["node_id", "ts"], how="left")
        .with_columns(pl.col("anomaly").fill_null(False))
    )
    return Detected(flags=flags, incidents=pl.concat(found), profile=j.profile, scalars=j.scalars)
