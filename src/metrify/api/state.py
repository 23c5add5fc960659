"""What one API worker process holds: settings, pools, token service, limits, caches.

Built once per process by :func:`metrify.api.app.create_app`; pools open in the app's
lifespan. Reads use an async pool (no thread hop on the hot path); the pipeline, which
is synchronous, borrows connections from a small sync pool on a worker thread.

Three in-process caches make the hot reads cheap, and one listener keeps them honest
across processes: ``principals`` (verified credentials, ``auth_cache_s``) is emptied by
``NOTIFY metrify_auth`` (every user or key change through the API or the CLI),
``latest`` (the latest-reading answers, ``cache_ttl_s``) forgets the meters named by
``NOTIFY metrify_readings`` (every ingest, edit or meter change made through the API),
and ``energy`` (energy answers, ``energy_cache_s``) is emptied by ``NOTIFY
metrify_aggregates``, which the database's own triggers send for every write that
changes the aggregates, whoever makes it. The caches that only a notification can keep
right (principals, energy) are off while no listener runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from metrify.api.auth.principal import Principal
from metrify.api.auth.throttle import SignInThrottle
from metrify.api.auth.tokens import TokenService
from metrify.api.cache import TTLCache
from metrify.api.ratelimit import RateLimiter, SharedRateLimiter
from metrify.api.replica import ReadRouting
from metrify.pipeline import lakesync
from metrify.settings import Settings
from metrify.stores import changes, database, pools
from metrify.stores.cache_redis import RedisAnswers
from metrify.stores.lake import Lake
from metrify.stores.postgres import PostgresStore
from metrify.stores.reads import quality
from metrify.stores.throttle import Counters, PostgresCounters

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    url: str
    tokens: TokenService
    limiter: RateLimiter
    latest: TTLCache[tuple[str | None, bytes]]
    principals: TTLCache[Principal]
    #: energy answers (response bodies) by (dim, key, resolution, from, to, tz)
    energy: TTLCache[bytes]
    apool: pools.AsyncPool = field(init=False)
    pool: pools.Pool = field(init=False)
    #: sign-in and refresh throttling, in counters shared by every worker
    throttle: SignInThrottle = field(init=False)
    started: float = field(default_factory=time.time)
    #: the read replica's pools and lag, when METRIFY_DATABASE_READ_URL is set
    reads: ReadRouting | None = None
    #: energy answers shared by every worker and host, when METRIFY_API__REDIS_URL is set
    shared_energy: RedisAnswers | None = None
    _listener: asyncio.Task[None] | None = None
    _refresher: asyncio.Task[None] | None = None
    _lake_catch_up: asyncio.Task[int] | None = None
    #: an ingest left daily-quality marks that the background refresher has not taken
    _quality_due: bool = False
    _stores: weakref.WeakKeyDictionary[Any, PostgresStore] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    #: per contract kind, the group commit of its ingest requests (routers.ingest)
    ingest_groups: dict[str, Any] = field(default_factory=dict)
    ingest_groups_lock: threading.Lock = field(default_factory=threading.Lock)

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
            limiter=_limiter(settings),
            latest=TTLCache(cfg.cache_ttl_s),
            principals=TTLCache(0.0),  # enabled once the change listener runs
            energy=TTLCache(0.0, max_items=512),  # likewise; answers reach 150 KB
        )
        state.apool = pools.async_pool(url, cfg.pool_size)
        state.pool = pools.sync_pool(url, max(2, cfg.pool_size // 2))
        if settings.database_read_url is not None:
            state.reads = ReadRouting(
                state.apool,
                settings.database_read_url.get_secret_value(),
                cfg.pool_size,
                settings.replica_max_lag_s,
                settings.replica_check_s,
            )
        counters: Counters
        if cfg.redis_url is not None and cfg.energy_cache_s > 0:
            state.shared_energy = RedisAnswers(
                cfg.redis_url.get_secret_value(), cfg.redis_prefix, "energy"
            )
        if cfg.redis_url is not None:
            from metrify.stores.throttle_redis import RedisCounters

            counters = RedisCounters(cfg.redis_url.get_secret_value(), cfg.redis_prefix)
        else:
            counters = PostgresCounters(state.pool)
        state.throttle = SignInThrottle(counters, cfg)
        return state

    async def open(self) -> None:
        await self.apool.open(wait=True, timeout=30)
        self.pool.open(wait=True, timeout=30)
        if self.reads is not None:
            await self.reads.open()
        cfg = self.settings.api
        if cfg.auth_cache_s > 0 or cfg.cache_ttl_s > 0 or cfg.energy_cache_s > 0:
            listening = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(listening))
            try:  # serve with the caches on from the first request, when we can
                await asyncio.wait_for(listening.wait(), timeout=5)
            except TimeoutError:
                log.warning("LISTEN not ready after 5 s: serving without the auth cache")
        if self.deferred_quality:
            self._refresher = asyncio.create_task(self._refresh_quality_loop())
        if self.settings.lake_enabled:
            self._lake_catch_up = asyncio.create_task(asyncio.to_thread(self.catch_up_lake))

    def catch_up_lake(self) -> int:
        """Bring into the lake the days a crash kept from it (the lake outbox), in the
        background at start; how many days were rewritten (0 on failure: logged)."""
        try:
            with self.pool.connection() as conn:
                return lakesync.catch_up(conn, Lake(self.settings.lake))
        except Exception as exc:  # the entries stay for the next start or lake repair
            log.error("lake catch-up failed: %s", exc)
            return 0

    async def close(self) -> None:
        for task in (self._listener, self._refresher, self._lake_catch_up):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._quality_due:  # best effort: the marks are durable, any refresh takes them
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.refresh_quality)
        await self.apool.close()
        self.pool.close()
        if self.reads is not None:
            await self.reads.close()
        await self.limiter.close()
        if self.shared_energy is not None:
            self.shared_energy.close()
        close = getattr(self.throttle.counters, "close", None)
        if close is not None:
            close()

    # --- where reads go ---------------------------------------------------------------

    def read_apool(self) -> pools.AsyncPool:
        """The async pool for an uncached read: the replica's when one is configured, keeps
        up and holds the caller's own writes (:mod:`metrify.api.replica`), else the primary's."""
        return self.apool if self.reads is None else self.reads.apool_for()

    def read_pool(self) -> pools.Pool:
        """The sync twin of :meth:`read_apool`, for reads run on a worker thread."""
        if self.reads is None or not self.reads.usable():
            return self.pool
        return self.reads.pool

    # --- daily quality scores ----------------------------------------------------------

    @property
    def deferred_quality(self) -> bool:
        """Ingest requests leave the daily quality scores to a background refresh every
        ``quality_refresh_s`` (as a stream worker does) instead of recomputing them in
        every request; 0 refreshes in the request."""
        return self.settings.quality_refresh_s > 0

    def quality_marked(self) -> None:
        """An ingest wrote readings (and durable marks of the meter-days to re-score)."""
        self._quality_due = True

    def refresh_quality(self) -> int:
        """Re-score every marked meter-day (from any process) now; blocking."""
        with self.pool.connection() as conn:
            return self.store_for(conn).refresh_quality_daily()

    async def refresh_quality_if_marked(self, meter_id: str | None = None) -> None:
        """Read-your-writes for the score readers: if ``meter_id`` (None: any meter)
        has marked days not yet re-scored, re-score them before answering."""
        if not self.deferred_quality:
            return
        async with self.apool.connection() as conn:
            due = await quality.marked(conn, meter_id)
        if due:
            await asyncio.to_thread(self.refresh_quality)

    async def _refresh_quality_loop(self) -> None:
        period = max(self.settings.quality_refresh_s, 0.1)
        while True:
            await asyncio.sleep(period)
            if not self._quality_due:
                continue
            self._quality_due = False
            try:
                await asyncio.to_thread(self.refresh_quality)
            except Exception as exc:  # the marks stay; the next round retries
                self._quality_due = True
                log.warning("daily quality refresh failed (will retry): %s", exc)

    def readings_changed(self, conn: pools.Connection, meter_ids: Iterable[str]) -> None:
        """Forget the cached latest answers of ``meter_ids`` here at once, and in every
        other worker through ``NOTIFY metrify_readings``. Call it after the change is
        committed (``conn`` is an autocommit connection)."""
        ids = sorted({str(m) for m in meter_ids})
        if not ids:
            return
        self.latest.discard_many(ids)
        changes.announce_readings(conn, ids)

    async def _invalidate_shared_energy(self) -> None:
        """Every worker that hears of a change bumps the shared generation: one would
        do, the others' bumps cost a little and need no election."""
        if self.shared_energy is not None:
            await asyncio.to_thread(self.shared_energy.invalidate)

    async def _listen(self, listening: asyncio.Event) -> None:
        """Drop cached principals whenever a user or key changes (``NOTIFY metrify_auth``
        from any process: API workers or the CLI), so a cache never outlives a
        revocation by more than a notification's trip; and cached latest readings of the
        meters another worker wrote (``NOTIFY metrify_readings``); and every energy answer
        when the aggregates change (``NOTIFY metrify_aggregates``). Without a listener
        there is no principal or energy cache; the latest-reading cache falls back to
        its TTL."""
        while True:
            try:
                async with changes.listening(self.url) as notes:
                    self.principals.clear()
                    self.latest.clear()
                    self.energy.clear()
                    await self._invalidate_shared_energy()  # changes missed while away
                    self.principals.ttl_s = self.settings.api.auth_cache_s
                    self.energy.ttl_s = self.settings.api.energy_cache_s
                    listening.set()
                    async for change in notes:
                        if change.auth:
                            self.principals.clear()
                        elif change.aggregates:
                            self.energy.clear()
                            await self._invalidate_shared_energy()
                        elif change.meter_ids is None:
                            self.latest.clear()
                        else:
                            self.latest.discard_many(change.meter_ids)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost connection: no cache until listening again
                self.principals.ttl_s = self.energy.ttl_s = 0
                self.principals.clear()
                self.energy.clear()
                log.warning("auth and energy caches off until LISTEN works again: %s", exc)
                await asyncio.sleep(1)


def _limiter(settings: Settings) -> RateLimiter:
    """Request-rate buckets: in Redis when one is configured (shared by every worker and
    host), else in this process."""
    cfg = settings.api
    if cfg.redis_url is None:
        return RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst)
    from metrify.stores.ratelimit_redis import RedisBuckets

    buckets = RedisBuckets(
        cfg.redis_url.get_secret_value(),
        cfg.redis_prefix,
        cfg.rate_limit_per_s,
        cfg.rate_limit_burst,
    )
    return SharedRateLimiter(buckets, cfg.rate_limit_per_s, cfg.rate_limit_burst)


__all__ = ["AppState"]
