"""Region scope: a principal with regions sees only meters of those regions.

A meter outside the caller's regions is reported as not found (404), exactly like a
meter that does not exist, so scope does not leak which meters exist elsewhere.
"""

from __future__ import annotations

from metrify.api.auth.principal import Principal
from metrify.api.problems import Problem
from metrify.api.state import AppState
from metrify.stores.reads import meters


def in_scope(principal: Principal, region: str | None) -> bool:
    """Unscoped principals see all; scoped ones only their regions."""
    return principal.regions is None or (region is not None and region in principal.regions)


def not_found(kind: str, ident: str) -> Problem:
    return Problem(404, f"no {kind} {ident}")


async def check_meter(state: AppState, principal: Principal, meter_id: str) -> None:
    """A 404 unless the meter exists and is in the principal's scope."""
    async with state.apool.connection() as conn:
        known, region = await meters.region_of(conn, meter_id)
    if not known or not in_scope(principal, region):
        raise not_found("meter", meter_id)
