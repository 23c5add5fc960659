"""What one API worker process holds: settings, pools, token service, limits, caches.

Built once per process by :func:`metrify.api.app.create_app`; pools open in the app's
lifespan. Reads use an async pool (no thread hop on the hot path); the pipeline, which
is synchronous, borrows connections from a small sync pool on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from metrify.api.auth.tokens import TokenService
from metrify.api.cache import TTLCache
from metrify.api.ratelimit import RateLimiter
from metrify.config import Settings
from metrify.stores import database
from metrify.stores.postgres import PostgresStore

log = logging.getLogger(__name__)
#: PostgreSQL channel announcing user and key changes
AUTH_CHANNEL = "metrify_auth"

if TYPE_CHECKING:
    from metrify.api.auth.principal import Principal


@dataclass
class AppState:
    settings: Settings
    url: str
    tokens: TokenService
    limiter: RateLimiter
    login_limiter: RateLimiter
    latest: TTLCache[bytes]
    principals: TTLCache[Principal]
    apool: AsyncConnectionPool[Any] = field(init=False)
    pool: ConnectionPool[Any] = field(init=False)
    started: float = field(default_factory=time.time)
    _listener: asyncio.Task[None] | None = None
    _stores: weakref.WeakKeyDictionary[Any, PostgresStore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def store_for(self, conn: Any) -> PostgresStore:
        """One store per pooled connection, so its staging tables and known partitions
        are set up once per connection rather than once per request."""
        store = self._stores.get(conn)
        if store is None:
            store = self._stores[conn] = PostgresStore(conn)
        return store

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        cfg = settings.api
        url = database.database_url(settings)
        state = cls(
            settings=settings,
            url=url,
            tokens=TokenService(cfg, settings.home),
            limiter=RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst),
            login_limiter=RateLimiter(
                cfg.login_failures_per_minute / 60.0, cfg.login_failures_per_minute
            ),
            latest=TTLCache(cfg.cache_ttl_s),
            principals=TTLCache(0.0),  # enabled once the change listener runs
        )
        state.apool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=cfg.pool_size,
            kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
            open=False,
        )
        state.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, cfg.pool_size // 2),
            kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
            open=False,
        )
        return state

    async def open(self) -> None:
        await self.apool.open(wait=True, timeout=30)
        self.pool.open(wait=True, timeout=30)
        if self.settings.api.auth_cache_s > 0:
            self._listener = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self.apool.close()
        self.pool.close()

    async def _listen(self) -> None:
        """Drop cached principals whenever a user or key changes (``NOTIFY metrify_auth``
        from any process: API workers or the CLI), so a cache never outlives a
        revocation by more than a notification's trip. Without a listener there is no
        cache."""
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, options="-c TimeZone=UTC"
                )
                async with conn:
                    await conn.execute(f"LISTEN {AUTH_CHANNEL}")
                    self.principals.clear()
                    self.principals.ttl_s = self.settings.api.auth_cache_s
                    async for _ in conn.notifies():
                        self.principals.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost connection: no cache until listening again
                self.principals.ttl_s = 0
                self.principals.clear()
                log.warning("auth cache disabled until LISTEN works again: %s", exc)
                await asyncio.sleep(1)


__all__ = ["AppState", "TupleRow"]
