"""Quarantined input: rows that could not become records, with raw payload and reason.

Listings filter on kind, reason, source and arrival time; a reason or source matches
either by prefix (what a client that knows the format asks) or as a case-insensitive
fragment (what a person at a terminal types).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from metrify.stores.pools import AsyncConnection, Connection

#: what a listing returns of each quarantined row
COLUMNS = ("id", "kind", "source", "raw", "reason", "line", "received_at")


@dataclass(frozen=True)
class Filter:
    """Which rows to list; every condition given must hold."""

    kind: str | None = None
    reason_prefix: str | None = None
    #: a fragment of the reason, any case
    reason_part: str | None = None
    source: str | None = None
    source_prefix: str | None = None
    received_since: dt.datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        where, params = ["true"], []
        for clause, value in (
            ("kind = %s", self.kind),
            ("starts_with(reason, %s)", self.reason_prefix),
            ("reason ILIKE %s", None if self.reason_part is None else f"%{self.reason_part}%"),
            ("source = %s", self.source),
            ("starts_with(source, %s)", self.source_prefix),
            ("received_at >= %s", self.received_since),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return " AND ".join(where), params


async def page(
    conn: AsyncConnection, where: Filter, *, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows with ids after ``after_id``, oldest first."""
    clause, params = where.where()
    cur = await conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM quarantine WHERE id > %s AND {clause} "
        "ORDER BY id LIMIT %s",
        (after_id, *params, limit),
    )
    return [dict(zip(COLUMNS, r, strict=True)) for r in await cur.fetchall()]


def newest(conn: Connection, where: Filter, *, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, newest first."""
    clause, params = where.where()
    rows = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM quarantine WHERE {clause} ORDER BY id DESC LIMIT %s",
        [*params, limit],
    ).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def counts(conn: Connection, where: Filter) -> list[tuple[str, str, int]]:
    """(kind, reason, rows) of the matching rows, most frequent first."""
    clause, params = where.where()
    rows = conn.execute(
        f"SELECT kind, reason, count(*) FROM quarantine WHERE {clause}"
        " GROUP BY 1, 2 ORDER BY 3 DESC",
        params,
    ).fetchall()
    return [(str(k), str(r), int(n)) for k, r, n in rows]


def of_source(conn: Connection, source: str, *, limit: int) -> list[tuple[int | None, str]]:
    """(line, reason) of the first ``limit`` rows one source left, in arrival order."""
    rows = conn.execute(
        "SELECT line, reason FROM quarantine WHERE source = %s ORDER BY id LIMIT %s",
        (source, limit),
    ).fetchall()
    return [(line, reason) for line, reason in rows]
