"""Monthly range partitions of the time-series tables, created on demand.

A batch may carry any month (a backfill from 2013, a meter with a wrong clock in 2031),
so the writer asks for the months it is about to touch before it writes. Only a table's
owner may add a partition and the app connects as the least-privileged ``metrify_app``,
so the creation is the SECURITY DEFINER function ``metrify_ensure_partition`` (migration
0010), which creates nothing but a monthly partition and serialises callers with an
advisory lock so that several workers never race on the same month.

A month a write brings many rows of, and the store has none of (a load of history), is
created another way (migration 0023): its rows go into a bare table first, and the
partition's indexes are built once they are all in, when the table is attached
(:meth:`Partitions.bulk_months`, :func:`new_month`, :func:`attach_month`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl
import psycopg

#: a new month's rows in one write from which they go in bare and are indexed after (see
#: :meth:`Partitions.bulk_months`): fewer cost little either way, and a stream's first
#: minutes of a month keep the plain partition that its workers create together
BULK_MONTH_ROWS = 10_000


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


def new_month(cur: psycopg.Cursor[tuple[object, ...]], table: str, month: dt.date) -> str | None:
    """A bare table for ``month``'s rows of ``table``, created in the cursor's transaction
    (no index; a check holds it to the month), to be attached by :func:`attach_month`
    in the same transaction; None when the month's partition exists by now."""
    row = cur.execute("SELECT metrify_new_month(%s, %s)", (table, month)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def attach_month(cur: psycopg.Cursor[tuple[object, ...]], table: str, month: dt.date) -> None:
    """Attach this transaction's bare table of ``month`` as its partition of ``table``
    (PostgreSQL builds its indexes now). Raises ``DuplicateTable`` when another writer
    created the month's partition meanwhile, ``UniqueViolation`` when the rows repeat a
    key: either way the caller rolls back to before :func:`new_month`."""
    cur.execute("SELECT metrify_attach_month(%s, %s)", (table, month))


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

    def bulk_months(
        self, conn: psycopg.Connection[tuple[object, ...]], table: str, ts: pl.Series
    ) -> list[dt.date]:
        """The months of ``ts`` that have no partition of ``table`` yet and at least
        :data:`BULK_MONTH_ROWS` rows here: a writer loads them into bare tables and
        attaches them (:func:`new_month`, :func:`attach_month`) instead of creating them
        empty first.

        Rows copied into an indexed partition enter its primary key one at a time;
        loaded bare, the index is built in one sorted pass when the table is attached:
        a year of half-hourly readings of 100 homes was written in 5.5 s instead of 9.
        """
        unknown = [m for m in months_of(ts) if (table, m) not in self._known]
        if not unknown:
            return []
        names = [partition_name(table, m) for m in unknown]
        found = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(%s)",
            (names,),
        ).fetchall()
        existing = {row[0] for row in found}
        self._known.update((table, m) for m, n in zip(unknown, names, strict=True) if n in existing)
        new = [m for m, n in zip(unknown, names, strict=True) if n not in existing]
        if not new:
            return []
        return [
            m
            for m in new
            if ts.is_between(_month_start(m), _month_start(m, 1), "left").sum() >= BULK_MONTH_ROWS
        ]

    def known(self, table: str, months: Iterable[dt.date]) -> None:
        """Note partitions made by a committed write (an attached month)."""
        self._known.update((table, m) for m in months)

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
