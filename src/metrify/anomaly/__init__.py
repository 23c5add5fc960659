"""Anomaly detection: streaming detectors in the pipeline, a daily batch model, alerts.

Validation (``metrify.quality``) catches data that cannot be right; this package finds
data that is plausible but unusual: meters recording far less than they used to, export
without registered generation, grid frequency and voltage excursions, overloaded feeders,
broken weather sensors, and customers whose whole daily pattern changed.

Layout: ``config`` (thresholds, sinks), ``records`` (kinds, severities, incidents),
``state`` (per-subject baselines in PostgreSQL), ``baseline`` (hour-of-week levels and
EWMAs), ``meters`` / ``grid`` / ``weather`` (the detectors per contract), ``stage`` (the
pipeline's detect stage), ``store`` (the ``anomalies`` table), ``alerts`` (sinks),
``model`` and ``daily`` (the batch model and the daily job).

``metrify.settings`` imports this package for :class:`AnomalyConfig`, so the heavier parts
(the stage, its alert sinks) load on first use only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metrify.anomaly.records import Kind, Status
from metrify.settings.anomaly import AlertConfig, AnomalyConfig

if TYPE_CHECKING:
    from metrify.anomaly.stage import DetectStage, Pending
    from metrify.anomaly.store import AnomalyStore

__all__ = [
    "AlertConfig",
    "AnomalyConfig",
    "AnomalyStore",
    "DetectStage",
    "Kind",
    "Pending",
    "Status",
]


def __getattr__(name: str) -> Any:
    if name in ("DetectStage", "Pending"):
        from metrify.anomaly import stage

        return getattr(stage, name)
    if name == "AnomalyStore":
        from metrify.anomaly.store import AnomalyStore

        return AnomalyStore
    raise AttributeError(name)
