"""The dashboard's session: the API's own tokens in cookies, and CSRF tokens.

A sign-in through the dashboard is the API's password grant (same throttle, audit and
accounts); its access and refresh tokens are kept in two ``HttpOnly``, ``SameSite=Strict``
cookies, so page scripts cannot read the refresh token and other sites cannot send them.
Each request is authenticated exactly as an API call with ``Authorization: Bearer`` is
(:func:`metrify.api.deps.admit`: role, region scope, rate limit); an expired access
token is renewed with the refresh token (rotated, as the API's refresh grant does).

Forms and script calls that change something carry a CSRF token derived from the
refresh token (which only the browser holding the cookie has), compared in constant
time. The sign-in form, before any session, uses a double-submit cookie instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from metrify.api.auth.principal import Principal
from metrify.api.deps import admit, client_address, request_id
from metrify.api.problems import Problem
from metrify.api.rbac import Permission
from metrify.api.routers.auth import refresh_session
from metrify.api.state import AppState

ACCESS_COOKIE = "metrify_access"
REFRESH_COOKIE = "metrify_refresh"
LOGIN_COOKIE = "metrify_login"
CSRF_HEADER = "x-csrf-token"


def csrf_of(refresh_token: str) -> str:
    """The CSRF token of a session: a digest of its refresh token (unguessable without
    the cookie, and the same in every worker with no server-side state)."""
    digest = hashlib.sha256(b"metrify-csrf:" + refresh_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class Session:
    """A signed-in browser: who it is, its tokens, and whether they were just renewed
    (then the response must carry the new cookies)."""

    principal: Principal
    access: str
    refresh: str
    renewed: bool = False

    @property
    def csrf(self) -> str:
        return csrf_of(self.refresh)

    def can(self, permission: Permission) -> bool:
        return self.principal.can(permission)


class NoSession(Exception):
    """No valid session: the visitor is sent to the sign-in page."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.metrify
    return state


async def current(request: Request, permission: Permission = Permission.SELF) -> Session:
    """The request's session with ``permission`` (Problem 403 if the role lacks it), or
    :class:`NoSession` when there is none or it cannot be renewed."""
    state = state_of(request)
    access = request.cookies.get(ACCESS_COOKIE, "")
    refresh = request.cookies.get(REFRESH_COOKIE, "")
    if not refresh:
        raise NoSession
    if access:
        try:
            principal = await admit(state, f"Bearer {access}", None, permission)
            return Session(principal, access, refresh)
        except Problem as exc:
            if exc.status != 401:
                raise
    access, refresh = await _renew(request, state, refresh)
    try:
        principal = await admit(state, f"Bearer {access}", None, permission)
    except Problem as exc:
        if exc.status == 401:
            raise NoSession from None
        raise
    return Session(principal, access, refresh, renewed=True)


#: how long a renewal is remembered for the requests that were already on their way with
#: the refresh token it replaced
GRACE_S = 30.0
_renewed: dict[bytes, tuple[float, str, str]] = {}


async def _renew(request: Request, state: AppState, refresh: str) -> tuple[str, str]:
    """New (access, refresh) tokens for an expired access token: the API's refresh grant.

    A browser often sends several requests at once (a page and the live page's poll, two
    tabs); each carries the same refresh token. The grant rotates it, and a rotated token
    presented again voids its whole family as stolen: so a renewal is remembered here for
    :data:`GRACE_S` by the digest of the token it replaced, and the requests that come
    with that token meanwhile get the same new tokens instead of signing the user out.
    """
    key = hashlib.sha256(refresh.encode()).digest()
    now = time.monotonic()
    known = _renewed.get(key)
    if known is not None and now - known[0] < GRACE_S:
        return known[1], known[2]
    try:
        tokens = await refresh_session(state, refresh, client_address(request), request_id(request))
    except Problem as exc:
        if exc.status == 401:
            raise NoSession from None
        raise
    access, renewed = str(tokens["access_token"]), str(tokens["refresh_token"])
    for stale in [k for k, v in _renewed.items() if now - v[0] >= GRACE_S]:
        del _renewed[stale]
    _renewed[key] = (now, access, renewed)
    return access, renewed


def check_csrf(request: Request, session: Session, sent: str | None) -> None:
    """Refuse a state-changing request whose CSRF token is not the session's."""
    if not same(sent, session.csrf):
        raise Problem(403, "missing or wrong CSRF token; reload the page")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_tokens(request: Request, response: Response, access: str, refresh: str) -> None:
    """Keep the tokens in the browser: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    state = state_of(request)
    days = state.settings.api.refresh_token_days
    for name, value in ((ACCESS_COOKIE, access), (REFRESH_COOKIE, refresh)):
        response.set_cookie(
            name,
            value,
            max_age=days * 86400,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/",
        )


def clear_tokens(response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/")


def login_nonce(request: Request) -> str:
    """The sign-in form's double-submit token: the cookie's if set, else a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_nonce(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def safe_next(target: Any) -> str:
    """Where to go after signing in: a path on this site only (never ``//host``)."""
    text = str(target or "/")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text
