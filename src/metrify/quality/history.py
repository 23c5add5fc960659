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
from typing import Final

import polars as pl

from metrify.contracts.localtime import DAY_US
from metrify.contracts.records import READING
from metrify.quality.context import Reach

Loader = Callable[[pl.Series, dt.datetime, dt.datetime], pl.DataFrame]

HISTORY_COLUMNS = [*READING.fields, "quality", "status", "source"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class HistoryCache:
    """The last ``days`` of each meter's stored readings, refreshed from what is written.

    Rows are kept in one frame per UTC day. A stream batch appends to the newest day,
    trims only the oldest, and asks for the meters' recent rows plus a few hours of the
    day further back (see :class:`~metrify.quality.context.Reach`): no step joins or
    filters the whole window, and a one-off load (an HTTP request) files a week of rows
    as a handful of frames.
    """

    def __init__(self, load: Loader, days: int) -> None:
        self._load = load
        self._span = dt.timedelta(days=days)
        #: rows by the UTC day they lie in (days since the epoch)
        self._days: dict[int, pl.DataFrame] = {}
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
        return sum(frame.height for frame in self._days.values())

    def forget(self) -> None:
        """Drop everything (partitions reassigned, or another writer may have changed rows)."""
        self._days.clear()
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

    def get(
        self, records: pl.DataFrame, until: dt.datetime, reach: Reach | None = None
    ) -> pl.DataFrame:
        """Stored rows of the meters in ``records`` from ``days`` before each meter's own
        first reading up to ``until``, from memory where possible; with ``reach``, only
        the rows it keeps (and the whole window of the meters it names).

        Coverage is judged per meter: a stream batch mixes meters at different points in
        time (partitions drain at their own pace), so one batch-wide start would send
        every meter ahead of the slowest back to the database on every batch.
        """
        needed = records.group_by("meter_id").agg(need=pl.col("ts").min() - self._span)
        known = needed.join(self._covered, on="meter_id", how="left")
        missing = known.filter(pl.col("since").is_null() | (pl.col("since") > pl.col("need")))
        if missing.height:
            since = missing["need"].min()
            assert isinstance(since, dt.datetime)
            ids = missing.select("meter_id")
            loaded = self._load(ids["meter_id"], since, until).select(HISTORY_COLUMNS)
            # What this process wrote stays: the last batch may still be on its way to
            # the database (a background write), and the load cannot see it yet.
            cached = self._drop_meters(ids)
            keys = ["meter_id", "ts"]
            loaded = pl.concat([loaded.join(cached, on=keys, how="anti"), cached])
            self._add(loaded)
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
        start = needed["need"].min()
        assert isinstance(start, dt.datetime)
        low, high = _day_of(start), _day_of(until)
        days = [d for d in sorted(self._days) if low <= d <= high]
        if reach is None:
            return self._pick([self._days[d] for d in days], needed, until)
        # days that start at or after the cut are handed over whole, unfiltered
        first_whole = _day_of(reach.cut - dt.timedelta(microseconds=1)) + 1
        if len(reach.hours) < 24:  # found by binary search (see Reach.pick)
            for day in days:
                if day < first_whole and not self._days[day].get_column("ts").is_sorted():
                    self._days[day] = self._days[day].sort("ts")
        older = _concat([self._days[d] for d in days if d < first_whole])
        recent = [self._days[d] for d in days if d >= first_whole]
        if needed.height != self._covered.height:
            # Only the needed meters' rows can come out of _pick: the others (a load's
            # earlier files, other meters) are left out before the reach looks at them.
            # Filters keep the order, so the days stay in time order for Reach.pick.
            wanted = pl.col("meter_id").is_in(needed.get_column("meter_id").implode())
            older = older.filter(wanted)
            recent = [part.filter(wanted) for part in recent]
        return self._pick([reach.pick(older, recent)], needed, until)

    def _pick(
        self, frames: list[pl.DataFrame], needed: pl.DataFrame, until: dt.datetime
    ) -> pl.DataFrame:
        """The rows in ``frames`` of the ``needed`` meters from their ``need`` to ``until``.

        When every cached meter is needed (a live fleet's micro-batch), only rows older
        than the latest ``need`` are matched to their meter; the rest are all wanted.
        """
        rows = _concat(frames).filter(pl.col("ts") <= until)
        if needed.height != self._covered.height:
            return (
                rows.join(needed, on="meter_id", how="inner")
                .filter(pl.col("ts") >= pl.col("need"))
                .drop("need")
            )
        latest = needed.get_column("need").max()
        assert isinstance(latest, dt.datetime)
        early = (
            rows.filter(pl.col("ts") < latest)
            .join(needed, on="meter_id", how="inner")
            .filter(pl.col("ts") >= pl.col("need"))
            .drop("need")
        )
        return pl.concat([early, rows.filter(pl.col("ts") >= latest)])

    def _add(self, rows: pl.DataFrame) -> None:
        """File rows under their days (no key of them may be cached already).

        A stream's days are kept in time order, so that :meth:`Reach.pick` finds a
        batch's hours by binary search: a stream appends later rows, which keeps the
        order, and a late or loaded part re-sorts its day once. Rows spanning a day or
        more (a file's batch) are filed as they come: the next such batch has every hour
        of the day near and cuts its context by day (no search), and sorting each day
        of each batch cost more than a tenth of a load's main thread. A stream batch
        that follows sorts the days it searches (see :meth:`get`).
        """
        if not rows.height:
            return
        low, high = rows.get_column("ts").min(), rows.get_column("ts").max()
        assert isinstance(low, dt.datetime) and isinstance(high, dt.datetime)
        in_order = high - low < dt.timedelta(days=1)
        for key, part in _by_day(rows):
            if in_order and not part.get_column("ts").is_sorted():
                part = part.sort("ts")
            held = self._days.get(key)
            if held is None:
                self._days[key] = part
                continue
            merged = pl.concat([held, part])
            after = held.get_column("ts")[-1] <= part.get_column("ts")[0]
            self._days[key] = merged if after or not in_order else merged.sort("ts")

    def _drop_meters(self, ids: pl.DataFrame) -> pl.DataFrame:
        """Take the cached rows of ``ids`` out (about to be loaded again); returns them."""
        taken = []
        for key, frame in list(self._days.items()):
            mine = frame.get_column("meter_id").is_in(ids.get_column("meter_id").implode())
            taken.append(frame.filter(mine))
            self._keep(key, frame.filter(~mine))
        return _concat(taken)

    def _keep(self, key: int, frame: pl.DataFrame) -> None:
        if frame.height:
            self._days[key] = frame
        else:
            del self._days[key]

    def remember(self, written: pl.DataFrame) -> None:
        """Add rows just stored (new versions win), then trim to the window per meter.

        Runs once per batch, so it touches only the days it must: the usual batch only
        adds readings later than everything cached for its meters (no replacement), and
        only the oldest days can hold rows that fell out of some meter's window.
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
        if replaces.height:
            again = new.join(replaces.select("meter_id", "last"), on="meter_id").filter(
                pl.col("ts") <= pl.col("last")
            )
            for key, keys in _by_day(again.select("meter_id", "ts")):
                if key in self._days:
                    held = self._days[key].join(
                        keys, on=["meter_id", "ts"], how="anti", maintain_order="left"
                    )
                    self._keep(key, held)
        newest = seen.select(
            "meter_id", last=pl.max_horizontal("newest", "last").dt.cast_time_unit("us")
        )
        self._newest = pl.concat([self._newest.join(newest, on="meter_id", how="anti"), newest])
        cutoff = newest.select("meter_id", cut=pl.col("last") - self._span)
        # Rows already out of their meter's window are not filed only to be trimmed: a
        # batch of year-long files would file a year of days to keep its last weeks.
        first, latest_cut = new["ts"].min(), cutoff["cut"].max()
        if (
            isinstance(first, dt.datetime)
            and isinstance(latest_cut, dt.datetime)
            and first < latest_cut
        ):
            new = (
                new.join(cutoff, on="meter_id", how="left", maintain_order="left")
                .filter(pl.col("ts") >= pl.col("cut"))
                .drop("cut")
            )
        self._add(new)
        self._trim(cutoff)
        self._covered = (
            self._covered.join(cutoff, on="meter_id", how="left")
            .with_columns(since=pl.max_horizontal("since", "cut"))
            .drop("cut")
        )

    def _trim(self, cutoff: pl.DataFrame) -> None:
        """Drop rows older than their meter's ``cut``: only rows before the latest cut can
        be, so only those are looked up, in the days that hold any."""
        latest = cutoff["cut"].max()
        if not isinstance(latest, dt.datetime):
            return
        for key in [d for d in self._days if d <= _day_of(latest)]:
            frame = self._days[key]
            old = pl.col("ts") < latest
            stale = frame.filter(old)
            if not stale.height:
                continue
            judged = (
                stale.join(cutoff, on="meter_id", how="left")
                .filter(pl.col("cut").is_null() | (pl.col("ts") >= pl.col("cut")))
                .drop("cut")
            )
            self._keep(key, pl.concat([judged, frame.filter(~old)]))  # still in time order


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames) if frames else pl.DataFrame(schema=HistoryCache._schema())


def _day_of(moment: dt.datetime) -> int:
    """The UTC day ``moment`` lies in, as the cache files it."""
    return (moment - _EPOCH).days


def _by_day(rows: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """``rows`` split by UTC day, in one pass (a batch usually falls on one or two)."""
    day = (pl.col("ts").dt.epoch("us") // DAY_US).alias("_d")
    parts = rows.with_columns(day).partition_by("_d", as_dict=True)
    out = []
    for (key,), part in parts.items():
        assert isinstance(key, int)
        out.append((key, part.drop("_d")))
    return out
