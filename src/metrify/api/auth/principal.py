"""Who is calling: a user (JWT access token) or a machine (API key).

A verified credential is re-used for ``auth_cache_s`` (5 s by default, never past the
key's or token's expiry) instead of being re-read from the database on every request.
The cache exists only while the worker LISTENs to ``metrify_auth``, and every user or key
change made through the API or the CLI sends that NOTIFY (and the API also clears its own
worker's cache before answering), so a disabled user, a revoked key or a changed role
still acts on the next request. ``auth_cache_s = 0`` checks the database every time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Literal

from metrify.api.auth import keys
from metrify.api.auth.tokens import TokenError
from metrify.api.problems import Problem
from metrify.api.rbac import Permission, Role, allowed, parse_regions
from metrify.api.state import AppState

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="metrify"'}


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "key"]
    id: int
    name: str
    role: Role
    regions: tuple[str, ...] | None

    @property
    def actor(self) -> str:
        """How audit rows and rate limits name this principal (never a secret)."""
        return self.name if self.kind == "user" else f"key:{self.name}"

    def can(self, permission: Permission) -> bool:
        return allowed(self.role, permission)


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
        cur = await conn.execute(
            "SELECT username, role, regions, disabled, "
            "date_trunc('second', tokens_valid_after) FROM users WHERE user_id = %s",
            (claims.user_id,),
        )
        row = await cur.fetchone()
    if row is None or row[3]:
        raise _deny("user unknown or disabled")
    if claims.issued_at < row[4]:
        raise _deny("token revoked")
    principal = Principal("user", claims.user_id, str(row[0]), Role(row[1]), parse_regions(row[2]))
    return principal, claims.expires


async def _from_key(state: AppState, api_key: str | None) -> tuple[Principal, float]:
    prefix = keys.parse(api_key or "")
    if prefix is None or api_key is None:
        raise _deny("invalid API key")
    async with state.apool.connection() as conn:
        cur = await conn.execute(
            "SELECT k.key_id, k.key_hash, k.role, k.regions, k.expires_at, k.revoked_at, "
            "coalesce(u.disabled, false) FROM api_keys k "
            "LEFT JOIN users u ON u.user_id = k.owner_id WHERE k.prefix = %s",
            (prefix,),
        )
        row = await cur.fetchone()
    if row is None or not keys.matches(api_key, row[1]):
        raise _deny("invalid API key")
    now = dt.datetime.now(dt.UTC)
    if row[5] is not None:
        raise _deny("API key revoked")
    if row[4] is not None and row[4] <= now:
        raise _deny("API key expired")
    if row[6]:
        raise _deny("API key owner disabled")
    principal = Principal("key", int(row[0]), prefix, Role(row[2]), parse_regions(row[3]))
    return principal, math.inf if row[4] is None else row[4].timestamp()
