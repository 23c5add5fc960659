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

from metrify.api import queries as q
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, demand, in_scope, require
from metrify.api.models import (
    FleetSummary,
    LatestReading,
    QualityPage,
    QuarantinePage,
    ReadingsPage,
    SeriesPage,
)
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState
from metrify.contracts.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["query"])

Aggregates = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
Quarantine = Annotated[Principal, Depends(require(Permission.READ_QUARANTINE))]
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

_JSON = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def json(content: Any) -> Response:
    return Response(orjson.dumps(content, option=_JSON), media_type="application/json")


def not_found(kind: str, ident: str) -> Problem:
    return Problem(404, f"no {kind} {ident}")


async def check_meter(state: AppState, principal: Principal, meter_id: str) -> None:
    async with state.apool.connection() as conn:
        cur = await conn.execute("SELECT region FROM meters WHERE meter_id = %s", (meter_id,))
        row = await cur.fetchone()
    if row is None or not in_scope(principal, row[0]):
        raise not_found("meter", meter_id)


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
    sql = q.RAW_READINGS if resolution == "raw" else q.bucket_readings_sql(resolution)
    columns = q.READING_COLUMNS if resolution == "raw" else q.BUCKET_COLUMNS
    async with state.apool.connection() as conn:
        cur = await conn.execute(
            q.as_json_rows(sql, columns),
            (meter_id, start, end, after, limit + 1),
        )
        rows = await cur.fetchall()
    head = orjson.dumps({"meter_id": meter_id, "resolution": resolution})[1:-1]
    return Response(q.json_page(rows, limit, head), media_type="application/json")


async def latest_answer(state: AppState, meter_id: str) -> tuple[str | None, bytes] | None:
    """(region, JSON body) of a meter's newest reading; None for an unknown meter.

    Served from the in-process cache (``cache_ttl_s``) when it can be: ingests, edits
    and meter changes through the API forget the meters they touched, in every worker.
    Shared by the routed endpoint and its hot path (:mod:`metrify.api.hot`).
    """
    cache = state.latest
    cached = cache.get(meter_id)
    if cached is not None:
        return cached
    since = cache.generation  # an ingest committed while we read must not be cached
    async with state.apool.connection() as conn:
        cur = await conn.execute(q.LATEST, (meter_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    reading = None if row[1] is None else q.row_dict(q.READING_COLUMNS, row[1:])
    body = orjson.dumps({"meter_id": meter_id, "reading": reading}, option=_JSON)
    answer = (str(row[0]) if row[0] else None, body)
    cache.put(meter_id, answer, since=since)
    return answer


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
    cols = (
        "day",
        "expected",
        "present",
        "valid",
        "estimated",
        "suspect",
        "rejected",
        "missing",
        "completeness",
        "score",
    )
    async with state.apool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {', '.join(cols)} FROM quality_daily WHERE meter_id = %s AND day >= %s "
            "AND day < %s ORDER BY day LIMIT 3660",
            (
                meter_id,
                start.date(),
                end.date() if end.time() == dt.time(0) else end.date() + dt.timedelta(days=1),
            ),
        )
        rows = await cur.fetchall()
    return json({"meter_id": meter_id, "days": [q.row_dict(cols, r) for r in rows]})


async def _series(
    state: AppState,
    table: str,
    id_col: str,
    ref_table: str,
    values: tuple[str, ...],
    ident: str,
    start: dt.datetime,
    end: dt.datetime,
    resolution: str,
    limit: int,
    cursor: str | None,
) -> Response:
    start, end = q.check_range(start, end)
    after = q.decode_ts_cursor(cursor)
    async with state.apool.connection() as conn:
        cur = await conn.execute(f"SELECT 1 FROM {ref_table} WHERE {id_col} = %s", (ident,))
        if await cur.fetchone() is None:
            raise not_found(id_col.removesuffix("_id"), ident)
        sql = q.series_sql(table, id_col, values, resolution)
        cur = await conn.execute(
            f"SELECT row_to_json(t)::text, t.ts FROM ({sql}) AS t",
            (ident, start, end, after, limit + 1),
        )
        rows = await cur.fetchall()
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
    return await _series(
        state,
        "grid_measurements",
        "node_id",
        "grid_nodes",
        q.GRID_VALUES,
        node_id,
        start,
        end,
        resolution,
        limit,
        cursor,
    )


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
    return await _series(
        state,
        "weather_observations",
        "station_id",
        "weather_stations",
        q.WEATHER_VALUES,
        station_id,
        start,
        end,
        resolution,
        limit,
        cursor,
    )


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
    where, params = ["id > %s"], [q.decode_id_cursor(cursor)]
    for clause, value in (
        ("kind = %s", kind),
        ("starts_with(reason, %s)", reason),
        ("starts_with(source, %s)", source),
        ("received_at >= %s", None if since is None else q.utc(since)),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)  # type: ignore[arg-type]
    cols = ("id", "kind", "source", "raw", "reason", "line", "received_at")
    async with state.apool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {', '.join(cols)} FROM quarantine WHERE {' AND '.join(where)} "
            "ORDER BY id LIMIT %s",
            (*params, limit + 1),
        )
        rows = await cur.fetchall()
    items = [q.row_dict(cols, r) for r in rows[:limit]]
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
    regions = list(principal.regions or ())
    await state.refresh_quality_if_marked()  # mean scores include just-ingested days
    async with state.apool.connection() as conn:
        cur = await conn.execute(
            q.FLEET,
            {
                "all": principal.regions is None,
                "regions": regions,
                "start": start,
                "end": end,
                "region": region,
            },
        )
        rows = await cur.fetchall()
    cols = (
        "region",
        "meters",
        "reporting_meters",
        "readings",
        "missing",
        "import_kwh",
        "valid",
        "estimated",
        "suspect",
        "rejected",
        "mean_quality_score",
    )
    return json({"from": start, "to": end, "regions": [q.row_dict(cols, r) for r in rows]})
