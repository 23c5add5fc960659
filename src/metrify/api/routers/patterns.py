"""``GET /v1/patterns...``: the stored consumption patterns (``metrify patterns``).

A meter's or a segment's figures and typical days, the household clusters, and segment
comparisons with bootstrap intervals, from the newest stored run (or ``run``). Same
permission and region scope as ``/v1/energy`` (:func:`metrify.api.energy.check_scope`):
a meter or region outside the caller's regions is not found; segment, ACORN, fleet,
cluster and comparison answers span regions, so a region-scoped caller may not have
them (403).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from metrify.api.auth.principal import Principal
from metrify.api.deps import State, require
from metrify.api.energy import check_scope
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState
from metrify.batch import patterns as job
from metrify.contracts.records import ID_PATTERN
from metrify.stores import patterns as store

router = APIRouter(prefix="/v1/patterns", tags=["query"])

Reader = Annotated[Principal, Depends(require(Permission.READ_AGGREGATES))]
Ident = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
Name = Annotated[str | None, Query(min_length=1, max_length=100)]
Run = Annotated[int | None, Query(ge=1, description="a stored run (default: the newest)")]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: PROBLEM_SCHEMA for s in (400, 401, 403, 404, 422, 429)
}


def _run(state: AppState, run_id: int | None) -> dict[str, Any]:
    with state.pool.connection() as conn:
        found = store.latest_run(conn, run_id)
    if found is None:
        raise Problem(404, f"no pattern run {run_id}" if run_id else "no patterns stored yet")
    return found


def _head(found: dict[str, Any]) -> dict[str, Any]:
    keep = ("run_id", "period_start", "period_end", "tz", "definitions", "computed_at")
    return {k: found[k] for k in keep}


def _subject(state: AppState, run_id: int | None, dim: str, key: str) -> dict[str, Any]:
    found = _run(state, run_id)
    rid = int(found["run_id"])
    with state.pool.connection() as conn:
        row = (
            store.meter_pattern(conn, rid, key)
            if dim == "meter"
            else store.segment_pattern(conn, rid, dim, key)
        )
    if row is None:
        raise Problem(404, f"no {dim} {key} in pattern run {rid}")
    return {"run": _head(found), "dim": dim, "key": key, **row}


@router.get("", responses=ERRORS)
async def pattern(
    state: State,
    principal: Reader,
    meter: Ident = None,
    segment: Name = None,
    region: Name = None,
    acorn: Name = None,
    fleet: bool = False,
    run: Run = None,
) -> dict[str, Any]:
    """One meter's or segment's figures (load factor, base load, peak time, peak-hour
    share...), its mean day shape and typical days by kind of day and season."""
    named = [
        (d, k)
        for d, k in (
            ("meter", meter),
            ("segment", segment),
            ("region", region),
            ("acorn", acorn),
            ("fleet", "all" if fleet else None),
        )
        if k is not None
    ]
    if len(named) != 1:
        raise Problem(400, "give exactly one of meter, segment, region, acorn or fleet=true")
    dim, key = named[0]
    await check_scope(state, principal, dim, key)
    return await run_in_threadpool(_subject, state, run, dim, key)


def _clusters(state: AppState, run_id: int | None) -> dict[str, Any]:
    found = _run(state, run_id)
    with state.pool.connection() as conn:
        rows = store.clusters(conn, int(found["run_id"]))
    return {"run": _head(found), "clustering": found["clustering"], "clusters": rows}


@router.get("/clusters", responses=ERRORS)
async def clusters(state: State, principal: Reader, run: Run = None) -> dict[str, Any]:
    """The household clusters of day shapes: how k was chosen (scores of every k), how
    stable the clusters are (bootstrap adjusted Rand index), sizes and centre shapes."""
    await check_scope(state, principal, "fleet", "all")
    return await run_in_threadpool(_clusters, state, run)


def _compare(
    state: AppState,
    run_id: int | None,
    by: str,
    treated: str | None,
    control: str | None,
    resamples: int,
) -> dict[str, Any]:
    found = _run(state, run_id)
    with state.pool.connection() as conn:
        homes = store.households(conn, int(found["run_id"]))
    try:
        result = job.compare(
            homes, by, found["definitions"]["peak_hours"], treated, control, resamples
        )
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
    return {"run": _head(found), **result}


@router.get("/compare", responses=ERRORS)
async def compare(
    state: State,
    principal: Reader,
    by: Literal["tariff", "acorn", "region", "cluster"],
    treated: Name = None,
    control: Name = None,
    resamples: Annotated[int, Query(ge=100, le=10000)] = 2000,
    run: Run = None,
) -> dict[str, Any]:
    """Groups of households side by side (mean per household with 95% bootstrap
    intervals); by tariff, the time-of-use minus standard difference in peak-hour share
    with its interval, and slot by slot over the day."""
    await check_scope(state, principal, "fleet", "all")
    return await run_in_threadpool(_compare, state, run, by, treated, control, resamples)
