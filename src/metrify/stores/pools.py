"""Connection pools for a long-running server, and the errors that mean "no database".

A server process keeps two pools on the same PostgreSQL: an async one for reads on the
event loop (no thread hop on the hot path) and a small sync one that the synchronous
pipeline borrows from on a worker thread. Both hand out autocommit connections in UTC,
so a bare statement commits and timestamps render the same in every worker. Callers
get the types from here, so a server never needs to import the driver itself.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

Connection: TypeAlias = psycopg.Connection[Any]
AsyncConnection: TypeAlias = psycopg.AsyncConnection[Any]
Pool: TypeAlias = ConnectionPool[Any]
AsyncPool: TypeAlias = AsyncConnectionPool[Any]

#: what a request meets when PostgreSQL is down or every connection is busy: the
#: server answers 503 for these rather than 500
UNAVAILABLE: tuple[type[Exception], ...] = (PoolTimeout, psycopg.OperationalError)

#: every pooled connection: autocommit, and times in UTC
CONNECTION_OPTIONS: dict[str, Any] = {"autocommit": True, "options": "-c TimeZone=UTC"}


def async_pool(url: str, max_size: int) -> AsyncPool:
    """A closed async pool (open it in the server's lifespan)."""
    return AsyncConnectionPool(
        url, min_size=1, max_size=max_size, kwargs=dict(CONNECTION_OPTIONS), open=False
    )


def sync_pool(url: str, max_size: int) -> Pool:
    """A closed sync pool (open it in the server's lifespan)."""
    return ConnectionPool(
        url, min_size=1, max_size=max_size, kwargs=dict(CONNECTION_OPTIONS), open=False
    )


async def schema_revision(pool: AsyncPool, timeout: float) -> str | None:
    """The migration the database is at (None: never migrated); raises when PostgreSQL
    cannot be reached within ``timeout`` seconds."""
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute("SELECT version_num FROM alembic_version")
        row = await cur.fetchone()
    return None if row is None else str(row[0])
