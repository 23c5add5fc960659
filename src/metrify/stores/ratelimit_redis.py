"""Request-rate buckets in Redis (``METRIFY_API__REDIS_URL``), shared by every API worker
and host: a principal gets the configured rate in total, not per process.

Each bucket is one key holding its "theoretical arrival time" (the generic cell rate
algorithm, equivalent to a token bucket of ``burst`` tokens refilled at ``rate``/s): a
request is allowed when that time, less the burst's worth, is not in the future, and
then moves it on by one interval. One Lua script reads Redis's own clock, decides and
updates, so concurrent requests on any worker are counted exactly, with no clock but
Redis's. The key expires when its bucket would be full again.
"""

from __future__ import annotations

from metrify.stores.redis_client import connect

#: KEYS[1] bucket; ARGV: microseconds per token, burst tokens, cost; returns the
#: microseconds to wait (0: allowed, and counted)
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or t)
if tat < t then tat = t end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if allow_at > t then return math.ceil(allow_at - t) end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - t) / 1000) + 1)
return 0
"""


class RedisBuckets:
    """Rate buckets under ``prefix`` in the Redis at ``url`` (asyncio client)."""

    def __init__(self, url: str, prefix: str, rate: float, burst: int) -> None:
        self.client, self.errors = connect(url, timeout_s=1, asynchronous=True)
        self.prefix = prefix + "rate:"
        self.interval_us = 1_000_000.0 / rate
        self.burst = burst
        self._take = self.client.register_script(_TAKE)

    async def take(self, key: str, cost: float = 1.0) -> float:
        """Seconds to wait (0.0: allowed and counted); raises one of :attr:`errors`
        when Redis cannot be reached."""
        waited = await self._take(
            keys=[self.prefix + key], args=[self.interval_us, self.burst, cost]
        )
        return int(waited) / 1_000_000.0

    async def reset(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def close(self) -> None:
        await self.client.aclose()
