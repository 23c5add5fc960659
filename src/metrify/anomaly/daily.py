"""The daily anomaly job: feeder energy balance, the pattern model and peer comparison.

Run by ``metrify anomalies daily --date D`` or an Airflow task calling :func:`run_daily`.
These checks need a whole day of every meter on a feeder, which a stream never has at
once; they read the stored day back from PostgreSQL and write incidents through the
same store and alerts as the streaming detectors.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import psycopg

from metrify.anomaly.alerts import Alerter, sinks_from
from metrify.anomaly.model import TRAILING_DAYS, DailyModel, features, fit, load_daily
from metrify.anomaly.records import DETECTOR_VERSION, INCIDENT_SCHEMA, Kind
from metrify.anomaly.store import AnomalyStore
from metrify.settings.anomaly import AnomalyConfig

PEER_LOG_RATIO = 1.1  # ln 3

BALANCE_SQL = """
WITH node_energy AS (
    SELECT node_id, sum(load_mw * interval_s / 3.6) AS node_kwh, count(*) AS n
    FROM grid_measurements WHERE ts >= %(start)s AND ts < %(end)s AND load_mw IS NOT NULL
    GROUP BY node_id
), meter_energy AS (
    SELECT m.node_id, sum(r.import_kwh) AS meters_kwh, count(DISTINCT r.meter_id) AS meters
    FROM readings r JOIN meters m ON m.meter_id = r.meter_id
    WHERE r.ts >= %(start)s AND r.ts < %(end)s AND r.import_kwh IS NOT NULL
      AND r.status <> 'rejected'
    GROUP BY m.node_id
)
SELECT n.node_id, n.node_kwh, e.meters_kwh, e.meters
FROM node_energy n JOIN meter_energy e ON e.node_id = n.node_id
WHERE n.node_kwh > 0
"""


def model_path(home: Path) -> Path:
    return home / "models" / "anomaly_daily.joblib"


def feeder_balance(
    conn: psycopg.Connection[tuple[object, ...]], day: dt.date, cfg: AnomalyConfig
) -> pl.DataFrame:
    """Feeders whose load that day exceeds what their meters recorded by > max_loss_share.

    Technical losses are a few per cent and grow with loading; a share well above that is
    energy consumed but not metered (bypass, tampering, unregistered connections) or a
    feeder whose meter mapping is wrong. Both are worth an analyst's time.
    """
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    rows = conn.execute(
        BALANCE_SQL, {"start": start, "end": start + dt.timedelta(days=1)}
    ).fetchall()
    frame = pl.DataFrame(
        rows,
        schema={
            "node_id": pl.String(),
            "node_kwh": pl.Float64(),
            "meters_kwh": pl.Float64(),
            "meters": pl.Int64(),
        },
        orient="row",
    ).with_columns(loss=1.0 - pl.col("meters_kwh") / pl.col("node_kwh"))
    bad = frame.filter(pl.col("loss") > cfg.max_loss_share)
    return bad.select(
        kind=pl.lit(Kind.FEEDER_IMBALANCE.value),
        subject_type=pl.lit("node"),
        subject_id="node_id",
        ts_start=pl.lit(start),
        ts_end=pl.lit(start + dt.timedelta(days=1)),
        score=pl.col("loss").round(4),
        severity=pl.when(pl.col("loss") > 2 * cfg.max_loss_share)
        .then(pl.lit("high"))
        .otherwise(pl.lit("medium")),
        detector=pl.lit("energy_balance"),
        detector_version=pl.lit(DETECTOR_VERSION),
        evidence=pl.struct(
            node_kwh=pl.col("node_kwh").round(1),
            meters_kwh=pl.col("meters_kwh").round(1),
            meters=pl.col("meters"),
            unexplained_share=pl.col("loss").round(4),
            expected_max_share=pl.lit(cfg.max_loss_share),
        ).struct.json_encode(),
        intervals=pl.lit(1, pl.Int64),
    ).cast(INCIDENT_SCHEMA)  # type: ignore[arg-type]


def peer_groups(conn: psycopg.Connection[tuple[object, ...]]) -> pl.DataFrame:
    """Each meter's peers: same tariff and region (unknowns grouped together)."""
    rows = conn.execute(
        "SELECT meter_id, coalesce(tariff, '?') || '/' || coalesce(region, '?') FROM meters"
    ).fetchall()
    return pl.DataFrame(
        rows, schema={"meter_id": pl.String(), "peer_group": pl.String()}, orient="row"
    )


def train(
    conn: psycopg.Connection[tuple[object, ...]], home: Path, until: dt.date, days: int
) -> DailyModel:
    """Fit the daily model on ``days`` before ``until`` and save it under ``home``."""
    daily = load_daily(conn, until - dt.timedelta(days=days + TRAILING_DAYS), until)
    feats = features(daily, peer_groups(conn)).filter(
        pl.col("day") >= until - dt.timedelta(days=days)
    )
    model = fit(feats)
    model.save(model_path(home))
    return model


def pattern_incidents(
    conn: psycopg.Connection[tuple[object, ...]], model: DailyModel, day: dt.date
) -> pl.DataFrame:
    """Meter-days the model isolates above its threshold, and peers-relative outliers."""
    daily = load_daily(conn, day - dt.timedelta(days=TRAILING_DAYS + 1), day + dt.timedelta(1))
    feats = features(daily, peer_groups(conn)).filter(pl.col("day") == day)
    if not feats.height:
        return pl.DataFrame(schema=INCIDENT_SCHEMA)
    scored = feats.with_columns(score=pl.Series(model.score(feats)))
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    out = scored.filter(pl.col("score") > model.threshold)
    # changed by a factor of three or more against what similar customers did that day
    peers = (
        scored.filter(pl.col("peer_log_ratio").abs() > PEER_LOG_RATIO)
        .select(
            kind=pl.lit(Kind.PEER_OUTLIER.value),
            subject_type=pl.lit("meter"),
            subject_id="meter_id",
            ts_start=pl.lit(start),
            ts_end=pl.lit(start + dt.timedelta(days=1)),
            score=pl.col("peer_log_ratio").round(4),
            severity=pl.lit("low"),
            detector=pl.lit("peer_median"),
            detector_version=pl.lit(DETECTOR_VERSION),
            evidence=pl.struct(
                peer_group="peer_group",
                own_change=pl.col("own_log_ratio").exp().round(3),
                peers_change=(pl.col("own_log_ratio") - pl.col("peer_log_ratio")).exp().round(3),
            ).struct.json_encode(),
            intervals=pl.lit(1, pl.Int64),
        )
        .cast(INCIDENT_SCHEMA)  # type: ignore[arg-type]
    )
    patterns = out.select(
        kind=pl.lit(Kind.PATTERN_CHANGE.value),
        subject_type=pl.lit("meter"),
        subject_id="meter_id",
        ts_start=pl.lit(start),
        ts_end=pl.lit(start + dt.timedelta(days=1)),
        score=pl.col("score").round(4),
        # a changed pattern alone is a lead for an analyst, not an emergency
        severity=pl.when(pl.col("peer_log_ratio").abs() > 1.0)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low")),
        detector=pl.lit("isolation_forest_daily"),
        detector_version=pl.lit(DETECTOR_VERSION),
        evidence=pl.struct(
            *[
                pl.col(f).round(4)
                for f in (
                    "own_log_ratio",
                    "peer_log_ratio",
                    "night_share_delta",
                    "base_delta",
                    "peak_delta",
                )
            ],
            peer_group="peer_group",
            threshold=pl.lit(round(model.threshold, 4)),
        ).struct.json_encode(),
        intervals=pl.lit(1, pl.Int64),
    ).cast(INCIDENT_SCHEMA)  # type: ignore[arg-type]
    return pl.concat([patterns, peers])


@dataclass
class DailyResult:
    day: dt.date
    incidents: dict[str, int] = field(default_factory=dict)
    alerts: int = 0

    def as_json(self) -> str:
        return json.dumps(
            {"day": self.day.isoformat(), "incidents": self.incidents, "alerts": self.alerts}
        )


def run_daily(
    conn: psycopg.Connection[tuple[object, ...]],
    home: Path,
    day: dt.date,
    cfg: AnomalyConfig,
    *,
    alerter: Alerter | None = None,
) -> DailyResult:
    """The daily job: feeder balance always; the pattern model when one has been trained."""
    found = [feeder_balance(conn, day, cfg)]
    path = model_path(home)
    if path.exists():
        found.append(pattern_incidents(conn, DailyModel.load(path), day))
    incidents = pl.concat(found)
    store = AnomalyStore(conn)
    ids = store.record(incidents, merge_gap_s=cfg.merge_gap_s)
    result = DailyResult(day, dict(incidents.group_by("kind").len().iter_rows()))
    due = store.due_alerts(ids, cfg.alerts.min_severity)
    if due:
        (alerter or Alerter(sinks_from(cfg.alerts))).send(due)
        store.mark_alerted([int(r["id"]) for r in due])
        result.alerts = len(due)
    return result
