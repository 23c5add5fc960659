"""The append-only audit log: who did what, when, from where, with which outcome.

Rows carry the actor (user name, ``key:<prefix>`` or the CLI's operator), never a
password, token or key; ``details`` holds counts and identifiers only, and any key that
looks like a secret is dropped on the way in whatever a caller passes. The table refuses
UPDATE, DELETE and TRUNCATE, the app's role may only insert and read it, and the database
chains each new row to the one before by hash (:mod:`metrify.stores.audit_chain` checks
it). That chaining holds a lock until the inserting transaction commits, so a
transaction writes its audit row last. Writing is synchronous (the API writes from worker
threads); the API reads its listing pages on the event loop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from metrify.stores.pools import AsyncConnection, Connection

INSERT = (
    "INSERT INTO audit_log (actor, actor_kind, action, target, outcome, request_id, client,"
    " details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
)
#: keys that must never reach the log, whatever a caller passes in ``details``.
_SECRET_WORDS = ("password", "secret", "token", "api_key", "authorization", "key_hash")


@dataclass(frozen=True)
class Event:
    actor: str
    actor_kind: str  # user | key | anonymous | cli
    action: str  # e.g. auth.login, ingest.readings, meters.update, export.readings
    target: str | None = None
    outcome: str = "success"  # success | failure | denied
    request_id: str | None = None
    client: str | None = None
    details: dict[str, Any] | None = None

    def params(self) -> tuple[Any, ...]:
        details = {
            k: v
            for k, v in (self.details or {}).items()
            if not any(word in k.lower() for word in _SECRET_WORDS)
        }
        return (
            self.actor,
            self.actor_kind,
            self.action,
            self.target,
            self.outcome,
            self.request_id,
            self.client,
            orjson.dumps(details, default=str).decode(),
        )


def record(conn: Connection, event: Event) -> None:
    conn.execute(INSERT, event.params())


COLUMNS = (
    "id",
    "at",
    "actor",
    "actor_kind",
    "action",
    "target",
    "outcome",
    "request_id",
    "client",
    "details",
)


@dataclass(frozen=True)
class Filter:
    """Which rows to list; every condition given must hold (``action`` may hold ``*``
    wildcards; ``since`` inclusive, ``until`` exclusive)."""

    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _listing(
    where: Filter, *, after_id: int | None, limit: int, newest_first: bool
) -> tuple[str, list[Any]]:
    clauses, params = ["TRUE"], []
    for clause, value in (
        ("actor = %s", where.actor),
        ("action LIKE %s", None if where.action is None else where.action.replace("*", "%")),
        ("at >= %s", where.since),
        ("at < %s", where.until),
        ("id > %s", after_id),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    order = "id DESC" if newest_first else "id"
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE {' AND '.join(clauses)} "
        f"ORDER BY {order} LIMIT %s"
    )
    return sql, [*params, limit]


async def page(
    conn: AsyncConnection, where: Filter, *, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows after ``after_id``, oldest first (one page of a listing)."""
    sql, params = _listing(where, after_id=after_id, limit=limit, newest_first=False)
    cur = await conn.execute(sql, params)
    return [dict(zip(COLUMNS, r, strict=True)) for r in await cur.fetchall()]


def newest(conn: Connection, where: Filter, *, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, the oldest of them first (the tail of the log)."""
    sql, params = _listing(where, after_id=None, limit=limit, newest_first=True)
    rows = conn.execute(sql, params).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in reversed(rows)]
