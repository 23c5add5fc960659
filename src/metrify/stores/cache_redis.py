"""Cached answers shared by every API worker and host through Redis.

An answer is kept under a key that carries a generation number: invalidating them all
is one ``INCR`` of the generation, and an answer is stored under the generation read
*before* it was computed, so one computed from data older than an invalidation lands
under a generation no one reads any more and is never served. Entries expire on their
own (``SET ... EX``). Every failure is a miss: the answer is then computed as without
Redis.
"""

from __future__ import annotations

import hashlib
import logging

import orjson

from metrify.stores.redis_client import connect

log = logging.getLogger(__name__)


class RedisAnswers:
    """Answers of one kind (``namespace``) under ``prefix`` in the Redis at ``url``."""

    def __init__(self, url: str, prefix: str, namespace: str) -> None:
        self.client, self.errors = connect(url, timeout_s=1)
        self.base = f"{prefix}cache:{namespace}:"
        self._failing = False

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("shared cache %s unavailable, answering without it: %s", self.base, exc)
        self._failing = True

    def _key(self, generation: int, asked: object) -> str:
        digest = hashlib.sha256(orjson.dumps(asked)).hexdigest()[:40]
        return f"{self.base}{generation}:{digest}"

    def generation(self) -> int | None:
        """The current generation (None: Redis unreachable, do not use the cache)."""
        try:
            value = self.client.get(self.base + "gen")
        except self.errors as exc:
            self._failed(exc)
            return None
        self._failing = False
        return 0 if value is None else int(value)

    def get(self, generation: int, asked: object) -> bytes | None:
        try:
            value = self.client.get(self._key(generation, asked))
        except self.errors as exc:
            self._failed(exc)
            return None
        return None if value is None else bytes(value)

    def put(self, generation: int, asked: object, body: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        try:
            self.client.set(self._key(generation, asked), body, ex=max(1, int(ttl_s)))
        except self.errors as exc:
            self._failed(exc)

    def invalidate(self) -> None:
        """Make every stored answer unreachable (they expire on their own)."""
        try:
            self.client.incr(self.base + "gen")
        except self.errors as exc:
            self._failed(exc)

    def close(self) -> None:
        self.client.close()
