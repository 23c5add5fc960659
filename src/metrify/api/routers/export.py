"""``GET /v1/readings/export``: bulk CSV or Parquet download, streamed, audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from metrify.api import audit
from metrify.api import export as ex
from metrify.api import paging as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.contracts.records import ID_RE

router = APIRouter(prefix="/v1", tags=["export"])

Exporter = Annotated[Principal, Depends(require(Permission.EXPORT))]
MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


@router.get(
    "/readings/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "readings, streamed",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        401: PROBLEM_SCHEMA,
        403: PROBLEM_SCHEMA,
        422: PROBLEM_SCHEMA,
        429: PROBLEM_SCHEMA,
    },
)
async def export_readings(
    request: Request,
    state: State,
    principal: Exporter,
    start: Annotated[dt.datetime, Query(alias="from")],
    end: Annotated[dt.datetime, Query(alias="to")],
    meter_id: Annotated[list[str] | None, Query(max_length=1000)] = None,
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> Any:
    """Raw readings of the given meters (default: all in scope) in [from, to)."""
    start, end = q.check_range(start, end)
    ids = meter_id or None
    for ident in ids or ():
        if not ID_RE.match(ident):
            raise Problem(422, f"invalid meter_id {ident[:70]!r}")
    selection = ex.Selection(start, end, ids, principal.regions)
    event = audit.event(
        request,
        principal,
        "export.readings",
        ",".join(ids)[:500] if ids else "(all in scope)",
        {"from": start.isoformat(), "to": end.isoformat(), "format": fmt},
    )

    def write_audit() -> None:
        with state.pool.connection() as conn:
            audit.record(conn, event)

    await run_in_threadpool(write_audit)
    stream = ex.csv_stream if fmt == "csv" else ex.parquet_stream
    name = f"readings-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.{fmt}"
    return StreamingResponse(
        stream(state.read_pool(), selection),
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
