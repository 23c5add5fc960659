"""``GET /v1/energy``: energy, peak demand and interval counts per local bucket.

The same answer as ``metrify energy`` (:func:`metrify.stores.aggregates.answer`), for one
subject: a meter, a grid node, a region, a tariff segment or the fleet; region scope and
the worker's cache are :mod:`metrify.api.energy`'s, shared with the hot path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.energy import Asked, check_scope, energy_answer
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
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
    #: the commodity summed (a group's members of it; a meter's own)
    commodity: Literal["electricity", "gas", "heat", "water"]
    #: the unit of import_kwh, export_kwh (m3 for water) and of peak_kw per hour
    unit: str
    buckets: list[EnergyBucket]


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
    commodity: Annotated[
        Literal["electricity", "gas", "heat", "water"] | None,
        Query(description="which meters a group sums (default electricity); a meter's own"),
    ] = None,
) -> Response:
    """Energy (kWh; water in m³), peak demand (kW) and interval counts per bucket in a
    zone (default: the meter's own, or ``fleet_timezone`` for groups), from the
    aggregates: a group sums its meters of one commodity, electricity unless asked."""
    try:
        dim, key = aggregates.subject(meter, node, region, segment, fleet)
    except aggregates.BadQuery:
        raise Problem(
            400, "give exactly one of meter, node, region, segment or fleet=true"
        ) from None
    await check_scope(state, principal, dim, key)
    asked: Asked = (dim, key, resolution, start, end, tz, commodity)
    body = state.energy.get(asked)
    if body is None:
        try:
            body = await run_in_threadpool(energy_answer, state, asked)
        except aggregates.BadQuery as exc:
            raise Problem(400, str(exc)) from None
    return Response(body, media_type="application/json")
