"""The lake outbox (migration 0012): the days the lake may not yet hold as committed.

A time-series write notes each (kind, UTC day) it touches in its own transaction
(:func:`add`); whoever brings those days into the lake removes exactly the entries it
saw (:func:`clear`). Entries left by a crash are :func:`pending` until caught up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

Cursor = psycopg.Cursor[Any]


def add(cur: Cursor, kind: str, days: Sequence[dt.date]) -> list[int]:
    """Note ``days`` of ``kind`` as to be brought into the lake; the new entries' ids."""
    if not days:
        return []
    cur.execute(
        "INSERT INTO lake_outbox (kind, day) SELECT %s, unnest(%s::date[]) RETURNING id",
        (kind, list(days)),
    )
    return [int(row[0]) for row in cur.fetchall()]


def clear(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    """Remove entries whose days the lake now holds."""
    if ids:
        conn.execute("DELETE FROM lake_outbox WHERE id = ANY(%s)", (list(ids),))


def pending(
    conn: psycopg.Connection[Any],
    kind: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> dict[tuple[str, dt.date], list[int]]:
    """The committed entries, by (kind, day), optionally of one kind and a day range."""
    rows = conn.execute(
        "SELECT kind, day, array_agg(id) FROM lake_outbox"
        " WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (%(since)s::date IS NULL OR day >= %(since)s)"
        " AND (%(until)s::date IS NULL OR day <= %(until)s)"
        " GROUP BY kind, day ORDER BY kind, day",
        {"kind": kind, "since": since, "until": until},
    ).fetchall()
    return {(str(k), d): [int(i) for i in ids] for k, d, ids in rows}
