"""Recent stored history of the meters a process is working on, kept in memory.

VEE judges each batch against the meters' last ``context_days`` (spike baselines,
flat-line runs, gaps at the batch start, register continuity). Reading that window back
from PostgreSQL for every batch costs more than the batch itself when batches are small
(a stream worker) or follow each other in time (a long file): the previous batch IS the
next batch's history. So the window is loaded from the database once per meter and then
kept up to date with what this process writes.

The cache is authoritative for a meter only from ``covered_since`` on; anything older is
read from the database. It is correct as long as one process writes a meter at a time,
which Kafka's partitioning guarantees; a worker calls :meth:`HistoryCache.forget` when
its partitions are reassigned, so a meter that comes back is read fresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

from metrify.records import READING

Loader = Callable[[pl.Series, dt.datetime, dt.datetime], pl.DataFrame]

HISTORY_COLUMNS = [*READING.fields, "quality", "status", "source"]


class HistoryCache:
    """The last ``days`` of each meter's stored readings, refreshed from what is written."""

    def __init__(self, load: Loader, days: int) -> None:
        self._load = load
        self._days = dt.timedelta(days=days)
        self._rows = pl.DataFrame(schema=self._schema())
        self._covered = pl.DataFrame(
            schema={"meter_id": pl.String(), "since": READING.schema["ts"]}
        )
        #: the newest cached reading per meter (written or loaded)
        self._newest = pl.DataFrame(schema={"meter_id": pl.String(), "last": READING.schema["ts"]})

    @staticmethod
    def _schema() -> dict[str, pl.DataType]:
        return {
            **READING.schema,
            "quality": pl.Int32(),
            "status": pl.String(),
            "source": pl.String(),
        }

    @property
    def rows(self) -> int:
        return self._rows.height

    def forget(self) -> None:
        """Drop everything (partitions reassigned, or another writer may have changed rows)."""
        self._rows = self._rows.clear()
        self._covered = self._covered.clear()
        self._newest = self._newest.clear()

    def seen(self, records: pl.DataFrame) -> pl.DataFrame:
        """Keys of ``records`` at or before their meter's newest cached reading: the rows
        that may already be stored (a duplicate across batches, a late or corrected
        reading), which the store upserts while the rest goes in with a plain COPY."""
        return (
            records.select("meter_id", "ts")
            .join(self._newest, on="meter_id", how="inner")
            .filter(pl.col("ts") <= pl.col("last"))
            .drop("last")
        )

    def get(self, records: pl.DataFrame, until: dt.datetime) -> pl.DataFrame:
        """Stored rows of the meters in ``records`` from ``days`` before each meter's own
        first reading up to ``until``, from memory where possible.

        Coverage is judged per meter: a stream batch mixes meters at different points in
        time (partitions drain at their own pace), so one batch-wide start would send
        every meter ahead of the slowest back to the database on every batch.
        """
        needed = records.group_by("meter_id").agg(need=pl.col("ts").min() - self._days)
        known = needed.join(self._covered, on="meter_id", how="left")
        missing = known.filter(pl.col("since").is_null() | (pl.col("since") > pl.col("need")))
        if missing.height:
            since = missing["need"].min()
            assert isinstance(since, dt.datetime)
            ids = missing.select("meter_id")
            loaded = self._load(ids["meter_id"], since, until).select(HISTORY_COLUMNS)
            self._rows = pl.concat([self._rows.join(ids, on="meter_id", how="anti"), loaded])
            self._newest = pl.concat(
                [
                    self._newest.join(ids, on="meter_id", how="anti"),
                    loaded.group_by("meter_id").agg(last=pl.col("ts").max()),
                ]
            )
            self._covered = pl.concat(
                [
                    self._covered.join(ids, on="meter_id", how="anti"),
                    ids.with_columns(since=pl.lit(since).dt.cast_time_unit("us")),
                ]
            )
        return (
            self._rows.join(needed, on="meter_id", how="inner")
            .filter((pl.col("ts") >= pl.col("need")) & (pl.col("ts") <= until))
            .drop("need")
        )

    def remember(self, written: pl.DataFrame) -> None:
        """Add rows just stored (new versions win), then trim to the window per meter.

        Runs once per batch over the whole window, so it avoids passes over the cached
        rows where it can: the usual batch only adds readings later than everything
        cached for its meters, which needs no replacement, and the window's newest
        reading per meter is kept aside instead of being searched for.
        """
        if not written.height:
            return
        new = written.select(HISTORY_COLUMNS)
        span = new.group_by("meter_id").agg(since=pl.col("ts").min(), newest=pl.col("ts").max())
        seen = span.join(self._newest, on="meter_id", how="left")
        # Meters never loaded have no coverage yet: only what is older than their first
        # written row could be missing, so they are covered from that row on.
        self._covered = pl.concat(
            [
                self._covered,
                span.select("meter_id", "since").join(self._covered, on="meter_id", how="anti"),
            ]
        )
        replaces = seen.filter(pl.col("last").is_not_null() & (pl.col("since") <= pl.col("last")))
        kept = self._rows
        if replaces.height:
            kept = kept.join(new.select("meter_id", "ts"), on=["meter_id", "ts"], how="anti")
        self._rows = pl.concat([kept, new])
        newest = seen.select(
            "meter_id", last=pl.max_horizontal("newest", "last").dt.cast_time_unit("us")
        )
        self._newest = pl.concat([self._newest.join(newest, on="meter_id", how="anti"), newest])
        cutoff = newest.select("meter_id", cut=pl.col("last") - self._days)
        self._rows = (
            self._rows.join(cutoff, on="meter_id", how="left")
            .filter(pl.col("cut").is_null() | (pl.col("ts") >= pl.col("cut")))
            .drop("cut")
        )
        self._covered = (
            self._covered.join(cutoff, on="meter_id", how="left")
            .with_columns(since=pl.max_horizontal("since", "cut"))
            .drop("cut")
        )
