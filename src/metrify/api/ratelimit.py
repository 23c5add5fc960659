"""Token buckets per principal, in process: the request rate of signed-in callers.

Each worker process keeps its own buckets, so a deployment with N workers allows up to
N times the configured rate per principal; that bounds abuse without a shared store.
Sign-in and refresh attempts, where an unauthenticated caller guesses, are throttled in
counters every worker shares instead (:mod:`metrify.api.auth.throttle`).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


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
