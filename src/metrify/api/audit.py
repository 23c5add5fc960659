"""The audit log as the API writes it: each event names the request's principal, its
request id and its client address.

The log itself (the row, its writers and listings) is :mod:`metrify.stores.audit`; its
names are re-exported here so a route speaks of one audit module.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from metrify.api.auth.principal import Principal
from metrify.api.deps import client_address, request_id
from metrify.stores.audit import COLUMNS, Event, Filter, page, record

__all__ = ["COLUMNS", "Event", "Filter", "event", "page", "record"]


def event(
    request: Request,
    principal: Principal,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
) -> Event:
    """A successful ``action`` on ``target`` by the request's principal."""
    return Event(
        actor=principal.actor,
        actor_kind=principal.kind,
        action=action,
        target=target,
        request_id=request_id(request),
        client=client_address(request),
        details=details,
    )
