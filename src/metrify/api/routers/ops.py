"""Operations: ``/health`` (the process answers), ``/ready`` (database reachable and
schema at head), ``/metrics`` (Prometheus; under several workers the sum of all of
them, see :mod:`metrify.ops.exposition`). Unauthenticated, like every probe; they
reveal no data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from metrify.api.deps import State
from metrify.api.models import Health, Ready
from metrify.ops import exposition
from metrify.stores import database, pools

router = APIRouter(tags=["operations"])
_head: list[str | None] = []


@router.get("/health", response_model=Health)
async def health() -> Any:
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(state: State) -> Any:
    if not _head:
        _head.append(await run_in_threadpool(database.head_revision))
    head = _head[0]
    revision: str | None = None
    reachable = False
    try:
        revision = await pools.schema_revision(state.apool, timeout=2)
        reachable = True
    except Exception:  # any failure means not ready; the detail is in the server log
        reachable = False
    ok = reachable and revision == head
    body = {
        "status": "ready" if ok else "not ready",
        "database": reachable,
        "schema_revision": revision,
        "head_revision": head,
        "replica": None if state.reads is None else state.reads.status(),
    }
    if not ok:
        from metrify.api.responses import ORJSONResponse

        return ORJSONResponse(body, status_code=503)
    return body


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    # off the event loop: with several workers this reads every worker's metric files
    body = await run_in_threadpool(exposition.latest)
    return Response(body, media_type=exposition.CONTENT_TYPE)
