"""The append-only audit log: who did what, when, from where, with which outcome.

Rows carry the actor (user name or ``key:<prefix>``), never a password, token or key;
``details`` holds counts and identifiers only. The table refuses UPDATE and DELETE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection

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


def record(conn: psycopg.Connection[Any], event: Event) -> None:
    conn.execute(INSERT, event.params())


async def arecord(conn: AsyncConnection[Any], event: Event) -> None:
    await conn.execute(INSERT, event.params())


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


def query(
    *,
    actor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> tuple[str, list[Any]]:
    """SQL and parameters of a filtered audit listing (oldest first, keyset by id)."""
    where, params = ["TRUE"], []
    for clause, value in (
        ("actor = %s", actor),
        ("action LIKE %s", None if action is None else action.replace("*", "%")),
        ("at >= %s", since),
        ("at < %s", until),
        ("id > %s", after_id),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE {' AND '.join(where)} "
        f"ORDER BY id LIMIT %s"
    )
    return sql, [*params, limit]
