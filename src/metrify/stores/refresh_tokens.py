"""Refresh tokens: stored as digests, grouped in families, revoked rather than deleted.

Each sign-in starts a family; each refresh revokes the presented token and issues the
next one of the same family. A revoked token presented again means someone holds a
copy, so the caller voids the whole family. Revoked rows stay, which is what makes
that re-use detectable.

A family is a session: its access tokens carry its id and count only while it has a
live (unrevoked) token, so revoking a family also ends its access tokens. Each
revocation announces itself on ``metrify_auth`` so no worker keeps such a token cached.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

from metrify.stores import changes
from metrify.stores.pools import Connection


class Held(NamedTuple):
    """A presented refresh token's row (locked) and its user."""

    user_id: int
    family: uuid.UUID
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    username: str
    disabled: bool
    token_version: int


def insert(conn: Connection, digest: bytes, user_id: int, family: uuid.UUID, days: int) -> None:
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, family, expires_at) "
        "VALUES (%s, %s, %s, now() + make_interval(days => %s))",
        (digest, user_id, family, days),
    )


def hold(conn: Connection, digest: bytes) -> Held | None:
    """The token with this digest, locked until the caller's transaction ends (two
    concurrent refreshes of one token must not both succeed)."""
    row = conn.execute(
        "SELECT t.user_id, t.family, t.expires_at, t.revoked_at, u.username, u.disabled, "
        "u.token_version "
        "FROM refresh_tokens t JOIN users u USING (user_id) WHERE t.token_hash = %s "
        "FOR UPDATE OF t",
        (digest,),
    ).fetchone()
    return None if row is None else Held._make(row)


def revoke(conn: Connection, digest: bytes) -> None:
    """Revoke one token (it was used to refresh)."""
    conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = %s", (digest,))


def revoke_family(conn: Connection, family: uuid.UUID) -> None:
    """End a session: its refresh tokens and, through ``fam``, its access tokens."""
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family = %s AND revoked_at IS NULL",
        (family,),
    )
    changes.announce_auth(conn)


def revoke_family_of(conn: Connection, digest: bytes) -> bool:
    """Sign-out: revoke the family of the token with this digest. False when no such
    token exists (the caller counts it as a failed attempt)."""
    row = conn.execute(
        "SELECT family FROM refresh_tokens WHERE token_hash = %s", (digest,)
    ).fetchone()
    if row is None:
        return False
    revoke_family(conn, row[0])
    return True


def revoke_user(conn: Connection, username: str) -> None:
    """Revoke every live token of a user (disabled, or a new password)."""
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND "
        "user_id = (SELECT user_id FROM users WHERE username = %s)",
        (username,),
    )
