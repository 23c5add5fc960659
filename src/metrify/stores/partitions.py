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


def months_of(ts: pl.Series) -> list[dt.date]:
    """First days of the months the timestamps fall in (UTC), sorted."""
    months = ts.dt.truncate("1mo").unique().drop_nulls().sort()
    return [m.date() for m in months.to_list()]


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
