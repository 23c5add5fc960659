"""The batch jobs' run log (``batch_runs``, migration 0015): a row per run of one job
over one data interval.

A run's row is written when it starts and committed at once, so a run that dies leaves
a ``running`` row behind rather than nothing; it is finished with its outcome in a
second statement. Rows are only added and finished, never replaced: re-running an
interval adds a run, and the log keeps every attempt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import orjson

from metrify.stores.pools import Connection

__all__ = ["STATUSES", "RunRow", "done", "finish", "history", "start"]

STATUSES: Final = ("running", "ok", "failed", "skipped")


@dataclass(frozen=True)
class RunRow:
    """One run as stored."""

    id: int
    job: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    rows: int | None
    details: dict[str, Any] | None
    error: str | None
    runner: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "interval_start": self.interval_start.isoformat(),
            "interval_end": self.interval_end.isoformat(),
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "rows": self.rows,
            "details": self.details,
            "error": self.error,
            "runner": self.runner,
        }


def start(conn: Connection, job: str, start: dt.datetime, end: dt.datetime, runner: str) -> int:
    """Record that ``job`` starts over [start, end); the run's id. Committed at once
    (``conn`` in autocommit), so the row outlives a crash of the job."""
    row = conn.execute(
        "INSERT INTO batch_runs (job, interval_start, interval_end, status, runner)"
        " VALUES (%s, %s, %s, 'running', %s) RETURNING id",
        (job, start, end, runner),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish(
    conn: Connection,
    run_id: int,
    status: str,
    *,
    rows: int | None = None,
    details: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Close run ``run_id`` with its outcome: ``ok``, ``failed`` or ``skipped``."""
    if status not in STATUSES[1:]:
        raise ValueError(f"a run ends ok, failed or skipped, not {status}")
    conn.execute(
        "UPDATE batch_runs SET status = %s, finished_at = clock_timestamp(), rows = %s,"
        " details = %s::jsonb, error = %s WHERE id = %s AND status = 'running'",
        (
            status,
            rows,
            None if details is None else orjson.dumps(details, default=str).decode(),
            error,
            run_id,
        ),
    )


def done(conn: Connection, job: str, start: dt.datetime) -> bool:
    """Whether ``job`` has finished the interval starting at ``start`` ok at least once."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM batch_runs"
        " WHERE job = %s AND interval_start = %s AND status = 'ok')",
        (job, start),
    ).fetchone()
    return bool(row and row[0])


def history(
    conn: Connection,
    *,
    job: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 1000,
) -> list[RunRow]:
    """Runs, oldest interval first and in the order they started within one."""
    rows = conn.execute(
        "SELECT id, job, interval_start, interval_end, status, started_at, finished_at,"
        " rows, details, error, runner FROM batch_runs"
        " WHERE (%(job)s::text IS NULL OR job = %(job)s)"
        " AND (%(since)s::timestamptz IS NULL OR interval_start >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR interval_start < %(until)s)"
        " ORDER BY interval_start, started_at, id LIMIT %(limit)s",
        {"job": job, "since": since, "until": until, "limit": limit},
    ).fetchall()
    return [RunRow(*row) for row in rows]
