"""``Idempotency-Key``: a retried write returns the stored answer, never runs twice.

The key is claimed (a row without an answer) before the work starts, so a concurrent
duplicate gets 409 instead of a second ingest; the answer is stored when the work ends,
and the claim is dropped if the work fails so the client can retry. Keys are per
principal, bound to the request's digest (the same key with another body is a client
bug: 422), and forgotten after a day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from metrify.api.problems import Problem

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
TTL = "24 hours"


@dataclass
class Stored:
    status: int
    body: bytes


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise Problem(400, "Idempotency-Key must be 1-255 visible ASCII characters")
    return key


def claim(
    conn: psycopg.Connection[Any], principal: str, key: str, endpoint: str, digest: bytes
) -> Stored | None:
    """None when this request may proceed; the stored answer for a completed retry."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE principal = %s AND key = %s "
        f"AND created_at < now() - interval '{TTL}'",
        (principal, key),
    )
    row = conn.execute(
        "INSERT INTO idempotency_keys (principal, key, endpoint, request_hash) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (principal, key, endpoint, digest),
    ).fetchone()
    if row is not None:
        return None
    old = conn.execute(
        "SELECT endpoint, request_hash, status_code, response FROM idempotency_keys "
        "WHERE principal = %s AND key = %s",
        (principal, key),
    ).fetchone()
    if old is None:  # expired and removed between the two statements
        return claim(conn, principal, key, endpoint, digest)
    if old[0] != endpoint or bytes(old[1]) != digest:
        raise Problem(422, "Idempotency-Key was already used for a different request")
    if old[2] is None:
        raise Problem(409, "a request with this Idempotency-Key is still being processed")
    return Stored(int(old[2]), bytes(old[3]))


def complete(
    conn: psycopg.Connection[Any], principal: str, key: str, status: int, body: bytes
) -> None:
    conn.execute(
        "UPDATE idempotency_keys SET status_code = %s, response = %s "
        "WHERE principal = %s AND key = %s",
        (status, body, principal, key),
    )


def release(conn: psycopg.Connection[Any], principal: str, key: str) -> None:
    conn.execute(
        "DELETE FROM idempotency_keys WHERE principal = %s AND key = %s AND status_code IS NULL",
        (principal, key),
    )
