"""A tiny in-process TTL cache for hot answers (the latest reading of a meter).

Short TTLs keep fresh data visible across workers; an ingest in this process clears
the entries it touched at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl_s: float, max_items: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        if self.ttl_s <= 0:
            return None
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return item[1]

    def put(self, key: str, value: V) -> None:
        if self.ttl_s <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl_s, value)
        if len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
