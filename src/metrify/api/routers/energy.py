"""``GET /v1/energy``: energy, peak demand and interval counts per local bucket.

The same answer as ``metrify energy`` (:func:`metrify.stores.aggregates.answer`), for one
subject: a meter, a grid node, a region, a tariff segment or the fleet. Region scope: a
meter or region outside the caller's regions is not found (404), as elsewhere; node,
segment and fleet totals add up meters of every region, so a scoped caller gets 403.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.responses import JSON_OPTIONS
from metrify.api.scope import check_meter
from metrify.api.state import AppState
from metrify.contracts.records import ID_PATTERN
from metrify.stores import aggregates

router = APIRouter(prefix="/v1", tags=["query"])

Reader = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
Ident = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
Name = Annotated[str | None, Query(min_length=1, max_length=100)]


class EnergyBucket(BaseModel):
    """One local bucket: ``start`` in the answer's zone; counts of readings by kind."""

    start: str
    import_kwh: float
    export_kwh: float | None
    peak_kw: float | None
    present: int
    estimated: int
    suspect: int
    rejected: int
    missing: int


class EnergyAnswer(BaseModel):
    dim: Literal["meter", "node", "region", "segment", "fleet"]
    key: str
    resolution: Literal["30m", "1h", "1d", "1w", "1mo"]
    tz: str
    buckets: list[EnergyBucket]


#: what an energy answer depends on: (dim, key, resolution, from, to, tz)
Asked = tuple[aggregates.Dim, str, aggregates.Resolution, str, str, str | None]


def _answer(state: AppState, asked: Asked) -> tuple[str, bytes]:
    """The answer from the aggregates, kept in this worker's cache. A cached answer is
    one computed after every write committed before it (the aggregates refresh first),
    and the cache is emptied at the commit of any later write (``NOTIFY
    metrify_aggregates``); one computed while such a write committed is not kept."""
    since = state.energy.generation
    with state.pool.connection() as conn:
        found = aggregates.answer(conn, *asked, state.settings.fleet_timezone)
    state.energy.put(asked, found, since=since)
    return found


@router.get(
    "/energy",
    response_model=EnergyAnswer,
    responses={s: PROBLEM_SCHEMA for s in (400, 401, 403, 404, 422, 429)},
)
async def energy(
    state: State,
    principal: Reader,
    start: Annotated[str, Query(alias="from", max_length=40, description="local date or ISO")],
    end: Annotated[str, Query(alias="to", max_length=40, description="end, exclusive")],
    resolution: aggregates.Resolution = "1d",
    meter: Ident = None,
    node: Ident = None,
    region: Name = None,
    segment: Name = None,
    fleet: bool = False,
    tz: Annotated[str | None, Query(max_length=64, description="IANA zone")] = None,
) -> Response:
    """Energy (kWh), peak demand (kW) and interval counts per bucket in a zone (default:
    the meter's own, or ``fleet_timezone`` for groups), from the aggregates."""
    try:
        dim, key = aggregates.subject(meter, node, region, segment, fleet)
    except aggregates.BadQuery:
        raise Problem(
            400, "give exactly one of meter, node, region, segment or fleet=true"
        ) from None
    if dim == "meter":
        await check_meter(state, principal, key)
    elif principal.regions is not None:
        if dim != "region":
            raise Problem(403, f"{dim} totals span regions; ask per region or meter")
        if key not in principal.regions:
            raise Problem(404, f"no region {key}")
    asked: Asked = (dim, key, resolution, start, end, tz)
    found = state.energy.get(asked)
    try:
        if found is None:
            found = await run_in_threadpool(_answer, state, asked)
        zone, buckets = found
    except aggregates.BadQuery as exc:
        raise Problem(400, str(exc)) from None
    head = {"dim": dim, "key": key, "resolution": resolution, "tz": zone}
    body = orjson.dumps(head, option=JSON_OPTIONS)[:-1] + b',"buckets":' + buckets + b"}"
    return Response(body, media_type="application/json")
