"""Incidents found only on rows seen before are not new findings (a re-send's second
judgement); an incident holding one new row is."""

from __future__ import annotations

import datetime as dt

import polars as pl

from metrify.anomaly.stage import unseen_incidents
from metrify.contracts.anomalies import INCIDENT_SCHEMA

T0 = dt.datetime(2013, 1, 1, tzinfo=dt.UTC)
HALF = dt.timedelta(minutes=30)


def incident(subject_type: str, subject: str, start: int, end: int) -> dict[str, object]:
    return {
        "kind": "unusual_consumption",
        "subject_type": subject_type,
        "subject_id": subject,
        "ts_start": T0 + start * HALF,
        "ts_end": T0 + end * HALF,
        "score": 1.0,
        "severity": "low",
        "detector": "test",
        "detector_version": "1",
        "evidence": "{}",
        "intervals": end - start,
    }


def rows(meter: str, slots: range) -> pl.DataFrame:
    return pl.DataFrame(
        {"meter_id": [meter] * len(slots), "ts": [T0 + i * HALF for i in slots]},
        schema={"meter_id": pl.String, "ts": pl.Datetime("us", "UTC")},
    )


def test_only_incidents_of_seen_rows_are_dropped() -> None:
    # M1: rows 0..9 seen before, 10..11 new; M2: all new.
    assessed = pl.concat([rows("M1", range(12)), rows("M2", range(4))])
    seen = rows("M1", range(10))
    incidents = pl.DataFrame(
        [
            incident("meter", "M1", 2, 3),  # a seen row only: dropped
            incident("meter", "M1", 8, 10),  # seen rows only (end exclusive): dropped
            incident("meter", "M1", 9, 11),  # holds new row 10: kept
            incident("meter", "M2", 0, 1),  # a subject with nothing seen: kept
            incident("node", "M1", 2, 3),  # another subject type: not judged here, kept
        ],
        schema=INCIDENT_SCHEMA,
    )
    kept = unseen_incidents(incidents, assessed, seen, "meter_id", "meter")
    assert kept.select("subject_type", "subject_id", "intervals").rows() == [
        ("meter", "M1", 2),
        ("meter", "M2", 1),
        ("node", "M1", 1),
    ]
    assert kept.schema == incidents.schema


def test_nothing_seen_keeps_everything() -> None:
    incidents = pl.DataFrame([incident("meter", "M1", 0, 1)], schema=INCIDENT_SCHEMA)
    assessed = rows("M1", range(2))
    assert unseen_incidents(incidents, assessed, assessed.clear(), "meter_id", "meter").equals(
        incidents
    )
