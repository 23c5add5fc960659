"""The reference attributes of the meters a pipeline works on, read once per period.

VEE (limits, time zone, register size) and the detectors (registered PV, time zone,
weather station) look up every meter of every batch. A stream worker's micro-batch holds
one or two readings of each of thousands of meters, and that lookup cost a tenth of the
batch. The rows are kept for ``ttl_s`` and then read again, so an edit of the reference
data reaches a long-running worker within that period; meters not found are asked for
again in the next batch (they are usually being registered by it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import polars as pl

Loader = Callable[[pl.Series], pl.DataFrame]


class MeterCache:
    """Rows of ``load(ids)`` (one per known ``meter_id``), kept for ``ttl_s`` seconds."""

    def __init__(self, load: Loader, ttl_s: float, *, clock: Callable[[], float] = time.monotonic):
        self._load = load
        self._ttl = ttl_s
        self._clock = clock
        self._rows: pl.DataFrame | None = None
        self._loaded_at = 0.0

    def get(self, ids: pl.Series) -> pl.DataFrame:
        """The rows of the known meters among ``ids``."""
        wanted = ids.unique().to_frame("meter_id")
        now = self._clock()
        if self._rows is None or now - self._loaded_at > self._ttl:
            self._rows = self._load(wanted["meter_id"])
            self._loaded_at = now
            return self._rows
        missing = wanted.join(self._rows, on="meter_id", how="anti")
        if missing.height:
            found = self._load(missing["meter_id"])
            if found.height:
                self._rows = pl.concat([self._rows, found])
        return self._rows.join(wanted, on="meter_id", how="semi")

    def forget(self) -> None:
        """Read everything afresh next time (the reference data may have changed)."""
        self._rows = None
