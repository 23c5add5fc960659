"""Streaming a simulated fleet in time order, at a given rate, to any frame sink.

The sink is anything that takes contract frames by kind and can be flushed: in
production the Kafka :class:`~metrify.sources.kafka.Sender` (``metrify simulate --to
kafka``), in the stream benchmark a recorder. Naming that shape as a protocol keeps the
simulator free of the Kafka client, and free of the sources package it sits beside.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from metrify.simulation.spec import FleetSpec

__all__ = ["FleetChunks", "FrameSink", "StreamStats", "stream_fleet"]


class FleetChunks(Protocol):
    """What is streamed: a fleet's spec and its (readings, grid) chunks in time order."""

    @property
    def spec(self) -> FleetSpec: ...

    def chunks(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]: ...


class FrameSink(Protocol):
    """Where it goes: contract frames by kind (``readings``, ``grid``), then a flush."""

    def send_frame(self, kind: str, frame: pl.DataFrame) -> int:
        """Queue a frame's records; returns how many were queued."""

    def flush(self) -> None:
        """Wait until everything queued was delivered."""


@dataclass
class StreamStats:
    """What :func:`stream_fleet` sent."""

    readings: int = 0
    grid: int = 0
    weather: int = 0
    seconds: float = 0.0


def stream_fleet(
    fleet: FleetChunks,
    sender: FrameSink,
    rate_per_s: float,
    realtime: bool,
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    tick_s: float = 0.05,
) -> StreamStats:
    """Stream a simulated fleet's readings (and grid) in time order at ``rate_per_s``.

    Accelerated clock (``realtime=False``): the simulated clock runs as fast as the rate
    allows. Real-time clock: an interval is sent once it has ended on the wall clock, so
    a fleet starting today trickles in live while past days are sent at once (still no
    faster than the rate). Grid rows ride along with the readings of their interval and
    do not count against the rate. ``fleet`` is a :class:`~metrify.simulation.fleet.Fleet`
    (or any part of one with its ``spec`` and ``chunks()``).
    """
    if rate_per_s <= 0:
        raise ValueError(f"rate must be > 0 readings/s, got {rate_per_s}")
    stats = StreamStats()
    started = clock()
    per_tick = max(1, int(rate_per_s * tick_s))
    for readings, grid in fleet.chunks():
        readings = readings.sort("ts", maintain_order=True)
        grid = grid.sort("ts", maintain_order=True)
        grid_ts = grid["ts"]
        grid_at = 0
        for offset in range(0, readings.height, per_tick):
            if stop is not None and stop.is_set():
                stats.seconds = clock() - started
                return stats
            part = readings.slice(offset, per_tick)
            last = part["ts"].max()
            assert isinstance(last, dt.datetime)
            if realtime:
                ends = last.timestamp() + fleet.spec.interval_s
                while wall() < ends and not (stop is not None and stop.is_set()):
                    time.sleep(min(1.0, ends - wall()))
            due = started + stats.readings / rate_per_s
            if (wait := due - clock()) > 0:
                time.sleep(wait)
            stats.readings += sender.send_frame("readings", part)
            upto = int(grid_ts.search_sorted(last, side="right"))
            if upto > grid_at:
                stats.grid += sender.send_frame("grid", grid.slice(grid_at, upto - grid_at))
                grid_at = upto
        if grid_at < grid.height:
            stats.grid += sender.send_frame("grid", grid.slice(grid_at))
    sender.flush()
    stats.seconds = clock() - started
    return stats
