"""FastAPI dependencies: the one place where access is decided.

``require(Permission.X)`` authenticates the caller, applies the rate limit and checks
the role; a route cannot be reached without naming its permission (the RBAC test walks
every route and asserts each declares one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from metrify.api import replica
from metrify.api.auth import proxies
from metrify.api.auth.principal import Principal
from metrify.api.credentials import authenticate
from metrify.api.problems import Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState

_bearer = HTTPBearer(auto_error=False, description="JWT access token or API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")

#: attribute on the dependency function that names the permission (read by the tests)
PERMISSION_ATTR = "metrify_permission"


async def get_state(request: Request) -> AppState:
    """Async on purpose: a sync dependency would cost a thread hop per request."""
    state: AppState = request.app.state.metrify
    return state


State = Annotated[AppState, Depends(get_state)]


def request_id(request: Request) -> str:
    return str(request.scope.get("metrify.request_id", ""))


def client_address(request: Request) -> str | None:
    """The client's address: the peer's, or from X-Forwarded-For when the peer is a
    configured trusted proxy (:mod:`metrify.api.auth.proxies`). What the sign-in
    throttle counts and the audit log records."""
    peer = request.client.host if request.client else None
    state: AppState | None = getattr(request.app.state, "metrify", None)
    if state is None or not state.settings.api.trusted_proxies:
        return peer
    trusted = proxies.networks(tuple(state.settings.api.trusted_proxies))
    return proxies.client_of(peer, request.headers.getlist("x-forwarded-for"), trusted)


async def admit(
    state: AppState, authorization: str | None, api_key: str | None, permission: Permission
) -> Principal:
    """Authenticate, rate-limit and authorise one request: the whole access decision,
    shared by :func:`require` and the hot paths (:mod:`metrify.api.hot`)."""
    principal = await authenticate(state, authorization, api_key)
    replica.caller.set(principal.actor)  # its reads must see its own writes
    wait = await state.limiter.acquire(principal.actor)
    if wait is not None:
        raise Problem(
            429,
            f"rate limit of {state.settings.api.rate_limit_per_s:g} requests/s exceeded",
            headers={"Retry-After": str(wait)},
        )
    if not principal.can(permission):
        raise Problem(403, f"role {principal.role.value} lacks permission {permission.value}")
    return principal


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the caller if their role grants ``permission``."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
        api_key: Annotated[str | None, Security(_api_key)] = None,
    ) -> Principal:
        state: AppState = request.app.state.metrify
        principal = await admit(state, request.headers.get("authorization"), api_key, permission)
        request.scope["metrify.principal"] = principal
        return principal

    setattr(dependency, PERMISSION_ATTR, permission)
    return dependency


def principal_of(request: Request) -> Principal | None:
    value: Any = request.scope.get("metrify.principal")
    return value if isinstance(value, Principal) else None


def demand(principal: Principal, permission: Permission) -> None:
    """A second permission that depends on the request (e.g. raw resolution)."""
    if not principal.can(permission):
        raise Problem(403, f"role {principal.role.value} lacks permission {permission.value}")
