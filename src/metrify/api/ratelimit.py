"""Token buckets per principal: the request rate of signed-in callers.

Without Redis each worker process keeps its own buckets, so a deployment with N
workers allows up to N times the configured rate per principal. With
``METRIFY_API__REDIS_URL`` the buckets live in Redis (:class:`SharedRateLimiter`), so
the rate holds across every worker and host; while Redis cannot be reached, each worker
falls back to its own buckets (a limit per process beats refusing every request or
none). Sign-in and refresh attempts, where an unauthenticated caller guesses, are
throttled in counters every worker shares (:mod:`metrify.api.auth.throttle`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``rate`` tokens/s, at most ``burst`` saved up; :meth:`take` says when to retry."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> int | None:
        """None when allowed; else the whole seconds to wait (for Retry-After)."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()  # bounded memory beats perfect accounting
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return None
            return max(1, math.ceil((cost - bucket.tokens) / self.rate))

    def reset(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    async def acquire(self, key: str, cost: float = 1.0) -> int | None:
        """:meth:`take` for the event loop (a shared limiter asks Redis here)."""
        return self.take(key, cost)

    async def close(self) -> None:
        """Release what the limiter holds (nothing, in process)."""


class SharedRateLimiter(RateLimiter):
    """The same buckets in Redis, counted across every worker and host."""

    def __init__(self, buckets: Any, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self.buckets = buckets  # metrify.stores.ratelimit_redis.RedisBuckets
        self._down = False

    async def acquire(self, key: str, cost: float = 1.0) -> int | None:
        try:
            wait = await self.buckets.take(key, cost)
        except self.buckets.errors as exc:
            if not self._down:
                log.warning("rate limits counted per process while Redis is unreachable: %s", exc)
                self._down = True
            return self.take(key, cost)
        if self._down:
            log.warning("rate limits shared through Redis again")
            self._down = False
        return None if wait <= 0 else max(1, math.ceil(wait))

    async def close(self) -> None:
        await self.buckets.close()
