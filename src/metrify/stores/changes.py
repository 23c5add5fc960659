"""Change notifications between processes: PostgreSQL ``NOTIFY`` on three channels.

Server workers keep short-lived caches (verified credentials, latest readings, energy
answers) and drop them when another process says something changed: ``metrify_auth``
for every user or API key change (from the API or the CLI), ``metrify_readings`` naming
the meters whose readings or region changed ("" meaning all of them), and
``metrify_aggregates``, sent by the database itself (migration 0014's triggers) for any
write that changes what the energy aggregates answer. A notification is delivered when
the sending transaction commits, so a listener never hears of an uncommitted change.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg

from metrify.stores.pools import CONNECTION_OPTIONS, Connection

log = logging.getLogger(__name__)

#: users and API keys changed
AUTH_CHANNEL = "metrify_auth"
#: readings (or the region) of the named meters changed; "" = all meters
READINGS_CHANNEL = "metrify_readings"
#: readings, or a meter's groups or zone, changed: every energy answer may have
AGGREGATES_CHANNEL = "metrify_aggregates"
#: a NOTIFY payload must stay under 8000 bytes; longer lists become "" (= all meters)
_MAX_PAYLOAD = 7900


@dataclass(frozen=True)
class Change:
    """One notification: credentials changed (``auth``), the aggregates did
    (``aggregates``), or the readings of ``meter_ids`` (None: of every meter)."""

    auth: bool
    meter_ids: list[str] | None = None
    aggregates: bool = False


def announce_auth(conn: Connection) -> None:
    """Every listener drops its cached principals (at the commit of ``conn``)."""
    conn.execute(f"NOTIFY {AUTH_CHANNEL}")


def announce_readings(conn: Connection, meter_ids: Sequence[str]) -> None:
    """Every listener forgets what it cached of ``meter_ids`` (distinct, not empty).
    Best effort: listeners that miss it fall back to their cache's TTL, so a failure is
    only logged."""
    payload = ",".join(meter_ids)  # meter ids cannot hold a comma (records.ID_PATTERN)
    try:
        conn.execute(
            "SELECT pg_notify(%s, %s)",
            (READINGS_CHANNEL, payload if len(payload) <= _MAX_PAYLOAD else ""),
        )
    except psycopg.Error as exc:
        log.warning("could not announce changed readings: %s", exc)


@asynccontextmanager
async def listening(url: str) -> AsyncIterator[AsyncIterator[Change]]:
    """Listen on the three channels over a connection of its own; the changes arrive through
    the yielded iterator, which ends (or raises) when the connection is lost."""
    conn = await psycopg.AsyncConnection.connect(url, **CONNECTION_OPTIONS)
    async with conn:
        await conn.execute(f"LISTEN {AUTH_CHANNEL}")
        await conn.execute(f"LISTEN {READINGS_CHANNEL}")
        await conn.execute(f"LISTEN {AGGREGATES_CHANNEL}")
        yield _changes(conn)


async def _changes(conn: psycopg.AsyncConnection[object]) -> AsyncIterator[Change]:
    async for note in conn.notifies():
        if note.channel == AUTH_CHANNEL:
            yield Change(auth=True)
        elif note.channel == AGGREGATES_CHANNEL:
            yield Change(auth=False, aggregates=True)
        else:
            yield Change(auth=False, meter_ids=note.payload.split(",") if note.payload else None)
