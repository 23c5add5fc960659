"""Reads from a streaming replica when one is configured (``METRIFY_DATABASE_READ_URL``),
without ever showing a caller less than they wrote.

Writes, and reads whose answers are cached until the primary NOTIFYs a change (latest
reading, energy, quality scores refreshed on read), use the primary. The other reads
(series pages, quarantine, exports, grid, anomaly lists, reference lists) take a
connection from :meth:`ReadRouting.apool_for` / :meth:`ReadRouting.pool_for`, which
hands out the replica's pool only when

- the replica answers and is at most ``replica_max_lag_s`` behind, and
- it has replayed the caller's own last write: every successful write request (any
  method but GET/HEAD/OPTIONS) records the primary's WAL position after it for the
  caller and returns it as ``X-Metrify-LSN``; until the replica's replay passes it,
  that caller reads from the primary. A client spread over workers or hosts sends the
  header back as ``X-Metrify-Min-LSN`` on its reads to get the same guarantee anywhere.

So a read never waits: it goes to the primary instead (the choice, over waiting for the
replica, keeps read latency flat when a replica falls behind, at the cost of load on
the primary while it does). Lag is measured every ``replica_check_s`` as the age of the
newest primary WAL position the replica has replayed (0 when it has replayed the
latest), exported as ``metrify_replica_lag_seconds`` and ``metrify_replica_lag_bytes``
and shown by ``/ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections import OrderedDict, deque
from typing import Any

from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrify.stores import pools, replica

log = logging.getLogger(__name__)

LAG_SECONDS = Gauge(
    "metrify_replica_lag_seconds",
    "How stale the read replica may be: age of the newest primary WAL position it replayed",
    multiprocess_mode="livemax",
)
LAG_BYTES = Gauge(
    "metrify_replica_lag_bytes",
    "WAL bytes the read replica has yet to replay",
    multiprocess_mode="livemax",
)
IN_USE = Gauge(
    "metrify_replica_in_use",
    "1 while reads may go to the replica (reachable, within the lag limit), else 0",
    multiprocess_mode="livemin",
)

#: the caller of the current request (set when access is decided)
caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)
#: the WAL position the current request's client asked to see (``X-Metrify-Min-LSN``)
asked_lsn: contextvars.ContextVar[int] = contextvars.ContextVar("asked_lsn", default=0)

LSN_HEADER = b"x-metrify-lsn"
MIN_LSN_HEADER = b"x-metrify-min-lsn"
_READS = {"GET", "HEAD", "OPTIONS"}
#: callers whose last write position is remembered (least recently writing forgotten)
_WRITERS = 100_000
#: primary positions remembered to date the replica's replay
_SAMPLES = 4096


class ReadRouting:
    """The replica's pools, its measured lag, and each recent writer's WAL position."""

    def __init__(
        self, primary: pools.AsyncPool, url: str, pool_size: int, max_lag_s: float, check_s: float
    ) -> None:
        self.primary = primary
        self.apool = pools.async_pool(url, pool_size)
        self.pool = pools.sync_pool(url, max(2, pool_size // 2))
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self.replay_lsn = 0
        self.lag_s = math.inf  # unknown until the first check
        self.lag_bytes = 0
        self.error: str | None = "not checked yet"
        self._samples: deque[tuple[float, int]] = deque(maxlen=_SAMPLES)
        self._writes: OrderedDict[str, int] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    # --- life ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pools without waiting for the replica: a replica that is down must
        not keep the API from starting (reads then go to the primary)."""
        await self.apool.open(wait=False)
        self.pool.open(wait=False)
        with contextlib.suppress(Exception):
            await self.check()
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.apool.close()
        self.pool.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reads stay on the primary until it answers again
                self._unusable(f"{type(exc).__name__}: {exc}")

    def _unusable(self, why: str) -> None:
        if self.error != why:
            log.warning("read replica not used: %s", why)
        self.error = why
        self.lag_s = math.inf
        IN_USE.set(0)

    async def check(self) -> None:
        """Measure the lag once: the primary's position now, then the replica's replay;
        the lag is the age of the newest primary position sampled that it has reached."""
        async with self.primary.connection(timeout=2) as conn:
            head = await replica.primary_lsn(conn)
        now = time.monotonic()
        self._samples.append((now, head))
        async with self.apool.connection(timeout=2) as conn:
            state = await replica.replay_state(conn)
        if not state.in_recovery:
            self._unusable("the read URL is not a replica (pg_is_in_recovery() is false)")
            return
        self.replay_lsn = state.replay_lsn
        self.lag_bytes = max(0, head - state.replay_lsn)
        reached = [t for t, lsn in self._samples if lsn <= state.replay_lsn]
        oldest = self._samples[0][0]
        self.lag_s = now - max(reached) if reached else now - oldest
        self.error = None
        LAG_SECONDS.set(self.lag_s)
        LAG_BYTES.set(self.lag_bytes)
        IN_USE.set(1 if self.lag_s <= self.max_lag_s else 0)

    # --- choosing -----------------------------------------------------------------------

    def wrote(self, actor: str, lsn: int) -> None:
        """``actor``'s write committed at or before ``lsn``."""
        self._writes[actor] = max(lsn, self._writes.pop(actor, 0))
        while len(self._writes) > _WRITERS:
            self._writes.popitem(last=False)

    def usable(self) -> bool:
        """Whether the current request may read from the replica."""
        if self.error is not None or self.lag_s > self.max_lag_s:
            return False
        need = asked_lsn.get()
        actor = caller.get()
        if actor is not None:
            need = max(need, self._writes.get(actor, 0))
        if need > self.replay_lsn:
            return False
        if actor is not None and actor in self._writes:
            del self._writes[actor]  # the replica has it: no need to remember
        return True

    def apool_for(self) -> pools.AsyncPool:
        return self.apool if self.usable() else self.primary

    def status(self) -> dict[str, Any]:
        """The replica's state for ``/ready``."""
        return {
            "in_use": self.error is None and self.lag_s <= self.max_lag_s,
            "lag_s": None if math.isinf(self.lag_s) else round(self.lag_s, 3),
            "lag_bytes": self.lag_bytes,
            "max_lag_s": self.max_lag_s,
            "error": self.error,
        }


class ReadYourWrites:
    """ASGI middleware: takes a client's ``X-Metrify-Min-LSN``, and after each
    successful write request records the primary's WAL position for its caller and
    returns it as ``X-Metrify-LSN``."""

    def __init__(self, app: ASGIApp, routing: ReadRouting) -> None:
        self.app = app
        self.routing = routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == MIN_LSN_HEADER:
                with contextlib.suppress(ValueError):
                    asked_lsn.set(replica.parse_lsn(value.decode("latin-1")))
        if scope["method"] in _READS:
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                principal = scope.get("metrify.principal")
                actor = getattr(principal, "actor", None)
                try:
                    async with self.routing.primary.connection(timeout=2) as conn:
                        lsn = await replica.primary_lsn(conn)
                except Exception:  # the write stands; its caller may read a stale replica
                    log.warning("could not read the WAL position after a write")
                else:
                    if actor is not None:
                        self.routing.wrote(str(actor), lsn)
                    headers = [
                        *message.get("headers", ()),
                        (LSN_HEADER, replica.format_lsn(lsn).encode()),
                    ]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_marked)
