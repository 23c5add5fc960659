"""Read endpoints: readings at a resolution, latest, quality, grid, weather, fleet.

Meter-level answers are region scoped: a meter outside the caller's regions is reported
as not found (404), exactly like a meter that does not exist, so scope does not leak
which meters exist elsewhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from metrify.api import paging as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, demand, require
from metrify.api.latest import latest_answer
from metrify.api.models import (
    FleetSummary,
    LatestReading,
    MeterEventsPage,
    QualityPage,
    QuarantinePage,
    ReadingsPage,
    SeriesPage,
)
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.responses import JSON_OPTIONS
from metrify.api.scope import check_meter, in_scope, not_found
from metrify.api.state import AppState
from metrify.contracts.records import CONTRACTS, ID_PATTERN
from metrify.stores import events as event_reads
from metrify.stores.reads import fleet as fleet_reads
from metrify.stores.reads import quality as quality_reads
from metrify.stores.reads import quarantine as quarantine_reads
from metrify.stores.reads import readings as readings_reads
from metrify.stores.reads import series

router = APIRouter(prefix="/v1", tags=["query"])

Aggregates = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
Quarantine = Annotated[Principal, Depends(require(Permission.READ_QUARANTINE))]
Raw = Annotated[Principal, Depends(require(Permission.READ_RAW))]
MeterId = Annotated[str, Path(pattern=ID_PATTERN, description="meter id")]
NodeId = Annotated[str, Path(pattern=ID_PATTERN)]
StationId = Annotated[str, Path(pattern=ID_PATTERN)]
From = Annotated[dt.datetime, Query(alias="from", description="start (inclusive), ISO 8601")]
To = Annotated[dt.datetime, Query(alias="to", description="end (exclusive), ISO 8601")]
Cursor = Annotated[str | None, Query(max_length=200, description="from the previous page")]
Limit = Annotated[int, Query(ge=1, le=10_000)]
Res = Annotated[q.Resolution, Query(description="raw, 15m, 1h or 1d")]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: PROBLEM_SCHEMA,
    403: PROBLEM_SCHEMA,
    404: PROBLEM_SCHEMA,
    422: PROBLEM_SCHEMA,
    429: PROBLEM_SCHEMA,
}


def json(content: Any) -> Response:
    return Response(orjson.dumps(content, option=JSON_OPTIONS), media_type="application/json")


@router.get("/meters/{meter_id}/readings", response_model=ReadingsPage, responses=ERRORS)
async def readings(
    state: State,
    principal: Aggregates,
    meter_id: MeterId,
    start: From,
    end: To,
    resolution: Res = "1h",
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> Response:
    """Readings of one meter; raw needs ``read:raw`` (viewers see aggregates only)."""
    if resolution == "raw":
        demand(principal, Permission.READ_RAW)
    start, end = q.check_range(start, end)
    after = q.decode_ts_cursor(cursor)
    await check_meter(state, principal, meter_id)
    async with state.read_apool().connection() as conn:
        rows = await readings_reads.page(
            conn, meter_id, start, end, resolution=resolution, after=after, limit=limit + 1
        )
    head = orjson.dumps({"meter_id": meter_id, "resolution": resolution})[1:-1]
    return Response(q.json_page(rows, limit, head), media_type="application/json")


@router.get("/meters/{meter_id}/events", response_model=MeterEventsPage, responses=ERRORS)
async def meter_events(
    state: State,
    principal: Raw,
    meter_id: MeterId,
    start: From,
    end: To,
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> Response:
    """Events a meter reported in [from, to) (power failure and restore, tamper, cover
    open, clock set, reverse running), in time order; needs ``read:raw``."""
    start, end = q.check_range(start, end)
    after = q.decode_ts_cursor(cursor)
    await check_meter(state, principal, meter_id)
    async with state.apool.connection() as conn:
        rows = await event_reads.page(conn, meter_id, start, end, after=after, limit=limit + 1)
    if len(rows) > limit:
        # The cursor is a time: a page must not end inside a group of events sharing one
        # instant, or the next page (after that time) would skip the rest of the group.
        boundary = rows[limit][1]
        whole = [r for r in rows[:limit] if r[1] != boundary]
        if whole:
            rows, limit = [*whole, rows[limit]], len(whole)
    head = orjson.dumps({"meter_id": meter_id})[1:-1]
    return Response(q.json_page(rows, limit, head), media_type="application/json")


@router.get("/meters/{meter_id}/latest", response_model=LatestReading, responses=ERRORS)
async def latest(state: State, principal: Aggregates, meter_id: MeterId) -> Response:
    """The newest stored reading (cached for ``cache_ttl_s``; ingest clears the cache)."""
    answer = await latest_answer(state, meter_id)
    if answer is None or not in_scope(principal, answer[0]):
        raise not_found("meter", meter_id)
    return Response(answer[1], media_type="application/json")


@router.get("/meters/{meter_id}/quality", response_model=QualityPage, responses=ERRORS)
async def quality(
    state: State, principal: Aggregates, meter_id: MeterId, start: From, end: To
) -> Response:
    """Daily quality scores (local days of the meter) in [from, to)."""
    start, end = q.check_range(start, end)
    await check_meter(state, principal, meter_id)
    await state.refresh_quality_if_marked(meter_id)  # scores of just-ingested days
    end_day = end.date() if end.time() == dt.time(0) else end.date() + dt.timedelta(days=1)
    async with state.apool.connection() as conn:
        days = await quality_reads.days(conn, meter_id, start.date(), end_day)
    return json({"meter_id": meter_id, "days": days})


async def _series(
    state: AppState,
    measured: series.Series,
    ident: str,
    start: dt.datetime,
    end: dt.datetime,
    resolution: q.Resolution,
    limit: int,
    cursor: str | None,
) -> Response:
    start, end = q.check_range(start, end)
    after = q.decode_ts_cursor(cursor)
    async with state.read_apool().connection() as conn:
        if not await series.known(conn, measured, ident):
            raise not_found(measured.id_col.removesuffix("_id"), ident)
        rows = await series.page(
            conn, measured, ident, start, end, resolution=resolution, after=after, limit=limit + 1
        )
    head = orjson.dumps({"id": ident, "resolution": resolution})[1:-1]
    return Response(q.json_page(rows, limit, head), media_type="application/json")


@router.get("/grid/nodes/{node_id}/load", response_model=SeriesPage, responses=ERRORS)
async def grid_load(
    state: State,
    principal: Aggregates,
    node_id: NodeId,
    start: From,
    end: To,
    resolution: Res = "1h",
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> Response:
    """Load (and generation, frequency, voltage, price) of a grid node."""
    return await _series(state, series.GRID, node_id, start, end, resolution, limit, cursor)


@router.get(
    "/weather/stations/{station_id}/observations", response_model=SeriesPage, responses=ERRORS
)
async def weather(
    state: State,
    principal: Aggregates,
    station_id: StationId,
    start: From,
    end: To,
    resolution: Res = "raw",
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> Response:
    """Observations of a weather station (means per bucket, precipitation summed)."""
    return await _series(state, series.WEATHER, station_id, start, end, resolution, limit, cursor)


@router.get("/quarantine", response_model=QuarantinePage, responses=ERRORS)
async def quarantine(
    state: State,
    principal: Quarantine,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    reason: Annotated[str | None, Query(max_length=200, description="prefix match")] = None,
    source: Annotated[str | None, Query(max_length=300, description="prefix match")] = None,
    since: Annotated[dt.datetime | None, Query(description="received at or after")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Rows that could not become records, with raw payload and reason, to fix sources.

    Quarantined payloads are not attributable to a region, so region-scoped principals
    cannot list them.
    """
    if principal.regions is not None:
        raise Problem(403, "quarantine holds unattributed raw payloads; needs an unscoped role")
    if kind is not None and kind not in CONTRACTS:
        # a misspelt kind matched nothing and read as "nothing was quarantined"
        raise Problem(422, f"kind {kind[:32]!r}: use one of {', '.join(CONTRACTS)}")
    after_id = q.decode_id_cursor(cursor)
    where = quarantine_reads.Filter(
        kind=kind,
        reason_prefix=reason,
        source_prefix=source,
        received_since=None if since is None else q.utc(since, "'since'"),
    )
    async with state.read_apool().connection() as conn:
        rows = await quarantine_reads.page(conn, where, after_id=after_id, limit=limit + 1)
    items = rows[:limit]
    more = len(rows) > limit
    return json({"items": items, "next_cursor": q.encode_cursor(items[-1]["id"]) if more else None})


@router.get("/fleet/summary", response_model=FleetSummary, responses=ERRORS)
async def fleet(
    state: State,
    principal: Aggregates,
    start: From,
    end: To,
    region: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Per region: meters, how many reported, energy, statuses and mean quality score."""
    start, end = q.check_range(start, end)
    await state.refresh_quality_if_marked()  # mean scores include just-ingested days
    async with state.apool.connection() as conn:
        rows = await fleet_reads.summary(conn, start, end, regions=principal.regions, region=region)
    return json({"from": start, "to": end, "regions": rows})
