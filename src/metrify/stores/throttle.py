"""Sign-in throttle counters shared by every API worker: PostgreSQL by default.

A counter is one instant per key, ``until``: how far ahead of now the key's clock runs.
Each counted event pushes it ``seconds`` further (from now if it had fallen behind), so
a key with ``until - now`` above a burst allowance is refused until then. That is the
generic cell rate algorithm (a token bucket kept as one timestamp): one value per key,
one atomic statement per event, and a key that has fallen behind now is the same as no
key at all, so stale rows are deleted a few at a time as new ones are written.

The clock is the store's own (``clock_timestamp()`` here, the key's time to live in
Redis), never a worker's: workers on different hosts agree without synchronised clocks.
:mod:`metrify.stores.throttle_redis` keeps the same counters in Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from metrify.stores.pools import UNAVAILABLE, Pool

#: stale rows removed by each write (bounded, so no write pays for a backlog)
_PURGE_ROWS = 20


class ThrottleUnavailable(RuntimeError):
    """The counter store cannot be reached: sign-in is refused (503), never let through
    unthrottled."""


class Counters(Protocol):
    """What the sign-in throttle needs from a shared store."""

    def ahead(self, keys: Sequence[str]) -> list[float]:
        """Per key, the seconds its clock runs ahead of now (0: none, or behind)."""
        ...

    def add(self, key: str, seconds: float) -> float:
        """Count one event: push the key's clock ``seconds`` further; its new lead."""
        ...

    def put(self, key: str, seconds: float) -> None:
        """Set the key's clock to now + ``seconds`` (a mark that lasts that long)."""
        ...


class PostgresCounters:
    """Counters in the ``auth_throttle`` table, over the worker's sync pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def ahead(self, keys: Sequence[str]) -> list[float]:
        try:
            with self.pool.connection() as conn:
                rows = conn.execute(
                    "SELECT key, extract(epoch FROM until - clock_timestamp())::float8 "
                    "FROM auth_throttle WHERE key = ANY(%s) AND until > clock_timestamp()",
                    (list(keys),),
                ).fetchall()
        except UNAVAILABLE as exc:
            raise ThrottleUnavailable(str(exc)) from exc
        found = {str(k): float(v) for k, v in rows}
        return [max(0.0, found.get(k, 0.0)) for k in keys]

    def add(self, key: str, seconds: float) -> float:
        try:
            with self.pool.connection() as conn:
                row = conn.execute(
                    "INSERT INTO auth_throttle AS t (key, until) "
                    "VALUES (%(key)s, clock_timestamp() + make_interval(secs => %(s)s)) "
                    "ON CONFLICT (key) DO UPDATE SET until = "
                    "greatest(t.until, clock_timestamp()) + make_interval(secs => %(s)s) "
                    "RETURNING extract(epoch FROM until - clock_timestamp())::float8",
                    {"key": key, "s": seconds},
                ).fetchone()
                conn.execute(
                    "DELETE FROM auth_throttle WHERE key IN (SELECT key FROM auth_throttle "
                    "WHERE until < clock_timestamp() LIMIT %s FOR UPDATE SKIP LOCKED)",
                    (_PURGE_ROWS,),
                )
        except UNAVAILABLE as exc:
            raise ThrottleUnavailable(str(exc)) from exc
        return 0.0 if row is None else float(row[0])

    def put(self, key: str, seconds: float) -> None:
        try:
            with self.pool.connection() as conn:
                conn.execute(
                    "INSERT INTO auth_throttle (key, until) "
                    "VALUES (%s, clock_timestamp() + make_interval(secs => %s)) "
                    "ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until",
                    (key, seconds),
                )
        except UNAVAILABLE as exc:
            raise ThrottleUnavailable(str(exc)) from exc
