"""Idempotency keys: one row per (principal, key), holding the answer that was given.

The row is claimed inside the transaction that does the work and stores the answer, so
it commits with the work or not at all: a crash leaves no claim behind, and a second
request with the same key waits on the uncommitted row (for at most ``wait_ms``) until
it is answered or gone. Rows are forgotten after :data:`TTL`. Deciding what a second
request gets (the stored answer, a conflict, a refusal) is the caller's; this only keeps
the rows.
"""

from __future__ import annotations

from typing import NamedTuple

from psycopg import errors

from metrify.stores.pools import Connection

TTL = "24 hours"


class Prior(NamedTuple):
    """The earlier request that holds a key: its endpoint and digest, and its answer
    (``status`` None: still running)."""

    endpoint: str
    request_hash: bytes
    status: int | None
    response: bytes | None


def _prior(conn: Connection, principal: str, key: str) -> Prior | None:
    old = conn.execute(
        "SELECT endpoint, request_hash, status_code, response FROM idempotency_keys "
        f"WHERE principal = %s AND key = %s AND created_at >= now() - interval '{TTL}'",
        (principal, key),
    ).fetchone()
    if old is None:
        return None
    return Prior(
        str(old[0]),
        bytes(old[1]),
        None if old[2] is None else int(old[2]),
        None if old[3] is None else bytes(old[3]),
    )


def answered(conn: Connection, principal: str, key: str) -> Prior | None:
    """The committed request that holds the key (a claim still in flight is not seen)."""
    return _prior(conn, principal, key)


def claim(
    conn: Connection, principal: str, key: str, endpoint: str, digest: bytes, *, wait_ms: int
) -> Prior | None:
    """Claim the key for this request inside the caller's transaction (None), or the
    earlier request that holds it. A claim held by another transaction is waited for
    up to ``wait_ms``; still held then, it is reported as running (``status`` None)."""
    conn.execute(f"SET LOCAL lock_timeout = {int(wait_ms)}")
    try:
        with conn.transaction():  # a savepoint: a lock timeout undoes only the claim
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
    except (errors.LockNotAvailable, errors.DeadlockDetected):
        return Prior(endpoint, digest, None, None)
    finally:
        conn.execute("SET LOCAL lock_timeout = DEFAULT")
    if row is not None:
        return None
    # Held by this very transaction (the same key twice in one grouped run), or by a
    # request that committed while this one waited.
    prior = _prior(conn, principal, key)
    return prior if prior is not None else Prior(endpoint, digest, None, None)


def complete(conn: Connection, principal: str, key: str, status: int, body: bytes) -> None:
    conn.execute(
        "UPDATE idempotency_keys SET status_code = %s, response = %s "
        "WHERE principal = %s AND key = %s",
        (status, body, principal, key),
    )
