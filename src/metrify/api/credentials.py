"""From a request's credentials to its principal, or a 401.

A verified credential is re-used for ``auth_cache_s`` (5 s by default, never past the
key's or token's expiry) instead of being re-read from the database on every request.
The cache exists only while the worker LISTENs to ``metrify_auth``, and every user or key
change made through the API or the CLI sends that NOTIFY (and the API also clears its own
worker's cache before answering), so a disabled user, a revoked key or a changed role
still acts on the next request. ``auth_cache_s = 0`` checks the database every time.

A key's database check also keeps ``api_keys.last_used_at`` (for ``metrify keys list``):
written only when the stored value is a minute old or more, so neither a busy key nor
the hot path pays a write per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time

from metrify.api.auth import keys
from metrify.api.auth.principal import Principal
from metrify.api.auth.tokens import TokenError
from metrify.api.problems import Problem
from metrify.api.rbac import Role, parse_regions
from metrify.api.state import AppState
from metrify.stores import accounts

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="metrify"'}


def _deny(detail: str) -> Problem:
    return Problem(401, detail, headers=UNAUTHORIZED)


async def authenticate(
    state: AppState, authorization: str | None, api_key: str | None
) -> Principal:
    """The principal behind the request's credentials, or a 401 problem."""
    token: str | None = None
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _deny("use 'Authorization: Bearer <token or API key>'")
        credential = credential.strip()
        if credential.startswith("mk_"):
            api_key = credential
        else:
            token = credential
    if token is None and not api_key:
        raise _deny("authentication required (Bearer token or X-API-Key)")
    cache = state.principals
    # keyed by a digest: the cache never holds a usable secret
    cache_key = hashlib.sha256((token or api_key or "").encode()).digest()
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    since = cache.generation  # a change committed while we read must not be cached
    if token is None:
        principal, until = await _from_key(state, api_key)
    else:
        principal, until = await _from_token(state, token)
    if cache.ttl_s > 0:
        cache.put(cache_key, principal, ttl_s=until - time.time(), since=since)
    return principal


async def _from_token(state: AppState, token: str) -> tuple[Principal, float]:
    try:
        claims = state.tokens.verify_access(token)
    except TokenError as exc:
        raise _deny(str(exc)) from None
    async with state.apool.connection() as conn:
        user = await accounts.check_user(conn, claims.user_id, claims.family)
    if user is None or user.disabled:
        raise _deny("user unknown or disabled")
    if claims.version != user.token_version:
        raise _deny("token revoked")  # signed before a password change or disable
    if not user.family_live:
        raise _deny("session revoked; sign in again")  # signed out, or a re-used refresh token
    principal = Principal(
        "user", claims.user_id, str(user.username), Role(user.role), parse_regions(user.regions)
    )
    return principal, claims.expires


async def _from_key(state: AppState, api_key: str | None) -> tuple[Principal, float]:
    prefix = keys.parse(api_key or "")
    if prefix is None or api_key is None:
        raise _deny("invalid API key")
    async with state.apool.connection() as conn:
        key = await accounts.check_key(conn, prefix)
    if key is None or not keys.matches(api_key, key.key_hash):
        raise _deny("invalid API key")
    now = dt.datetime.now(dt.UTC)
    if key.revoked_at is not None:
        raise _deny("API key revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise _deny("API key expired")
    if key.owner_disabled:
        raise _deny("API key owner disabled")
    if key.last_used_at is None or now - key.last_used_at >= accounts.KEY_USE_RESOLUTION:
        async with state.apool.connection() as conn:
            await accounts.key_used(conn, int(key.key_id))
    principal = Principal(
        "key", int(key.key_id), prefix, Role(key.role), parse_regions(key.regions)
    )
    expires = key.expires_at
    return principal, math.inf if expires is None else expires.timestamp()
