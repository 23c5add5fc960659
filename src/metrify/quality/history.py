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
        """Add rows just stored (new versions win), then trim to the window per meter."""
        if not written.height:
            return
        new = written.select(HISTORY_COLUMNS)
        ids = new.select("meter_id").unique()
        # Meters never loaded have no coverage yet: only what is older than their first
        # written row could be missing, so they are covered from that row on.
        first = new.group_by("meter_id").agg(since=pl.col("ts").min())
        self._covered = pl.concat(
            [self._covered, first.join(self._covered, on="meter_id", how="anti")]
        )
        self._rows = pl.concat(
            [self._rows.join(new.select("meter_id", "ts"), on=["meter_id", "ts"], how="anti"), new]
        )
        touched = self._rows.join(ids, on="meter_id", how="semi")
        cutoff = touched.group_by("meter_id").agg(cut=pl.col("ts").max() - self._days)
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
