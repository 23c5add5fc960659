"""Connection pools for a long-running server, and the errors that mean "no database".

A server process keeps two pools on the same PostgreSQL: an async one for reads on the
event loop (no thread hop on the hot path) and a small sync one that the synchronous
pipeline borrows from on a worker thread. Both hand out autocommit connections in UTC,
so a bare statement commits and timestamps render the same in every worker. Callers
get the types from here, so a server never needs to import the driver itself.

Both fail fast while PostgreSQL is unreachable. A plain pool makes every request wait
its whole timeout (30 s) for a connection that cannot come, and retries connecting with
a back-off that grows to minutes, so it also comes back late. Here a connection attempt
that keeps failing for :data:`RECONNECT_S` marks the pool unreachable: a request then
waits at most :data:`FAIL_FAST_S` (time for one fresh attempt, which a request waiting
on an emptied pool starts) before its 503, and the first connection made clears the
mark. Requests answered from healthy connections never see any of it.
"""

from __future__ import annotations

import time
from typing import Any, TypeAlias

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from metrify.stores.traced import cursor_options

Connection: TypeAlias = psycopg.Connection[Any]
AsyncConnection: TypeAlias = psycopg.AsyncConnection[Any]
Pool: TypeAlias = ConnectionPool[Any]
AsyncPool: TypeAlias = AsyncConnectionPool[Any]

#: what a request meets when PostgreSQL is down or every connection is busy: the
#: server answers 503 for these rather than 500
UNAVAILABLE: tuple[type[Exception], ...] = (PoolTimeout, psycopg.OperationalError)

#: every pooled connection: autocommit, and times in UTC
CONNECTION_OPTIONS: dict[str, Any] = {"autocommit": True, "options": "-c TimeZone=UTC"}


#: a pool whose connection attempts failed this long takes PostgreSQL as unreachable
RECONNECT_S = 1.0
#: while it is unreachable, a request waits at most this long for a connection
FAIL_FAST_S = 1.0


class Reachability:
    """Whether the last connection attempts of a pool failed (set by the pool's
    ``reconnect_failed`` callback, cleared by its ``configure`` one)."""

    def __init__(self) -> None:
        self.unreachable = False

    def failed(self, _pool: object) -> None:
        self.unreachable = True

    def connected(self, _conn: object) -> None:
        self.unreachable = False

    async def connected_async(self, _conn: object) -> None:
        self.unreachable = False

    @staticmethod
    def slice_s(deadline: float) -> float:
        """How long the next wait for a connection lasts: waits go in short slices, so
        one that began before the server went away ends soon after it is found gone."""
        return min(deadline - time.monotonic(), FAIL_FAST_S)

    def give_up(self, deadline: float, total: float) -> PoolTimeout | None:
        """The error to end a wait that timed out with, or None to wait on."""
        if self.unreachable:
            return PoolTimeout("PostgreSQL is unreachable")
        if time.monotonic() >= deadline:
            return PoolTimeout(f"couldn't get a connection after {total:.2f} sec")
        return None


class FailFastPool(ConnectionPool[Connection]):
    """A sync pool that stops making requests wait once PostgreSQL is unreachable."""

    def __init__(self, url: str, max_size: int) -> None:
        self.reach = Reachability()
        super().__init__(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={**CONNECTION_OPTIONS, **cursor_options()},
            open=False,
            configure=self.reach.connected,
            reconnect_timeout=RECONNECT_S,
            reconnect_failed=self.reach.failed,
        )

    def getconn(self, timeout: float | None = None) -> Connection:
        total = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + total
        while True:
            try:
                return super().getconn(self.reach.slice_s(deadline))
            except PoolTimeout:
                error = self.reach.give_up(deadline, total)
                if error is not None:
                    raise error from None


class FailFastAsyncPool(AsyncConnectionPool[AsyncConnection]):
    """The async twin of :class:`FailFastPool`."""

    def __init__(self, url: str, max_size: int) -> None:
        self.reach = Reachability()
        super().__init__(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={**CONNECTION_OPTIONS, **cursor_options(asynchronous=True)},
            open=False,
            configure=self.reach.connected_async,
            reconnect_timeout=RECONNECT_S,
            reconnect_failed=self.reach.failed,
        )

    async def getconn(self, timeout: float | None = None) -> AsyncConnection:
        total = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + total
        while True:
            try:
                return await super().getconn(self.reach.slice_s(deadline))
            except PoolTimeout:
                error = self.reach.give_up(deadline, total)
                if error is not None:
                    raise error from None


def async_pool(url: str, max_size: int) -> AsyncPool:
    """A closed async pool (open it in the server's lifespan)."""
    return FailFastAsyncPool(url, max_size)


def sync_pool(url: str, max_size: int) -> Pool:
    """A closed sync pool (open it in the server's lifespan)."""
    return FailFastPool(url, max_size)


async def schema_revision(pool: AsyncPool, timeout: float) -> str | None:
    """The migration the database is at (None: never migrated); raises when PostgreSQL
    cannot be reached within ``timeout`` seconds."""
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute("SELECT version_num FROM alembic_version")
        row = await cur.fetchone()
    return None if row is None else str(row[0])
