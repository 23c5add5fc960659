"""Idempotency keys: a claim per (principal, key), then the answer that was given.

A row without an answer is a claim: the work is running. Claims and answers are
forgotten after :data:`TTL`. Deciding what a second request with the same key gets
(the stored answer, a conflict, a refusal) is the caller's; this only keeps the rows.
"""

from __future__ import annotations

from typing import NamedTuple

from metrify.stores.pools import Connection

TTL = "24 hours"


class Prior(NamedTuple):
    """The earlier request that holds a key: its endpoint and digest, and its answer
    (``status`` None: still running)."""

    endpoint: str
    request_hash: bytes
    status: int | None
    response: bytes | None


def claim(conn: Connection, principal: str, key: str, endpoint: str, digest: bytes) -> Prior | None:
    """Claim the key for this request (None), or the earlier request that holds it."""
    while True:
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
        if old is not None:  # else: expired and removed between the two statements
            return Prior(
                str(old[0]),
                bytes(old[1]),
                None if old[2] is None else int(old[2]),
                None if old[3] is None else bytes(old[3]),
            )


def complete(conn: Connection, principal: str, key: str, status: int, body: bytes) -> None:
    conn.execute(
        "UPDATE idempotency_keys SET status_code = %s, response = %s "
        "WHERE principal = %s AND key = %s",
        (status, body, principal, key),
    )


def release(conn: Connection, principal: str, key: str) -> None:
    """Drop an unanswered claim (the work failed; the client may retry)."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE principal = %s AND key = %s AND status_code IS NULL",
        (principal, key),
    )
