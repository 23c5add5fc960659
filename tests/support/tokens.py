"""Hand-made JWTs, so the API tests can forge exactly the token an attack would send."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from typing import Any

import orjson

from support.api import Api

ISS, AUD = "metrify", "metrify-api"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def access_claims(user_id: int, **over: Any) -> dict[str, Any]:
    """A valid access token's claims for ``user_id``; ``over`` changes or adds some.

    ``ver`` is a new user's token version (0) and ``fam`` a made-up session: a token
    meant to be accepted takes ``fam=live_family(api, name)``."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iss": ISS,
        "aud": AUD,
        "typ": "access",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=5)).timestamp()),
        "ver": 0,
        "fam": uuid.uuid4().hex,
    }
    claims.update(over)
    return claims


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    signing = unsigned({"alg": "HS256", "typ": "JWT"}, claims)
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


def user_id_of(api: Api, name: str) -> int:
    with api.conn() as conn:
        row = conn.execute("SELECT user_id FROM users WHERE username = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def live_family(api: Api, name: str) -> str:
    """A refresh-token family of ``name`` that is still live (its session is open)."""
    with api.conn() as conn:
        row = conn.execute(
            "SELECT t.family FROM refresh_tokens t JOIN users u USING (user_id)"
            " WHERE u.username = %s AND t.revoked_at IS NULL LIMIT 1",
            (name,),
        ).fetchone()
    assert row is not None, f"{name} has no live session"
    return uuid.UUID(str(row[0])).hex


def me(api: Api, token: str) -> Any:
    """``/v1/auth/me`` with ``token``: who the API takes its bearer to be."""
    return api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
