"""Hot paths: the busiest read answered without FastAPI's routing and dependency layers.

Measured on the project's 2-core machine (``bench/api.py``, py-spy): with the credential
and the answer both cached, ``GET /v1/meters/{id}/latest`` spent most of its time in the
framework, not in the work: walking the route table, solving the dependency graph
(security schemes, the permission dependency, path validation) and the exception and
exit-stack middleware, so it peaked near 4K requests/s where a bare ASGI answer does 50K.

A hot path is a shortcut to an ordinary route, never a route of its own: the route stays
in the app (OpenAPI, validation errors, the RBAC matrix) and this answers only requests
the route would answer, with the same pieces: :func:`metrify.api.deps.admit`
(authentication, rate limit and the permission the route itself declares, read from its
dependency), the same region scope check, the same cached bytes
(:func:`metrify.api.latest.latest_answer`) and the same problem+json errors. A
request it does not recognise (an id the route would reject with 422) goes on to the
router. The :class:`~metrify.api.middleware.Guard` still wraps it: request id, security
headers, metrics.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from metrify.api.deps import PERMISSION_ATTR, admit
from metrify.api.energy import asked_of, check_scope
from metrify.api.latest import latest_answer
from metrify.api.problems import Problem, problem_response, unavailable_response
from metrify.api.rbac import Permission
from metrify.api.scope import in_scope
from metrify.api.state import AppState
from metrify.contracts.records import ID_RE
from metrify.stores.pools import UNAVAILABLE

LATEST_ROUTE = "/v1/meters/{meter_id}/latest"
ENERGY_ROUTE = "/v1/energy"
_PREFIX = "/v1/meters/"
_SUFFIX = "/latest"
_JSON = b"application/json"
#: what a hot path answers as the router would: a problem, or 503 for the database
_REFUSED: tuple[type[Exception], ...] = (Problem, *UNAVAILABLE)


def _declared(app: FastAPI, path: str) -> tuple[APIRoute, Permission]:
    """The GET route at ``path`` and the permission its dependency declares."""
    pending: list[Any] = list(app.router.routes)
    while pending:  # FastAPI keeps included routers nested
        route = pending.pop()
        if hasattr(route, "original_router"):
            pending.extend(route.original_router.routes)
        elif isinstance(route, APIRoute) and route.path == path and "GET" in (route.methods or ()):
            for dep in route.dependant.dependencies:
                permission = getattr(dep.call, PERMISSION_ATTR, None)
                if isinstance(permission, Permission):
                    return route, permission
    raise LookupError(f"no GET {path} route declaring a permission")


class HotPaths:
    """``await hot(scope, receive, send)`` answers a hot request and returns True, or
    returns False (having sent nothing) to let the router handle it."""

    def __init__(self, app: FastAPI, state: AppState) -> None:
        self.state = state
        self.latest_route, self.latest_permission = _declared(app, LATEST_ROUTE)
        self.energy_route, self.energy_permission = _declared(app, ENERGY_ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        path: str = scope["path"]
        if scope["method"] != "GET" or scope.get("root_path"):
            return False
        if path == ENERGY_ROUTE:
            return await self._energy(scope, receive, send)
        if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
            return False
        meter_id = path[len(_PREFIX) : -len(_SUFFIX)]
        if not ID_RE.fullmatch(meter_id):  # also rules out '/': another route, or a 422
            return False
        scope["route"] = self.latest_route  # metrics name the route, as the router would
        state = self.state
        try:
            principal = await self._admit(scope, self.latest_permission)
            answer = await latest_answer(state, meter_id)
            if answer is None or not in_scope(principal, answer[0]):
                raise Problem(404, f"no meter {meter_id}")
        except _REFUSED as exc:
            await _refusal(exc, scope)(scope, receive, send)
            return True
        await _send_json(send, answer[1])
        return True

    async def _energy(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """``GET /v1/energy`` when this worker holds the answer; anything else (not
        cached yet, or a query the router must judge) goes on to the router, which
        computes and caches it."""
        asked = asked_of(scope.get("query_string", b""))
        body = None if asked is None else self.state.energy.get(asked)
        if asked is None or body is None:
            return False
        scope["route"] = self.energy_route
        try:
            principal = await self._admit(scope, self.energy_permission)
            await check_scope(self.state, principal, asked[0], asked[1])
        except _REFUSED as exc:
            await _refusal(exc, scope)(scope, receive, send)
            return True
        await _send_json(send, body)
        return True

    async def _admit(self, scope: Scope, permission: Permission) -> Any:
        """The request's principal, as the route's own dependency would admit it."""
        authorization = api_key = None
        for name, value in scope["headers"]:  # the first of each, like Request.headers
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"x-api-key" and api_key is None:
                api_key = value.decode("latin-1")
        principal = await admit(self.state, authorization, api_key or None, permission)
        scope["metrify.principal"] = principal
        return principal


def _refusal(exc: Exception, scope: Scope) -> Any:
    """The problem+json answer the router would give for ``exc``."""
    path = scope["path"]
    if isinstance(exc, Problem):
        return problem_response(
            exc.status, exc.detail, instance=path, headers=exc.headers, errors=exc.errors
        )
    return unavailable_response(scope["method"], path, exc)


async def _send_json(send: Send, body: bytes) -> None:
    headers: list[Any] = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
