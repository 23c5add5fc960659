"""JWT access tokens and opaque refresh tokens.

Access tokens are short-lived JWTs signed with ONE pinned algorithm (HS256 with a
secret or RS256 with a key pair): verification passes only that algorithm to PyJWT, so
``alg: none`` and HS/RS confusion (signing HS256 with the public key) fail. ``exp``,
``nbf``, ``iat``, ``iss``, ``aud`` and ``sub`` are required. Refresh tokens are random
strings stored as digests, rotated on every use; re-use of a rotated one revokes its
whole family (a stolen token is worth one use at most).

Two claims make revocation exact: ``ver``, the user's ``token_version`` when the token
was signed (a password change or disable increments it), and ``fam``, the refresh-token
family the token belongs to (revoked on re-use or sign-out). Both are compared with the
database on every request (:mod:`metrify.api.credentials`), so revocation does not wait
for a token's expiry and does not depend on timestamps at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from metrify.settings.api import ApiConfig

log = logging.getLogger(__name__)

SECRET_FILE = "api-jwt-secret"
#: an HS256 secret shorter than this is refused, wherever it comes from
MIN_SECRET_BYTES = 32


class TokenError(Exception):
    """The token cannot be trusted (message safe to show)."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    username: str
    issued_at: dt.datetime
    #: ``exp`` as a POSIX timestamp (a verified token may be cached until then, no longer)
    expires: float
    #: the user's ``token_version`` when the token was signed
    version: int
    #: the refresh-token family (session) the token belongs to
    family: uuid.UUID


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read_secret_file(path: Path) -> str:
    """The secret kept in ``path``, held to the same rule as the environment variable.

    A short (or empty, e.g. truncated) file would otherwise sign tokens with a guessable
    key, or with none at all (every sign-in a 500): refusing it at start-up is the only
    safe answer, with a message that names the file and the rule.
    """
    secret = path.read_text().strip()
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        raise ValueError(
            f"{path} holds a {size}-byte secret: it must be at least {MIN_SECRET_BYTES} bytes, "
            "like METRIFY_API__JWT_SECRET (delete the file to generate a new one)"
        )
    return secret


def resolve_secret(cfg: ApiConfig, home: Path) -> tuple[Any, Any]:
    """(signing key, verification key) for the configured algorithm.

    RS256 needs both PEM keys configured. HS256 uses the configured secret, else one
    generated once and kept (mode 0600) under ``home`` so every worker and restart
    agrees; a log line says so, since a clustered deployment must configure its own.
    """
    if cfg.jwt_algorithm == "RS256":
        if cfg.jwt_private_key is None or not cfg.jwt_public_key:
            raise ValueError(
                "RS256 needs METRIFY_API__JWT_PRIVATE_KEY and METRIFY_API__JWT_PUBLIC_KEY"
            )
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(
            cfg.jwt_private_key.get_secret_value().encode(), password=None
        )
        public = serialization.load_pem_public_key(cfg.jwt_public_key.encode())
        return private, public
    if cfg.jwt_secret is not None:
        secret = cfg.jwt_secret.get_secret_value()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"METRIFY_API__JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return secret, secret
    path = home / SECRET_FILE
    if path.exists():
        secret = _read_secret_file(path)
    else:
        home.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        log.warning(
            "no METRIFY_API__JWT_SECRET configured: generated one in %s (keep it safe; "
            "configure a shared secret when running several hosts)",
            path,
        )
    return secret, secret


class TokenService:
    """Issues and checks tokens with the configured, pinned algorithm."""

    def __init__(self, cfg: ApiConfig, home: Path) -> None:
        self.cfg = cfg
        self._sign, self._verify = resolve_secret(cfg, home)
        #: where ``iat``, ``nbf`` and ``exp`` come from (a test may stop it)
        self.clock: Callable[[], dt.datetime] = utc_now

    def issue_access(
        self,
        user_id: int,
        username: str,
        *,
        version: int,
        family: uuid.UUID,
        now: dt.datetime | None = None,
    ) -> str:
        now = now or self.clock()
        claims = {
            "sub": str(user_id),
            "name": username,
            "iss": self.cfg.jwt_issuer,
            "aud": self.cfg.jwt_audience,
            "iat": now,
            "nbf": now,
            "exp": now + dt.timedelta(minutes=self.cfg.access_token_minutes),
            "jti": uuid.uuid4().hex,
            "typ": "access",
            "ver": version,
            "fam": family.hex,
        }
        return jwt.encode(claims, self._sign, algorithm=self.cfg.jwt_algorithm)

    def verify_access(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._verify,
                algorithms=[self.cfg.jwt_algorithm],
                audience=self.cfg.jwt_audience,
                issuer=self.cfg.jwt_issuer,
                options={"require": ["exp", "nbf", "iat", "sub", "iss", "aud", "ver", "fam"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token not yet valid") from None
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
        if claims.get("typ") != "access":
            raise TokenError("invalid token")
        try:
            user_id = int(claims["sub"])
            issued = dt.datetime.fromtimestamp(int(claims["iat"]), dt.UTC)
            expires = float(claims["exp"])
            version = claims["ver"]
            family = uuid.UUID(hex=str(claims["fam"]))
        except (TypeError, ValueError, OverflowError):
            raise TokenError("invalid token") from None
        if not isinstance(version, int) or isinstance(version, bool):
            raise TokenError("invalid token")
        return AccessClaims(user_id, str(claims.get("name", "")), issued, expires, version, family)


def new_refresh_token() -> tuple[str, bytes]:
    """(token for the client, digest to store)."""
    token = "mr_" + secrets.token_urlsafe(32)
    return token, refresh_digest(token)


def refresh_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
