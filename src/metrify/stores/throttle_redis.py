"""The sign-in throttle counters in Redis (``METRIFY_API__REDIS_URL``).

The same counters as :mod:`metrify.stores.throttle`, kept as a key's time to live: the
lead of a key's clock over now IS its remaining TTL, so Redis forgets a counter on its
own when it falls behind, and no clock but Redis's is involved. Counting an event is one
Lua script (read the TTL, extend it), atomic across every worker.
"""

from __future__ import annotations

from collections.abc import Sequence

from metrify.stores.redis_client import connect
from metrify.stores.throttle import ThrottleUnavailable

#: KEYS[1] the counter, ARGV[1] milliseconds to add; returns the new lead in ms
_ADD = """
local lead = redis.call('PTTL', KEYS[1])
if lead < 0 then lead = 0 end
lead = lead + tonumber(ARGV[1])
redis.call('SET', KEYS[1], '1', 'PX', lead)
return lead
"""


class RedisCounters:
    """Counters under ``prefix`` in the Redis at ``url``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client, self._errors = connect(url, timeout_s=5)
        self.prefix = prefix
        self._add = self.client.register_script(_ADD)

    def ahead(self, keys: Sequence[str]) -> list[float]:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.pttl(self.prefix + key)
                leads = pipe.execute()
        except self._errors as exc:
            raise ThrottleUnavailable(str(exc)) from exc
        return [max(0, int(ms)) / 1000.0 for ms in leads]

    def add(self, key: str, seconds: float) -> float:
        try:
            lead = self._add(keys=[self.prefix + key], args=[max(1, round(seconds * 1000))])
        except self._errors as exc:
            raise ThrottleUnavailable(str(exc)) from exc
        return int(lead) / 1000.0

    def put(self, key: str, seconds: float) -> None:
        try:
            self.client.set(self.prefix + key, "1", px=max(1, round(seconds * 1000)))
        except self._errors as exc:
            raise ThrottleUnavailable(str(exc)) from exc

    def close(self) -> None:
        self.client.close()
