"""Anomaly records in PostgreSQL: one incident per row, extended while it goes on.

A detector sees an incident in pieces (one batch at a time, one Kafka poll at a time);
analysts want one case. So a candidate that touches or follows within ``merge_gap_s`` an
existing open, acknowledged or false-positive anomaly of the same subject and kind
extends it (span, worst score and severity, latest evidence) instead of adding a row.
A resolved anomaly is closed: if it comes back, that is a new incident.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import polars as pl
import psycopg
from psycopg.rows import dict_row

from metrify.anomaly.records import INCIDENT_SCHEMA, Status
from metrify.settings.anomaly import SEVERITIES

COLUMNS = (
    "id, kind, subject_type, subject_id, ts_start, ts_end, score, severity, detector,"
    " detector_version, evidence, intervals, status, changed_by, changed_at, note,"
    " created_at, updated_at, alerted_at"
)
_RANK = "array_position(ARRAY['info','low','medium','high','critical'], {})"

MERGE_SQL = """
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

EXTEND_SQL = f"""
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

INSERT_SQL = """
INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score, severity,
                       detector, detector_version, evidence, intervals)
SELECT kind, subject_type, subject_id, ts_start, ts_end, score, severity, detector,
       detector_version, evidence, intervals
FROM stage_anomalies s WHERE NOT EXISTS (SELECT 1 FROM anomaly_match m WHERE m.cid = s.cid)
ORDER BY cid
RETURNING id
"""


class AnomalyStore:
    """Writes, lists and changes anomaly records."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn

    def record(self, found: pl.DataFrame, *, merge_gap_s: int) -> list[int]:
        """Insert new incidents or extend running ones; returns the ids touched."""
        if not found.height:
            return []
        frame = found.select(list(INCIDENT_SCHEMA)).with_row_index("cid")
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
        cols = ", ".join(frame.columns)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_anomalies (cid bigint, kind text,"
                " subject_type text, subject_id text, ts_start timestamptz,"
                " ts_end timestamptz, score float8, severity text, detector text,"
                " detector_version text, evidence jsonb, intervals int) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY stage_anomalies ({cols}) FROM STDIN (FORMAT csv, NULL '')") as c:
                c.write(buffer.getbuffer())
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS anomaly_match (cid bigint, id bigint)"
                " ON COMMIT DELETE ROWS"
            )
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
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {COLUMNS} FROM anomalies WHERE id = ANY(%s) AND status = 'open'"
                f" AND alerted_at IS NULL AND {_RANK.format('severity')} >= %s ORDER BY id",
                (ids, rank),
            )
            return list(cur.fetchall())

    def mark_alerted(self, ids: list[int]) -> None:
        if ids:
            self.conn.execute("UPDATE anomalies SET alerted_at = now() WHERE id = ANY(%s)", (ids,))

    def get(self, anomaly_id: int) -> dict[str, Any] | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM anomalies WHERE id = %s", (anomaly_id,))
            return cur.fetchone()

    def list(
        self,
        *,
        kind: str | None = None,
        since: dt.datetime | None = None,
        subject: str | None = None,
        status: str | None = None,
        min_severity: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered."""
        where: list[str] = ["true"]
        params: list[object] = []
        if kind:
            where.append("kind = %s")
            params.append(kind)
        if since:
            where.append("ts_end >= %s")
            params.append(since)
        if subject:
            where.append("subject_id = %s")
            params.append(subject)
        if status:
            where.append("status = %s")
            params.append(status)
        if min_severity:
            where.append(f"{_RANK.format('severity')} >= %s")
            params.append(SEVERITIES.index(min_severity) + 1)
        params.append(limit)
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {COLUMNS} FROM anomalies WHERE {' AND '.join(where)}"
                " ORDER BY ts_start DESC, id DESC LIMIT %s",
                params,
            )
            return list(cur.fetchall())

    def set_status(
        self, anomaly_id: int, status: Status, operator: str, note: str | None = None
    ) -> dict[str, Any]:
        """Change an anomaly's status, recording who and when; a one-line error if absent."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"UPDATE anomalies SET status = %s, changed_by = %s, changed_at = now(),"
                f" note = coalesce(%s, note), updated_at = now() WHERE id = %s"
                f" RETURNING {COLUMNS}",
                (status.value, operator, note, anomaly_id),
            )
            row = cur.fetchone()
        if row is None:
            raise ValueError(f"no anomaly with id {anomaly_id}")
        return row


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    """An anomaly row as plain JSON values (times ISO 8601)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out


__all__ = ["COLUMNS", "AnomalyStore", "Status", "to_json"]
