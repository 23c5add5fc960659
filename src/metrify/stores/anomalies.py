"""The ``anomalies`` table: incidents recorded, extended, listed and worked on.

A detector sees an incident in pieces (one batch at a time, one Kafka poll at a time);
analysts want one case. So a candidate that touches or follows within ``merge_gap_s`` an
existing open, acknowledged or false-positive anomaly of the same subject and kind
extends it (span, worst score and severity, latest evidence) instead of adding a row.
A resolved anomaly is closed: if it comes back, that is a new incident.

Listing and status changes live here once, for every door: ``metrify anomalies ...``
and ``/v1/anomalies`` show the same rows in the same order and follow the same rules
(:func:`change_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl
import psycopg

from metrify.contracts.anomalies import INCIDENT_SCHEMA, SEVERITIES, Status
from metrify.stores.postgres import copy_frame

__all__ = [
    "COLUMNS",
    "AnomalyQuery",
    "AnomalyStore",
    "NoSuchAnomaly",
    "StatusConflict",
    "change_status",
    "list_anomalies",
    "list_anomalies_async",
]

#: what every read of an anomaly returns, in this order
COLUMNS: Final = (
    "id",
    "kind",
    "subject_type",
    "subject_id",
    "ts_start",
    "ts_end",
    "score",
    "severity",
    "detector",
    "detector_version",
    "evidence",
    "intervals",
    "status",
    "changed_by",
    "changed_at",
    "note",
    "created_at",
    "updated_at",
    "alerted_at",
)
_SELECT: Final = ", ".join(f"a.{c}" for c in COLUMNS)
_RANK: Final = "array_position(ARRAY['info','low','medium','high','critical'], {})"

MERGE_SQL: Final = """
INSERT INTO anomaly_match
SELECT DISTINCT ON (s.cid) s.cid, a.id
FROM stage_anomalies s
JOIN anomalies a ON a.kind = s.kind AND a.subject_type = s.subject_type
     AND a.subject_id = s.subject_id
     AND a.status IN ('open', 'acknowledged', 'false_positive')
     AND a.ts_end >= s.ts_start - make_interval(secs => %(gap)s)
     AND a.ts_start <= s.ts_end + make_interval(secs => %(gap)s)
ORDER BY s.cid, a.ts_end DESC;
"""

EXTEND_SQL: Final = f"""
WITH agg AS (
    SELECT m.id, min(s.ts_start) AS ts_start, max(s.ts_end) AS ts_end, max(s.score) AS score,
           max({_RANK.format("s.severity")}) AS rank, sum(s.intervals) AS intervals,
           (array_agg(s.evidence ORDER BY s.ts_end DESC))[1] AS evidence
    FROM anomaly_match m JOIN stage_anomalies s ON s.cid = m.cid
    GROUP BY m.id
)
UPDATE anomalies a SET
    ts_start = least(a.ts_start, agg.ts_start),
    ts_end = greatest(a.ts_end, agg.ts_end),
    score = greatest(a.score, agg.score),
    severity = (ARRAY['info','low','medium','high','critical'])[
        greatest({_RANK.format("a.severity")}, agg.rank)],
    evidence = agg.evidence,
    -- a re-delivered piece lies inside the span and adds nothing
    intervals = a.intervals + CASE WHEN agg.ts_end > a.ts_end THEN agg.intervals ELSE 0 END,
    updated_at = now()
FROM agg WHERE a.id = agg.id
  AND (agg.ts_start < a.ts_start OR agg.ts_end > a.ts_end OR agg.score > a.score)
RETURNING a.id
"""

INSERT_SQL: Final = """
INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score, severity,
                       detector, detector_version, evidence, intervals)
SELECT kind, subject_type, subject_id, ts_start, ts_end, score, severity, detector,
       detector_version, evidence, intervals
FROM stage_anomalies s WHERE NOT EXISTS (SELECT 1 FROM anomaly_match m WHERE m.cid = s.cid)
ORDER BY cid
RETURNING id
"""


def _row(values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(COLUMNS, values, strict=True))


class AnomalyStore:
    """Records incidents the detectors found and tells which of them are due an alert."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn

    def record(self, found: pl.DataFrame, *, merge_gap_s: int) -> list[int]:
        """Insert new incidents or extend running ones; returns the ids touched."""
        if not found.height:
            return []
        frame = found.select(list(INCIDENT_SCHEMA)).with_row_index("cid")
        # Inside a caller's transaction (a load's last batch records its verdicts in the
        # one that saves the detector state) the stage tables still hold an earlier
        # call's rows: ON COMMIT DELETE ROWS has not run, and a second call matched the
        # first call's incidents again under its own numbers.
        nested = self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_anomalies (cid bigint, kind text,"
                " subject_type text, subject_id text, ts_start timestamptz,"
                " ts_end timestamptz, score float8, severity text, detector text,"
                " detector_version text, evidence jsonb, intervals int) ON COMMIT DELETE ROWS"
            )
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS anomaly_match (cid bigint, id bigint)"
                " ON COMMIT DELETE ROWS"
            )
            if nested:
                cur.execute("DELETE FROM stage_anomalies")
                cur.execute("DELETE FROM anomaly_match")
            copy_frame(cur, "stage_anomalies", frame)
            cur.execute(MERGE_SQL, {"gap": merge_gap_s})
            cur.execute(EXTEND_SQL)
            ids = [int(r[0]) for r in cur.fetchall()]  # type: ignore[call-overload]
            cur.execute(INSERT_SQL)
            ids += [int(r[0]) for r in cur.fetchall()]  # type: ignore[call-overload]
        return ids

    def spans(self, subject_type: str, ids: pl.Series, since: dt.datetime) -> pl.DataFrame:
        """Stored incident spans of these subjects ending after ``since`` (not false positives)."""
        rows = self.conn.execute(
            "SELECT subject_id, ts_start, ts_end FROM anomalies WHERE subject_type = %s"
            " AND subject_id = ANY(%s) AND ts_end > %s AND status <> 'false_positive'",
            (subject_type, ids.unique().to_list(), since),
        ).fetchall()
        return pl.DataFrame(
            rows,
            schema={
                "subject_id": pl.String(),
                "ts_start": INCIDENT_SCHEMA["ts_start"],
                "ts_end": INCIDENT_SCHEMA["ts_end"],
            },
            orient="row",
        )

    def due_alerts(self, ids: list[int], min_severity: str) -> list[dict[str, Any]]:
        """Touched anomalies that are open, severe enough and never alerted."""
        if not ids:
            return []
        rank = SEVERITIES.index(min_severity) + 1
        rows = self.conn.execute(
            f"SELECT {_SELECT} FROM anomalies a WHERE a.id = ANY(%s) AND a.status = 'open'"
            f" AND a.alerted_at IS NULL AND {_RANK.format('a.severity')} >= %s ORDER BY a.id",
            (ids, rank),
        ).fetchall()
        return [_row(r) for r in rows]

    def mark_alerted(self, ids: list[int]) -> None:
        if ids:
            self.conn.execute("UPDATE anomalies SET alerted_at = now() WHERE id = ANY(%s)", (ids,))


# --- reading and working on anomalies (the CLI and the HTTP API) ---------------------


@dataclass(frozen=True)
class AnomalyQuery:
    """Which anomalies a listing shows: newest first (the highest id: the latest found),
    at most ``limit``.

    ``ending_after``: anomalies whose span ends after this instant. ``regions``: None for
    every subject; else only meters of these regions (nodes and stations have no region,
    so a region-bound reader sees none of them). ``before_id``: ids below this one (the
    next page after a page whose last id it is).
    """

    kind: str | None = None
    status: str | None = None
    min_severity: str | None = None
    subject_id: str | None = None
    ending_after: dt.datetime | None = None
    regions: Sequence[str] | None = None
    before_id: int | None = None
    limit: int = 100

    def sql(self) -> tuple[str, list[Any]]:
        """The one query every listing runs, and its parameters."""
        scope, params = _scope(self.regions)
        where = [scope]
        for clause, value in (
            ("a.id < %s", self.before_id),
            ("a.status = %s", self.status),
            ("a.severity = ANY(%s)", _at_least(self.min_severity)),
            ("a.kind = %s", self.kind),
            ("a.subject_id = %s", self.subject_id),
            ("a.ts_end > %s", self.ending_after),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        params.append(self.limit)
        sql = f"SELECT {_SELECT} FROM anomalies a WHERE {' AND '.join(where)} ORDER BY a.id DESC"
        return sql + " LIMIT %s", params


def _at_least(severity: str | None) -> list[str] | None:
    return None if severity is None else list(SEVERITIES[SEVERITIES.index(severity) :])


def _scope(regions: Sequence[str] | None) -> tuple[str, list[Any]]:
    """The anomalies a reader bound to ``regions`` may see (None: all)."""
    if regions is None:
        return "TRUE", []
    return (
        "a.subject_type = 'meter' AND a.subject_id IN "
        "(SELECT meter_id FROM meters WHERE region = ANY(%s))",
        [list(regions)],
    )


def list_anomalies(conn: psycopg.Connection[Any], query: AnomalyQuery) -> list[dict[str, Any]]:
    """The anomalies ``query`` selects, as rows keyed by :data:`COLUMNS`."""
    sql, params = query.sql()
    return [_row(r) for r in conn.execute(sql, params).fetchall()]


async def list_anomalies_async(
    conn: psycopg.AsyncConnection[Any], query: AnomalyQuery
) -> list[dict[str, Any]]:
    """:func:`list_anomalies` on an async connection (the HTTP API's event loop)."""
    sql, params = query.sql()
    cur = await conn.execute(sql, params)
    return [_row(r) for r in await cur.fetchall()]


class NoSuchAnomaly(ValueError):
    """No anomaly with this id (or none the caller may see)."""

    def __init__(self, anomaly_id: int) -> None:
        super().__init__(f"no anomaly with id {anomaly_id}")
        self.anomaly_id = anomaly_id


class StatusConflict(ValueError):
    """The anomaly's status does not allow the change asked for."""

    def __init__(self, anomaly_id: int, current: Status, wanted: Status) -> None:
        allowed = CHANGES_FROM[wanted]
        if current is wanted and len(allowed) > 1:
            message = f"anomaly {anomaly_id} is already {current}"
        else:
            message = f"anomaly {anomaly_id} is {current}, not {' or '.join(allowed)}"
        super().__init__(message)
        self.current = current


#: the statuses each status may be set from
CHANGES_FROM: Final[dict[Status, tuple[Status, ...]]] = {
    # someone is on a live case: acknowledging a closed one would revive it unnoticed,
    # acknowledging an acknowledged one would take it from whoever is on it
    Status.ACKNOWLEDGED: (Status.OPEN,),
    Status.RESOLVED: (Status.OPEN, Status.ACKNOWLEDGED, Status.FALSE_POSITIVE),
    Status.FALSE_POSITIVE: (Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED),
    Status.OPEN: (Status.ACKNOWLEDGED, Status.RESOLVED, Status.FALSE_POSITIVE),
}


def change_status(
    conn: psycopg.Connection[Any],
    anomaly_id: int,
    status: Status,
    operator: str,
    note: str | None = None,
    *,
    regions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Set an anomaly's status, recording who changed it and when; the row as it is now.

    The rules an operator works by, whichever door they use:

    * acknowledge (someone is on it) only an open anomaly;
    * resolve, mark a false positive or reopen from any other status (resolving a false
      positive closes it, so a recurrence is a new incident; a resolved case found to be
      a false alarm can be marked so afterwards);
    * setting the status it already has is refused: it would only overwrite who changed
      it and when;
    * a note replaces the one before; without a note the one before stays, so a later
      change without words does not erase why an earlier one was made.

    ``regions``: the caller may only see meters of these regions (None: everything); an
    anomaly out of sight is reported as absent. Raises :class:`NoSuchAnomaly` or
    :class:`StatusConflict` (both ``ValueError``). Runs in its own transaction, or as a
    savepoint of the caller's, which may then record the change in the same one.
    """
    scope, params = _scope(regions)
    with conn.transaction():
        row = conn.execute(
            f"SELECT a.status FROM anomalies a WHERE a.id = %s AND {scope} FOR UPDATE",
            (anomaly_id, *params),
        ).fetchone()
        if row is None:
            raise NoSuchAnomaly(anomaly_id)
        current = Status(row[0])
        if current not in CHANGES_FROM[status]:
            raise StatusConflict(anomaly_id, current, status)
        updated = conn.execute(
            "UPDATE anomalies a SET status = %s, changed_by = %s, changed_at = now(),"
            f" note = coalesce(%s, note), updated_at = now() WHERE a.id = %s RETURNING {_SELECT}",
            (status.value, operator, note, anomaly_id),
        ).fetchone()
    assert updated is not None  # the row is locked
    return _row(updated)


def counts(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    """(kind, severity, incidents) over every recorded anomaly, most frequent first: the
    one-line overview a first load or a demo ends with."""
    rows = conn.execute(
        "SELECT kind, severity, count(*) FROM anomalies GROUP BY 1, 2 ORDER BY 3 DESC"
    ).fetchall()
    return [(str(kind), str(severity), int(n)) for kind, severity, n in rows]
