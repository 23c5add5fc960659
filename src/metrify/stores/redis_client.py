"""One way to open the Redis that ``METRIFY_API__REDIS_URL`` names, for every piece of
shared state kept there (sign-in throttle, rate buckets, shared answers): the client
library is an extra, so its absence is a configuration error that says how to fix it."""

from __future__ import annotations

from typing import Any


def connect(
    url: str, *, timeout_s: float, asynchronous: bool = False
) -> tuple[Any, tuple[type[Exception], ...]]:
    """(client, the exceptions that mean Redis cannot be reached) for ``url``."""
    try:
        import redis
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ValueError(
            "METRIFY_API__REDIS_URL is set but the redis client is not installed: "
            "pip install 'metrify[redis]'"
        ) from None
    factory = aioredis.Redis if asynchronous else redis.Redis
    client = factory.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    return client, (redis.RedisError, OSError)
