"""``/v1/anomalies``: list incidents, and acknowledge one (operators).

Reads the ``anomalies`` table whose column names the anomaly stage keeps stable.
Meter incidents are region scoped like meters; grid and weather incidents are visible
to unscoped principals only (nodes and stations have no region).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from metrify.api import audit
from metrify.api import queries as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, client_address, request_id, require
from metrify.api.models import Page
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.contracts.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["anomalies"])
Reader = Annotated[Principal, Depends(require(Permission.READ_ANOMALIES))]
Acker = Annotated[Principal, Depends(require(Permission.ACK_ANOMALIES))]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (401, 403, 404, 409, 422, 429)
}
COLUMNS = (
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
)
Status = Literal["open", "acknowledged", "resolved", "false_positive"]
Severity = Literal["info", "low", "medium", "high", "critical"]


class Anomaly(BaseModel):
    id: int
    kind: str
    subject_type: Literal["meter", "node", "station"]
    subject_id: str
    ts_start: dt.datetime
    ts_end: dt.datetime
    score: float
    severity: Severity
    detector: str
    detector_version: str
    evidence: dict[str, Any] | list[Any] | None
    intervals: int
    status: Status
    changed_by: str | None
    changed_at: dt.datetime | None
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AnomalyPage(Page):
    items: list[Anomaly]


class Ack(BaseModel):
    note: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


def _scope(principal: Principal) -> tuple[str, list[Any]]:
    if principal.regions is None:
        return "TRUE", []
    return (
        "a.subject_type = 'meter' AND a.subject_id IN "
        "(SELECT meter_id FROM meters WHERE region = ANY(%s))",
        [list(principal.regions)],
    )


@router.get("/anomalies", response_model=AnomalyPage, responses=ERRORS)
async def list_anomalies(
    state: State,
    principal: Reader,
    status: Annotated[Status | None, Query()] = None,
    severity: Annotated[Severity | None, Query(description="at least this severe")] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    subject_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    since: Annotated[dt.datetime | None, Query(description="ending after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    """Newest first; filter by status, minimum severity, kind, subject and time."""
    scope, params = _scope(principal)
    where = [scope]
    if cursor is not None:
        where.append("a.id < %s")
        params.append(q.decode_id_cursor(cursor))
    levels = ["info", "low", "medium", "high", "critical"]
    for clause, value in (
        ("a.status = %s", status),
        ("a.severity = ANY(%s)", None if severity is None else levels[levels.index(severity) :]),
        ("a.kind = %s", kind),
        ("a.subject_id = %s", subject_id),
        ("a.ts_end > %s", None if since is None else q.utc(since)),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    cols = ", ".join(f"a.{c}" for c in COLUMNS)
    async with state.apool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {cols} FROM anomalies a WHERE {' AND '.join(where)} "
            "ORDER BY a.id DESC LIMIT %s",
            (*params, limit + 1),
        )
        rows = await cur.fetchall()
    items = [dict(zip(COLUMNS, r, strict=True)) for r in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "next_cursor": q.encode_cursor(items[-1]["id"]) if more else None}


@router.post("/anomalies/{anomaly_id}/acknowledge", response_model=Anomaly, responses=ERRORS)
async def acknowledge(
    request: Request,
    state: State,
    principal: Acker,
    anomaly_id: Annotated[int, Path(ge=1, lt=2**63)],
    body: Annotated[Ack | None, Body()] = None,
) -> Any:
    """Someone is on it: open -> acknowledged, with who, when and an optional note."""
    note = body.note if body else None
    scope, params = _scope(principal)
    cols = ", ".join(COLUMNS)

    def work() -> dict[str, Any]:
        with state.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                f"SELECT a.status FROM anomalies a WHERE a.id = %s AND {scope} FOR UPDATE",
                (anomaly_id, *params),
            ).fetchone()
            if row is None:
                raise Problem(404, f"no anomaly {anomaly_id}")
            if row[0] != "open":
                raise Problem(409, f"anomaly {anomaly_id} is {row[0]}, not open")
            updated = conn.execute(
                "UPDATE anomalies SET status = 'acknowledged', changed_by = %s, "
                "changed_at = now(), note = %s, updated_at = now() WHERE id = %s "
                f"RETURNING {cols}",
                (principal.actor, note, anomaly_id),
            ).fetchone()
            assert updated is not None
            audit.record(
                conn,
                audit.Event(
                    actor=principal.actor,
                    actor_kind=principal.kind,
                    action="anomalies.acknowledge",
                    target=str(anomaly_id),
                    request_id=request_id(request),
                    client=client_address(request),
                    details={"note": note},
                ),
            )
        return dict(zip(COLUMNS, updated, strict=True))

    return await run_in_threadpool(work)
