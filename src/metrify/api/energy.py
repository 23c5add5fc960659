"""The energy answer of a subject, cached in the worker (and in Redis, shared by every
worker and host, when one is configured); and who may ask for it.

Shared by the routed endpoint (:mod:`metrify.api.routers.energy`) and its hot path
(:mod:`metrify.api.hot`), so both decide and answer alike. An answer depends only on
what was asked (:data:`Asked`) and on the aggregates, which change only when a write
marks them; the database then says so (``NOTIFY metrify_aggregates``) and every worker
empties its cache (:class:`metrify.api.state.AppState`).
"""

from __future__ import annotations

from typing import Final, get_args
from urllib.parse import parse_qsl

import orjson

from metrify.api.auth.principal import Principal
from metrify.api.problems import Problem
from metrify.api.responses import JSON_OPTIONS
from metrify.api.scope import check_meter
from metrify.api.state import AppState
from metrify.stores import aggregates

#: what an energy answer depends on: (dim, key, resolution, from, to, tz, commodity)
Asked = tuple[aggregates.Dim, str, aggregates.Resolution, str, str, str | None, str | None]

_SUBJECTS: Final = ("meter", "node", "region", "segment")
_PARAMS: Final = {"from", "to", "resolution", "tz", "fleet", "commodity", *_SUBJECTS}


async def check_scope(state: AppState, principal: Principal, dim: str, key: str) -> None:
    """Region scope: a meter or region outside the caller's regions is not found (404);
    node, segment and fleet totals add up meters of every region, so a scoped caller
    may not have them (403)."""
    if dim == "meter":
        await check_meter(state, principal, key)
    elif principal.regions is not None:
        if dim != "region":
            raise Problem(403, f"{dim} totals span regions; ask per region or meter")
        if key not in principal.regions:
            raise Problem(404, f"no region {key}")


def energy_answer(state: AppState, asked: Asked) -> bytes:
    """The response body, computed from the aggregates and kept in this worker's cache
    (blocking: call it on a worker thread). A cached answer is one computed after every
    write committed before it (the aggregates refresh first), and the cache is emptied
    at the commit of any later write; one computed while such a write committed is not
    kept. Raises :class:`metrify.stores.aggregates.BadQuery` for the caller's mistakes."""
    since = state.energy.generation
    # with Redis, another worker's (or host's) answer, kept under the same rule: the
    # shared generation is read before anything is computed (metrify.stores.cache_redis)
    shared = state.shared_energy if state.energy.ttl_s > 0 else None
    generation = None if shared is None else shared.generation()
    if shared is not None and generation is not None:
        body = shared.get(generation, asked)
        if body is not None:
            state.energy.put(asked, body, since=since)
            return body
    dim, key, resolution, first, last, tz, commodity = asked
    with state.pool.connection() as conn:
        answered = aggregates.answer(
            conn, dim, key, resolution, first, last, tz, state.settings.fleet_timezone, commodity
        )
    head = {
        "dim": dim,
        "key": key,
        "resolution": resolution,
        "tz": answered.zone,
        "commodity": answered.commodity,
        "unit": answered.unit,
    }
    body = orjson.dumps(head, option=JSON_OPTIONS)[:-1] + b',"buckets":' + answered.buckets + b"}"
    state.energy.put(asked, body, since=since)
    if shared is not None and generation is not None:
        shared.put(generation, asked, body, state.energy.ttl_s)
    return body


def asked_of(query: bytes) -> Asked | None:
    """What a plain query string asks (each parameter once, ``fleet`` only as
    ``fleet=true``), or None for anything else, which the router then judges. Only the
    hot path uses it, and only to look in the cache, which holds nothing the router did
    not validate first."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or not params.keys() <= _PARAMS:
        return None
    resolution = params.get("resolution", "1d")
    first, last = params.get("from"), params.get("to")
    if first is None or last is None or resolution not in get_args(aggregates.Resolution):
        return None
    if "fleet" in params and params["fleet"] != "true":
        return None
    try:
        meter, node, region, segment = (params.get(s) for s in _SUBJECTS)
        dim, key = aggregates.subject(meter, node, region, segment, "fleet" in params)
    except aggregates.BadQuery:
        return None
    return (  # type: ignore[return-value]
        dim,
        key,
        resolution,
        first,
        last,
        params.get("tz"),
        params.get("commodity"),
    )
