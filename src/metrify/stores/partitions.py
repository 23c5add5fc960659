"""Monthly range partitions of the time-series tables, created on demand.

A batch may carry any month (a backfill from 2013, a meter with a wrong clock in 2031),
so the writer asks for the months it is about to touch before it writes. Only a table's
owner may add a partition and the app connects as the least-privileged ``metrify_app``,
so the creation is the SECURITY DEFINER function ``metrify_ensure_partition`` (migration
0010), which creates nothing but a monthly partition and serialises callers with an
advisory lock so that several workers never race on the same month.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl
import psycopg


def partition_name(table: str, month: dt.date) -> str:
    """The monthly partition of ``table`` holding ``month`` (as ``metrify_ensure_partition``
    names it)."""
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def by_partition(table: str, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """``frame``'s rows split by the monthly partition of ``table`` their ``ts`` falls in
    (UTC), each with the partition's name, in time order; the rows keep their order.

    A writer that inserts into the partitions themselves skips the parent's tuple
    routing and, above all, its statement triggers with transition tables: those copy
    every inserted row into a tuple store to read them back (see
    :func:`metrify.stores.aggregate_days.mark_rows` for what the writer does instead).
    Each month's rows are taken by comparing timestamps with its bounds: a batch
    touches a month or two, and a calendar month per row cost four times as much.
    """
    months = months_of(frame["ts"])
    if len(months) <= 1:
        return [(partition_name(table, month), frame) for month in months]
    ts = pl.col("ts")
    return [
        (
            partition_name(table, month),
            frame.filter(ts.is_between(_month_start(month), _month_start(month, 1), "left")),
        )
        for month in months
    ]


def _month_start(month: dt.date, later: int = 0) -> dt.datetime:
    """The first instant (UTC) of ``month``, or of the month ``later`` months after it."""
    index = month.year * 12 + month.month - 1 + later
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def partition_start(ts: dt.datetime) -> dt.datetime:
    """The start of the monthly partition ``ts`` falls in (UTC; ``ts`` timezone-aware).

    Rows of one partition written in one ``COPY`` in key order append to its primary
    key's index; written in several, each later write inserts into the middle of every
    meter's range, splitting pages that then stay half full (a year's load of weekly
    slices spent a sixth more of PostgreSQL's time and left the index 40 % larger)."""
    return _month_start(ts.astimezone(dt.UTC).date())


def months_of(ts: pl.Series) -> list[dt.date]:
    """First days of the months the timestamps fall in (UTC), sorted.

    Through the distinct days (a day number per row, then a few dozen dates): a
    calendar month per row was most of a batch's partition lookup."""
    epoch = dt.date(1970, 1, 1)
    days = ts.dt.epoch("d").unique().drop_nulls().to_list()
    return sorted({(epoch + dt.timedelta(days=day)).replace(day=1) for day in days})


class Partitions:
    """Remembers which partitions exist so that a batch costs one set lookup, not a query."""

    def __init__(self) -> None:
        self._known: set[tuple[str, dt.date]] = set()

    def ensure(
        self, conn: psycopg.Connection[tuple[object, ...]], table: str, months: Iterable[dt.date]
    ) -> int:
        """Create the missing monthly partitions of ``table``; return how many were created.

        Runs in its own short transaction: creating a partition locks the parent table,
        which must not be held for the duration of a bulk write.
        """
        missing = [m for m in months if (table, m) not in self._known]
        if not missing:
            return 0
        created = 0
        with conn.transaction():
            for month in missing:
                row = conn.execute(
                    "SELECT metrify_ensure_partition(%s, %s)", (table, month)
                ).fetchone()
                created += bool(row and row[0])
                self._known.add((table, month))
        return created
