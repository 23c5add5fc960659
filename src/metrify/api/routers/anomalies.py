"""``/v1/anomalies``: list incidents; acknowledge, resolve, mark false positive or reopen one.

Listing and status changes are :mod:`metrify.stores.anomalies`'s, the same the CLI uses;
this router adds HTTP: the principal's region scope, paging and the audit record.
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
from metrify.api import paging as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, client_address, request_id, require
from metrify.api.models import Page
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState
from metrify.contracts.anomalies import Severity, Status, StatusName
from metrify.contracts.records import ID_PATTERN
from metrify.stores.anomalies import (
    AnomalyQuery,
    NoSuchAnomaly,
    StatusConflict,
    change_status,
    list_anomalies_async,
)

router = APIRouter(prefix="/v1", tags=["anomalies"])
Reader = Annotated[Principal, Depends(require(Permission.READ_ANOMALIES))]
Acker = Annotated[Principal, Depends(require(Permission.ACK_ANOMALIES))]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (401, 403, 404, 409, 422, 429)
}


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
    status: StatusName
    changed_by: str | None
    changed_at: dt.datetime | None
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AnomalyPage(Page):
    items: list[Anomaly]


class Ack(BaseModel):
    note: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


@router.get("/anomalies", response_model=AnomalyPage, responses=ERRORS)
async def list_anomalies(
    state: State,
    principal: Reader,
    status: Annotated[StatusName | None, Query()] = None,
    severity: Annotated[Severity | None, Query(description="at least this severe")] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    subject_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    since: Annotated[dt.datetime | None, Query(description="ending after this time")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    """Newest first; filter by status, minimum severity, kind, subject and time."""
    query = AnomalyQuery(
        kind=kind,
        status=status,
        min_severity=severity,
        subject_id=subject_id,
        ending_after=None if since is None else q.utc(since),
        regions=principal.regions,
        before_id=None if cursor is None else q.decode_id_cursor(cursor),
        limit=limit + 1,
    )
    async with state.read_apool().connection() as conn:
        rows = await list_anomalies_async(conn, query)
    items = rows[:limit]
    more = len(rows) > limit
    return {"items": items, "next_cursor": q.encode_cursor(items[-1]["id"]) if more else None}


async def set_status(
    request: Request,
    state: AppState,
    principal: Principal,
    anomaly_id: int,
    status: Status,
    note: str | None,
) -> dict[str, Any]:
    """Move one anomaly to ``status`` (:func:`metrify.stores.anomalies.change_status`'s
    rules) and record who did it in the audit log, in one transaction: the routes below
    and the dashboard's triage forms both come here."""

    def work() -> dict[str, Any]:
        with state.pool.connection() as conn, conn.transaction():
            try:
                row = change_status(
                    conn, anomaly_id, status, principal.actor, note, regions=principal.regions
                )
            except NoSuchAnomaly:
                raise Problem(404, f"no anomaly {anomaly_id}") from None
            except StatusConflict as exc:
                raise Problem(409, str(exc)) from None
            audit.record(
                conn,
                audit.Event(
                    actor=principal.actor,
                    actor_kind=principal.kind,
                    action=f"anomalies.{ACTIONS[status]}",
                    target=str(anomaly_id),
                    request_id=request_id(request),
                    client=client_address(request),
                    details={"note": note},
                ),
            )
        return row

    return await run_in_threadpool(work)


#: the audit action (and route) of each status an operator may set
ACTIONS: dict[Status, str] = {
    Status.ACKNOWLEDGED: "acknowledge",
    Status.RESOLVED: "resolve",
    Status.FALSE_POSITIVE: "false_positive",
    Status.OPEN: "reopen",
}

AnomalyId = Annotated[int, Path(ge=1, lt=2**63)]
AckBody = Annotated[Ack | None, Body()]


@router.post("/anomalies/{anomaly_id}/acknowledge", response_model=Anomaly, responses=ERRORS)
async def acknowledge(
    request: Request, state: State, principal: Acker, anomaly_id: AnomalyId, body: AckBody = None
) -> Any:
    """Someone is on it: open -> acknowledged, with who, when and an optional note."""
    note = body.note if body else None
    return await set_status(request, state, principal, anomaly_id, Status.ACKNOWLEDGED, note)


@router.post("/anomalies/{anomaly_id}/resolve", response_model=Anomaly, responses=ERRORS)
async def resolve(
    request: Request, state: State, principal: Acker, anomaly_id: AnomalyId, body: AckBody = None
) -> Any:
    """The cause is dealt with: open, acknowledged or false positive -> resolved (closed:
    a recurrence becomes a new incident)."""
    note = body.note if body else None
    return await set_status(request, state, principal, anomaly_id, Status.RESOLVED, note)


@router.post("/anomalies/{anomaly_id}/false-positive", response_model=Anomaly, responses=ERRORS)
async def false_positive(
    request: Request, state: State, principal: Acker, anomaly_id: AnomalyId, body: AckBody = None
) -> Any:
    """Not a real problem: open, acknowledged or resolved -> false positive (detectors
    skip its span when they look for new incidents)."""
    note = body.note if body else None
    return await set_status(request, state, principal, anomaly_id, Status.FALSE_POSITIVE, note)


@router.post("/anomalies/{anomaly_id}/reopen", response_model=Anomaly, responses=ERRORS)
async def reopen(
    request: Request, state: State, principal: Acker, anomaly_id: AnomalyId, body: AckBody = None
) -> Any:
    """Back to open from any other status (it does not alert again: its alert went out)."""
    note = body.note if body else None
    return await set_status(request, state, principal, anomaly_id, Status.OPEN, note)
