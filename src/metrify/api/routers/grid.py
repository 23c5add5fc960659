"""Grid insight per node: ``GET /v1/grid/nodes/{node_id}/loading``, ``/peak-drivers``,
``/losses``, ``/compliance`` and ``/flex``.

The same answers as ``metrify grid`` (:mod:`metrify.api.grid`). Access is that of
``/v1/energy``: ``read:aggregates``, and a node adds up meters of every region, so a
region-scoped caller may not have it (403). The node's reference row
(``/v1/grid/nodes/{id}``) and measured series (``.../load``) belong to the reference and
query routers; these paths are sub-resources beside them and clash with neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from metrify.api import grid as answers
from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.energy import check_scope
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.responses import JSON_OPTIONS
from metrify.api.state import AppState
from metrify.contracts.records import ID_PATTERN
from metrify.stores.pools import Connection

router = APIRouter(prefix="/v1/grid/nodes", tags=["grid insight"])

Reader = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
NodeId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
From = Annotated[str, Query(alias="from", max_length=40, description="local date or ISO time")]
To = Annotated[str, Query(alias="to", max_length=40, description="end, exclusive")]
Tz = Annotated[str | None, Query(max_length=64, description="IANA zone (default: the meters')")]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (400, 401, 403, 404, 422, 429)
}


class Answer(BaseModel):
    """Every answer names its node, its UTC range and the zone of its days; the other
    fields are documented in the guide (docs/guides/grid.md) and by ``metrify grid``."""

    model_config = ConfigDict(extra="allow")
    node_id: str
    tz: str


async def _answer(
    state: AppState, principal: Principal, node_id: str, ask: Callable[[Connection, str], Any]
) -> Response:
    await check_scope(state, principal, "node", node_id)

    pool = state.read_pool()

    def run() -> bytes:
        with pool.connection() as conn:
            body = ask(conn, state.settings.fleet_timezone)
        return orjson.dumps(body, option=JSON_OPTIONS | orjson.OPT_SERIALIZE_NUMPY)

    try:
        body = await run_in_threadpool(run)
    except answers.UnknownNode as exc:
        raise Problem(404, str(exc).strip("'\"")) from None
    except answers.BadGridQuery as exc:
        raise Problem(400, str(exc)) from None
    return Response(body, media_type="application/json")


def _finite(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise Problem(400, f"{name} must be a finite number")


@router.get("/{node_id}/loading", response_model=Answer, responses=ERRORS)
async def loading(
    state: State,
    principal: Reader,
    node_id: NodeId,
    start: From,
    end: To,
    tz: Tz = None,
    percentile: Annotated[float, Query(gt=0, le=1)] = 0.99,
    points: Annotated[int, Query(ge=2, le=1001)] = 21,
) -> Response:
    """Utilisation against capacity: hours above 80% and 100%, headroom at the peak and
    at a load percentile, and the load-duration curve."""
    _finite(percentile=percentile)
    return await _answer(
        state,
        principal,
        node_id,
        lambda conn, fleet_tz: answers.loading(
            conn,
            node_id,
            start,
            end,
            tz=tz,
            fleet_tz=fleet_tz,
            percentile=percentile,
            points=points,
        ),
    )


@router.get("/{node_id}/peak-drivers", response_model=Answer, responses=ERRORS)
async def peak_drivers(
    state: State,
    principal: Reader,
    node_id: NodeId,
    start: From,
    end: To,
    tz: Tz = None,
    top: Annotated[int, Query(ge=1, le=1000, description="peak intervals averaged")] = 1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
) -> Response:
    """Each meter's demand at the node's peak, coincidence factor and share of the peak."""
    return await _answer(
        state,
        principal,
        node_id,
        lambda conn, fleet_tz: answers.peak_drivers(
            conn, node_id, start, end, tz=tz, fleet_tz=fleet_tz, top=top, limit=limit
        ),
    )


@router.get("/{node_id}/losses", response_model=Answer, responses=ERRORS)
async def losses(
    state: State, principal: Reader, node_id: NodeId, start: From, end: To, tz: Tz = None
) -> Response:
    """Node energy against its meters' per local day, with how many meters were missing
    data; the range's loss counts complete days only."""
    return await _answer(
        state,
        principal,
        node_id,
        lambda conn, fleet_tz: answers.losses(conn, node_id, start, end, tz=tz, fleet_tz=fleet_tz),
    )


@router.get("/{node_id}/compliance", response_model=Answer, responses=ERRORS)
async def compliance(
    state: State,
    principal: Reader,
    node_id: NodeId,
    start: From,
    end: To,
    tz: Tz = None,
    lv_nominal_v: Annotated[float, Query(gt=0, le=1000)] = 230.0,
    nominal_hz: Annotated[float, Query(gt=0, le=1000)] = 50.0,
) -> Response:
    """EN 50160 counts: voltage per week (node and meters), frequency per year."""
    _finite(lv_nominal_v=lv_nominal_v, nominal_hz=nominal_hz)
    return await _answer(
        state,
        principal,
        node_id,
        lambda conn, fleet_tz: answers.compliance(
            conn,
            node_id,
            start,
            end,
            tz=tz,
            fleet_tz=fleet_tz,
            lv_nominal_v=lv_nominal_v,
            nominal_hz=nominal_hz,
        ),
    )


@router.get("/{node_id}/flex", response_model=Answer, responses=ERRORS)
async def flex(
    state: State,
    principal: Reader,
    node_id: NodeId,
    start: From,
    end: To,
    tz: Tz = None,
    shift: Annotated[
        float | None,
        Query(ge=0, le=1, description="share moved (default: what ToU meters moved)"),
    ] = None,
    window: Annotated[str, Query(max_length=20, description="peak hours, e.g. 16-20")] = "16-20",
    into: Annotated[str, Query(max_length=20, description="hours moved to")] = "20-24",
    tou_tariff: Annotated[str, Query(min_length=1, max_length=100)] = "ToU",
    std_tariff: Annotated[str, Query(min_length=1, max_length=100)] = "Std",
) -> Response:
    """The node meters' peak after moving a share of their peak-window energy."""
    _finite(shift=shift)
    return await _answer(
        state,
        principal,
        node_id,
        lambda conn, fleet_tz: answers.flex(
            conn,
            node_id,
            start,
            end,
            tz=tz,
            fleet_tz=fleet_tz,
            share=shift,
            window=window,
            into=into,
            tou=tou_tariff,
            std=std_tariff,
        ),
    )
