"""Anomaly detection: streaming detectors, a daily batch model, alert sinks.

Validation (``metrify.quality``) catches data that cannot be right; this package finds
data that is plausible but unusual: meters recording far less than they used to, export
without registered generation, grid frequency and voltage excursions, overloaded feeders,
broken weather sensors, and customers whose whole daily pattern changed.

Layout: ``records`` (incidents from flagged rows), ``state`` (the per-subject baselines
and running values, cached in memory), ``baseline`` (hour-of-week levels and EWMAs),
``meters`` / ``grid`` / ``weather`` (the detectors per contract), ``temperature`` (the
weather-adjusted expectation), ``stage`` (the steps around the detectors in the
pipeline's detect stage), ``alerts`` (sinks), ``model`` and ``daily`` (the batch model
and the daily checks).

Like every stage, this package transforms frames and touches no database: the pipeline
(:mod:`metrify.pipeline.detect`) and the daily job (:mod:`metrify.batch.daily`) hand it
state and stored days from :mod:`metrify.stores` and store what it finds. Kinds,
statuses and severities are :mod:`metrify.contracts.anomalies`, shared with the stores
and the doors.
"""

from __future__ import annotations

from metrify.contracts.anomalies import Kind, Status

__all__ = ["Kind", "Status"]
