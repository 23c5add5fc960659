"""The daily anomaly job: train the pattern model, and check a stored day.

Run by ``metrify anomalies train`` / ``metrify anomalies daily --date D`` or an Airflow
task calling :func:`run_daily`. The checks (:mod:`metrify.anomaly.daily`) need a whole
day of every meter on a feeder, which a stream never has at once; this job reads the day
back from PostgreSQL and records what they find through the same store and alerts as
the streaming detectors.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import psycopg

from metrify.anomaly import daily
from metrify.anomaly.alerts import Alerter
from metrify.anomaly.daily import model_path
from metrify.anomaly.model import DailyModel
from metrify.pipeline.detect import record_incidents
from metrify.settings.anomaly import AnomalyConfig
from metrify.stores.anomalies import AnomalyStore
from metrify.stores.detector_inputs import daily_use, feeder_energy, peer_groups

__all__ = ["DailyResult", "feeder_balance", "model_path", "run_daily", "train"]

Connection = psycopg.Connection[Any]


def feeder_balance(conn: Connection, day: dt.date, cfg: AnomalyConfig) -> pl.DataFrame:
    """Feeders whose load on the UTC ``day`` exceeds what their meters recorded by more
    than ``max_loss_share`` (see :func:`metrify.anomaly.daily.feeder_incidents`)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    energy = feeder_energy(conn, start, start + dt.timedelta(days=1))
    return daily.feeder_incidents(energy, day, cfg)


def train(conn: Connection, home: Path, until: dt.date, days: int) -> DailyModel:
    """Fit the daily model on ``days`` before ``until`` and save it under ``home``."""
    meter_days = daily_use(conn, *daily.training_days(until, days))
    model = daily.train(meter_days, peer_groups(conn), until, days)
    model.save(model_path(home))
    return model


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
    conn: Connection,
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
        model = DailyModel.load(path)
        meter_days = daily_use(conn, *daily.pattern_days(day))
        found.append(daily.pattern_incidents(meter_days, peer_groups(conn), model, day))
    incidents = pl.concat(found)
    result = DailyResult(day, dict(incidents.group_by("kind").len().iter_rows()))
    _, result.alerts = record_incidents(AnomalyStore(conn), incidents, cfg, alerter)
    return result
