"""OAuth2 password flow: ``POST /v1/auth/token`` (password or refresh_token grant).

Access tokens are short-lived JWTs; refresh tokens are opaque, stored as digests and
rotated on each use. Logins succeed or fail in the audit log with the user name and
client address, never the password. Failed sign-ins are throttled per client address
and per account, failed refreshes per address, in counters every worker shares
(:mod:`metrify.api.auth.throttle`): 429 with Retry-After, before any password is checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from metrify.api import audit
from metrify.api.auth.passwords import verify_password
from metrify.api.auth.principal import Principal
from metrify.api.auth.throttle import Throttled
from metrify.api.auth.tokens import new_refresh_token, refresh_digest
from metrify.api.credentials import UNAUTHORIZED
from metrify.api.deps import State, client_address, request_id, require
from metrify.api.models import Me, TokenResponse
from metrify.api.problems import PROBLEM_SCHEMA, Problem
from metrify.api.rbac import Permission
from metrify.api.state import AppState
from metrify.stores import accounts, refresh_tokens
from metrify.stores.pools import Connection
from metrify.stores.throttle import ThrottleUnavailable

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                        "refresh_token": {"type": "string"},
                    },
                }
            }
        },
    }
}


_REVOKE_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["refresh_token"],
                    "properties": {"refresh_token": {"type": "string"}},
                }
            }
        },
    }
}


async def _form(request: Request) -> dict[str, str]:
    fields = await _fields(request)
    if any("\x00" in v for v in fields.values()):
        # PostgreSQL text cannot hold NUL: the user lookup would fail, not refuse
        raise Problem(400, "form fields must not contain NUL characters")
    return fields


async def _fields(request: Request) -> dict[str, str]:
    body = await request.body()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Problem(400, "body is not JSON") from None
        if not isinstance(data, dict):
            raise Problem(400, "body must be an object")
        return {k: str(v) for k, v in data.items() if isinstance(v, str | int)}
    if media != "application/x-www-form-urlencoded":
        raise Problem(415, "use application/x-www-form-urlencoded (OAuth2) or application/json")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "malformed form body") from None
    return {k: v[0] for k, v in parsed.items()}


def _issue(
    state: AppState,
    conn: Connection,
    user_id: int,
    username: str,
    family: uuid.UUID,
    version: int,
) -> dict[str, Any]:
    cfg = state.settings.api
    refresh, digest = new_refresh_token()
    refresh_tokens.insert(conn, digest, user_id, family, cfg.refresh_token_days)
    access = state.tokens.issue_access(user_id, username, version=version, family=family)
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": cfg.access_token_minutes * 60,
        "refresh_token": refresh,
    }


def _password_grant(state: AppState, form: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    username = form.get("username", "")[:64]
    password = form.get("password", "")
    event["actor"] = username or "(none)"
    state.throttle.check_password(username, event["client"])
    answer: dict[str, Any] | None = None
    with state.pool.connection() as conn:
        user = accounts.login(conn, username)
        ok = verify_password(None if user is None else user.password_hash, password)
        if not ok or user is None or user.disabled:
            reason = "disabled" if ok and user is not None and user.disabled else "bad credentials"
            audit.record(
                conn,
                audit.Event(
                    **event, action="auth.login", outcome="failure", details={"reason": reason}
                ),
            )
        else:
            answer = _issue(state, conn, user.user_id, username, uuid.uuid4(), user.token_version)
            accounts.signed_in(conn, user.user_id)
            audit.record(conn, audit.Event(**event, action="auth.login"))
    # the counters are written with the connection back in the pool: a sign-in never
    # holds one connection while it waits for another
    if answer is None:
        if not ok:  # a right password of a disabled user is no guess to slow down
            state.throttle.password_failed(username, event["client"])
        raise Problem(401, "invalid user name or password", headers=UNAUTHORIZED)
    try:
        state.throttle.signed_in(username, event["client"])
    except ThrottleUnavailable as exc:  # the sign-in stands; the address is not remembered
        log.warning("could not remember the sign-in address of %s: %s", username, exc)
    return answer


def _refresh_grant(state: AppState, form: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    token = form.get("refresh_token", "")
    digest = refresh_digest(token)
    state.throttle.check_refresh(event["client"])
    refusal: str | None = None
    answer: dict[str, Any] = {}
    # The transaction commits before any refusal is raised: a family revoked because
    # of a re-used token must stay revoked.
    with state.pool.connection() as conn, conn.transaction():
        held = refresh_tokens.hold(conn, digest)
        if held is None:
            refusal = "invalid refresh token"
        else:
            event["actor"] = str(held.username)
            if held.revoked_at is not None:
                # A rotated token came back: someone holds a copy. Void the whole family,
                # its access tokens included.
                refresh_tokens.revoke_family(conn, held.family)
                audit.record(
                    conn,
                    audit.Event(
                        **event,
                        action="auth.refresh",
                        outcome="failure",
                        details={"reason": "reused refresh token"},
                    ),
                )
                refusal = "refresh token already used; sign in again"
            elif held.disabled or held.expires_at <= dt.datetime.now(dt.UTC):
                refusal = "refresh token expired or user disabled"
            else:
                refresh_tokens.revoke(conn, digest)
                answer = _issue(
                    state,
                    conn,
                    int(held.user_id),
                    str(held.username),
                    held.family,
                    int(held.token_version),
                )
                audit.record(conn, audit.Event(**event, action="auth.refresh"))
    if refusal is not None:
        if held is None or held.revoked_at is not None:
            state.throttle.refresh_failed(event["client"])
        state.principals.clear()  # a revoked family's tokens must not stay cached here
        raise Problem(401, refusal, headers=UNAUTHORIZED)
    return answer


@router.post(
    "/token",
    response_model=TokenResponse,
    openapi_extra=_FORM,
    responses={s: PROBLEM_SCHEMA for s in (400, 401, 415, 429, 503)},
    summary="Sign in (OAuth2 password grant) or refresh",
)
async def token(request: Request, state: State) -> Any:
    form = await _form(request)
    client = client_address(request)
    grant = form.get("grant_type", "")
    if grant not in ("password", "refresh_token"):
        raise Problem(400, "grant_type must be password or refresh_token")
    event: dict[str, Any] = {
        "actor": "(none)",
        "actor_kind": "anonymous",
        "request_id": request_id(request),
        "client": client,
    }
    grant_of = _password_grant if grant == "password" else _refresh_grant
    return await _throttled(grant_of, state, form, event)


async def _throttled(
    grant: Callable[[AppState, dict[str, str], dict[str, Any]], dict[str, Any]],
    state: AppState,
    form: dict[str, str],
    event: dict[str, Any],
) -> dict[str, Any]:
    """Run ``grant`` on a worker thread; throttling becomes 429 (or 503 without a store)."""
    try:
        return await run_in_threadpool(grant, state, form, event)
    except Throttled as exc:
        raise Problem(
            429, "too many failed attempts; retry later", headers={"Retry-After": str(exc.wait)}
        ) from None
    except ThrottleUnavailable:
        log.exception("sign-in throttle store unreachable: refusing sign-in")
        raise Problem(503, "sign-in is unavailable; retry later") from None


def _sign_out(state: AppState, form: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    state.throttle.check_refresh(event["client"])
    with state.pool.connection() as conn, conn.transaction():
        found = refresh_tokens.revoke_family_of(conn, refresh_digest(form.get("refresh_token", "")))
    if found:
        state.principals.clear()
    else:
        state.throttle.refresh_failed(event["client"])
    return {}


@router.post(
    "/revoke",
    status_code=204,
    openapi_extra=_REVOKE_FORM,
    responses={s: PROBLEM_SCHEMA for s in (400, 415, 429, 503)},
    summary="Sign out: revoke a refresh token's family (its access tokens too)",
)
async def revoke(request: Request, state: State) -> None:
    form = await _form(request)
    event = {"client": client_address(request)}
    await _throttled(_sign_out, state, form, event)


@router.get("/me", response_model=Me, responses={401: PROBLEM_SCHEMA})
async def me(principal: Annotated[Principal, Depends(require(Permission.SELF))]) -> Any:
    return {
        "kind": principal.kind,
        "name": principal.name,
        "role": principal.role,
        "regions": None if principal.regions is None else list(principal.regions),
    }


# --- the same grants for the web dashboard's sign-in form and session cookie ----------


async def password_sign_in(
    state: AppState, username: str, password: str, client: str | None, req_id: str
) -> dict[str, Any]:
    """The password grant with the throttle and audit of ``POST /v1/auth/token``: the
    token response, or a :class:`Problem` (401, 429, 503)."""
    event: dict[str, Any] = {
        "actor": "(none)",
        "actor_kind": "anonymous",
        "request_id": req_id,
        "client": client,
    }
    form = {"username": username, "password": password}
    return await _throttled(_password_grant, state, form, event)


async def refresh_session(
    state: AppState, refresh_token: str, client: str | None, req_id: str
) -> dict[str, Any]:
    """The refresh grant (rotation, re-use detection, throttle, audit) of
    ``POST /v1/auth/token``."""
    event: dict[str, Any] = {
        "actor": "(none)",
        "actor_kind": "anonymous",
        "request_id": req_id,
        "client": client,
    }
    return await _throttled(_refresh_grant, state, {"refresh_token": refresh_token}, event)


async def end_session(state: AppState, refresh_token: str, client: str | None) -> None:
    """Sign out as ``POST /v1/auth/revoke`` does: the refresh token's family and its
    access tokens are void from now on."""
    await _throttled(_sign_out, state, {"refresh_token": refresh_token}, {"client": client})
