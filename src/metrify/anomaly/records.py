"""Incidents built from the rows detectors flag (kinds and the incident schema are
``metrify.contracts.anomalies``).

Detectors mark rows; analysts work on incidents. One incident is one run of flagged
intervals of one subject and one kind (gaps up to ``merge_gap_s`` do not split it), so a
bypassed meter is one case with a start and an end, not thousands of flagged rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from metrify.contracts.anomalies import INCIDENT_SCHEMA, Kind

#: bumped when a detector's logic changes, so old and new records can be told apart.
#: 2: hour-of-week in the meter's local time, bursts judged against the meter's record,
#: drop severity by persistence (72 h medium, 7 days high).
DETECTOR_VERSION: Final = "3"


def empty_incidents() -> pl.DataFrame:
    return pl.DataFrame(schema=INCIDENT_SCHEMA)


def severity_by(score: pl.Expr, steps: list[tuple[float, str]]) -> pl.Expr:
    """Severity from a score: ``steps`` are (lowest score, severity), ascending."""
    expr: pl.Expr = pl.lit(steps[0][1])
    for threshold, name in steps[1:]:
        expr = pl.when(score >= threshold).then(pl.lit(name)).otherwise(expr)
    return expr


@dataclass(frozen=True)
class Subject:
    """Whose incidents: subject type, the frame's id column, and the merge gap."""

    type: str
    column: str
    merge_gap_s: int


def incidents(
    flagged: pl.DataFrame,
    *,
    kind: Kind,
    on: Subject,
    detector: str,
    severity: pl.Expr,
    evidence: dict[str, pl.Expr],
) -> pl.DataFrame:
    """Group flagged rows (``subject``, ``ts``, ``interval_s``, ``score``, ...) into incidents.

    ``severity`` and ``evidence`` are evaluated on the aggregated incident, whose columns are
    ``score`` (the worst), ``intervals``, ``ts_start``, ``ts_end`` and the means of any other
    numeric column of ``flagged``. An optional ``since`` column moves ``ts_start`` back to
    when a condition that must last (a drop) began.
    """
    if not flagged.height:
        return empty_incidents()
    subject, subject_type, merge_gap_s = on.column, on.type, on.merge_gap_s
    extra = [
        c
        for c, t in flagged.schema.items()
        if c not in {subject, "ts", "interval_s", "score"} and t.is_numeric()
    ]
    rows = flagged.sort(subject, "ts").with_columns(
        end=pl.col("ts") + pl.duration(seconds=pl.col("interval_s"))
    )
    prev_end = pl.col("end").shift(1).over(subject)
    new_run = prev_end.is_null() | ((pl.col("ts") - prev_end) > pl.duration(seconds=merge_gap_s))
    # ``since``: when the condition began, for detectors that flag only once it has lasted.
    start = pl.col("ts").min()
    if "since" in rows.columns:
        start = pl.min_horizontal(start, pl.col("since").min())
    grouped = (
        rows.with_columns(run=new_run.cum_sum().over(subject))
        .group_by(subject, "run")
        .agg(
            *[pl.col(c).mean() for c in extra],
            start.alias("ts_start"),
            pl.col("end").max().alias("ts_end"),
            pl.col("score").max(),
            pl.len().cast(pl.Int64).alias("intervals"),
        )
    )
    return grouped.select(
        kind=pl.lit(kind.value),
        subject_type=pl.lit(subject_type),
        subject_id=pl.col(subject),
        ts_start="ts_start",
        ts_end="ts_end",
        score=pl.col("score").round(3),
        severity=severity,
        detector=pl.lit(detector),
        detector_version=pl.lit(DETECTOR_VERSION),
        evidence=pl.struct([e.alias(k) for k, e in evidence.items()]).struct.json_encode(),
        intervals="intervals",
    ).sort("subject_id", "ts_start", "ts_end")  # (two runs of one drop share a start)
