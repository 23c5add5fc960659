"""The daily anomaly checks: feeder energy balance, the pattern model and peer comparison.

These checks need a whole day of every meter on a feeder, which a stream never has at
once. The daily job (:mod:`metrify.batch.daily`, run by ``metrify anomalies daily --date
D`` or an Airflow task) reads the stored day back, hands it to these functions and
records what they find through the same store and alerts as the streaming detectors.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from metrify.anomaly.model import TRAILING_DAYS, DailyModel, features, fit
from metrify.anomaly.records import DETECTOR_VERSION
from metrify.contracts.anomalies import INCIDENT_SCHEMA, Kind
from metrify.settings.anomaly import AnomalyConfig

PEER_LOG_RATIO = 1.1  # ln 3


def model_path(home: Path) -> Path:
    return home / "models" / "anomaly_daily.joblib"


def day_incidents(
    found: pl.DataFrame,
    day: dt.date,
    *,
    kind: Kind,
    subject_type: str,
    subject_id: str,
    score: pl.Expr,
    severity: pl.Expr,
    detector: str,
    evidence: dict[str, pl.Expr],
) -> pl.DataFrame:
    """One incident per row of ``found``, spanning the UTC ``day`` (a daily check judges
    whole days): ``subject_id`` names the id column, the expressions are evaluated on
    ``found``."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return found.select(
        kind=pl.lit(kind.value),
        subject_type=pl.lit(subject_type),
        subject_id=subject_id,
        ts_start=pl.lit(start),
        ts_end=pl.lit(start + dt.timedelta(days=1)),
        score=score,
        severity=severity,
        detector=pl.lit(detector),
        detector_version=pl.lit(DETECTOR_VERSION),
        evidence=pl.struct([e.alias(k) for k, e in evidence.items()]).struct.json_encode(),
        intervals=pl.lit(1, pl.Int64),
    ).cast(INCIDENT_SCHEMA)  # type: ignore[arg-type]


def feeder_incidents(energy: pl.DataFrame, day: dt.date, cfg: AnomalyConfig) -> pl.DataFrame:
    """Feeders whose load that day exceeds what their meters recorded by > max_loss_share.

    ``energy``: per feeder, ``node_kwh`` carried and ``meters_kwh`` recorded by its
    ``meters`` that day. Technical losses are a few per cent and grow with loading; a
    share well above that is energy consumed but not metered (bypass, tampering,
    unregistered connections) or a feeder whose meter mapping is wrong. Both are worth
    an analyst's time.
    """
    frame = energy.with_columns(loss=1.0 - pl.col("meters_kwh") / pl.col("node_kwh"))
    return day_incidents(
        frame.filter(pl.col("loss") > cfg.max_loss_share),
        day,
        kind=Kind.FEEDER_IMBALANCE,
        subject_type="node",
        subject_id="node_id",
        score=pl.col("loss").round(4),
        severity=pl.when(pl.col("loss") > 2 * cfg.max_loss_share)
        .then(pl.lit("high"))
        .otherwise(pl.lit("medium")),
        detector="energy_balance",
        evidence={
            "node_kwh": pl.col("node_kwh").round(1),
            "meters_kwh": pl.col("meters_kwh").round(1),
            "meters": pl.col("meters"),
            "unexplained_share": pl.col("loss").round(4),
            "expected_max_share": pl.lit(cfg.max_loss_share),
        },
    )


def training_days(until: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """The stored days [start, end) training on ``days`` before ``until`` needs (each
    meter-day is judged against the trailing days before it)."""
    return until - dt.timedelta(days=days + TRAILING_DAYS), until


def train(daily: pl.DataFrame, peers: pl.DataFrame, until: dt.date, days: int) -> DailyModel:
    """Fit the daily model on the ``days`` before ``until`` of ``daily`` (read for
    :func:`training_days`); ``peers``: ``meter_id, peer_group``."""
    feats = features(daily, peers).filter(pl.col("day") >= until - dt.timedelta(days=days))
    return fit(feats)


def pattern_days(day: dt.date) -> tuple[dt.date, dt.date]:
    """The stored days [start, end) judging ``day`` needs: it and the trailing days."""
    return day - dt.timedelta(days=TRAILING_DAYS + 1), day + dt.timedelta(1)


def pattern_incidents(
    daily: pl.DataFrame, peers: pl.DataFrame, model: DailyModel, day: dt.date
) -> pl.DataFrame:
    """Meter-days the model isolates above its threshold, and peers-relative outliers
    (``daily``: read for :func:`pattern_days`; ``peers``: ``meter_id, peer_group``)."""
    feats = features(daily, peers).filter(pl.col("day") == day)
    if not feats.height:
        return pl.DataFrame(schema=INCIDENT_SCHEMA)
    scored = feats.with_columns(score=pl.Series(model.score(feats)))
    patterns = day_incidents(
        scored.filter(pl.col("score") > model.threshold),
        day,
        kind=Kind.PATTERN_CHANGE,
        subject_type="meter",
        subject_id="meter_id",
        score=pl.col("score").round(4),
        # a changed pattern alone is a lead for an analyst, not an emergency
        severity=pl.when(pl.col("peer_log_ratio").abs() > 1.0)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low")),
        detector="isolation_forest_daily",
        evidence={
            **{
                f: pl.col(f).round(4)
                for f in (
                    "own_log_ratio",
                    "peer_log_ratio",
                    "night_share_delta",
                    "base_delta",
                    "peak_delta",
                )
            },
            "peer_group": pl.col("peer_group"),
            "threshold": pl.lit(round(model.threshold, 4)),
        },
    )
    # changed by a factor of three or more against what similar customers did that day
    outliers = day_incidents(
        scored.filter(pl.col("peer_log_ratio").abs() > PEER_LOG_RATIO),
        day,
        kind=Kind.PEER_OUTLIER,
        subject_type="meter",
        subject_id="meter_id",
        score=pl.col("peer_log_ratio").round(4),
        severity=pl.lit("low"),
        detector="peer_median",
        evidence={
            "peer_group": pl.col("peer_group"),
            "own_change": pl.col("own_log_ratio").exp().round(3),
            "peers_change": (pl.col("own_log_ratio") - pl.col("peer_log_ratio")).exp().round(3),
        },
    )
    return pl.concat([patterns, outliers])
