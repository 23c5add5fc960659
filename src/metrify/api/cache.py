"""A tiny in-process TTL cache for hot answers (latest readings, verified credentials).

Entries live at most ``ttl_s`` (or less, per entry). Invalidation bumps a generation
counter, and :meth:`TTLCache.put` can be told the generation its value was read under:
a value computed from the database *before* an invalidation (a revocation, an ingest)
but stored *after* it is dropped instead of being served until its TTL ends.

Safe to share between the event loop and worker threads: every operation is a few dict
calls under the GIL, and the eviction tolerates a concurrent one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl_s: float, max_items: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        #: bumped by every invalidation; see :meth:`put`
        self.generation = 0
        self._items: OrderedDict[object, tuple[float, V]] = OrderedDict()

    def get(self, key: object) -> V | None:
        if self.ttl_s <= 0:
            return None
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return item[1]

    def put(
        self, key: object, value: V, *, ttl_s: float | None = None, since: int | None = None
    ) -> None:
        """Keep ``value`` for ``min(ttl_s, self.ttl_s)`` seconds, unless the cache was
        invalidated after generation ``since`` (when the value was read)."""
        ttl = self.ttl_s if ttl_s is None else min(ttl_s, self.ttl_s)
        if ttl <= 0 or (since is not None and since != self.generation):
            return
        self._items[key] = (time.monotonic() + ttl, value)
        if since is not None and since != self.generation:  # invalidated while storing
            self._items.pop(key, None)
        while len(self._items) > self.max_items:
            try:
                self._items.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break

    def discard(self, key: object) -> None:
        self.generation += 1
        self._items.pop(key, None)

    def discard_many(self, keys: Iterable[object]) -> None:
        self.generation += 1
        for key in keys:
            self._items.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
