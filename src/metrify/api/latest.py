"""The latest-reading answer of a meter, cached in the worker.

Shared by the routed endpoint (:mod:`metrify.api.routers.query`) and its hot path
(:mod:`metrify.api.hot`), so both answer with the same bytes. Ingests, edits and meter
changes through the API forget the meters they touched, in every worker.
"""

from __future__ import annotations

import orjson

from metrify.api.responses import JSON_OPTIONS
from metrify.api.state import AppState
from metrify.stores.reads import readings


async def latest_answer(state: AppState, meter_id: str) -> tuple[str | None, bytes] | None:
    """(region, JSON body) of a meter's newest reading; None for an unknown meter.

    Served from the in-process cache (``cache_ttl_s``) when it can be.
    """
    cache = state.latest
    cached = cache.get(meter_id)
    if cached is not None:
        return cached
    since = cache.generation  # an ingest committed while we read must not be cached
    async with state.apool.connection() as conn:
        found = await readings.latest(conn, meter_id)
    if found is None:
        return None
    region, reading = found
    body = orjson.dumps({"meter_id": meter_id, "reading": reading}, option=JSON_OPTIONS)
    answer = (region, body)
    cache.put(meter_id, answer, since=since)
    return answer
