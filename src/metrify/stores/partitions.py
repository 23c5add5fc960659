"""Monthly range partitions of the time-series tables, created on demand.

A batch may carry any month (a backfill from 2013, a meter with a wrong clock in 2031),
so the writer asks for the months it is about to touch before it writes. Creation is
serialised with an advisory lock so that several workers never race on the same month.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl
import psycopg

_LOCK_KEY = 7274032


def months_of(ts: pl.Series) -> list[dt.date]:
    """First days of the months the timestamps fall in (UTC), sorted."""
    months = ts.dt.truncate("1mo").unique().drop_nulls().sort()
    return [m.date() for m in months.to_list()]


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def _next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)


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
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            existing = {
                row[0]
                for row in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
                    (table,),
                )
            }
            for month in missing:
                name = partition_name(table, month)
                if name not in existing:
                    conn.execute(
                        f'CREATE TABLE "{name}" PARTITION OF "{table}" '
                        f"FOR VALUES FROM ('{month.isoformat()} 00:00+00') "
                        f"TO ('{_next_month(month).isoformat()} 00:00+00')"
                    )
                    created += 1
                self._known.add((table, month))
        return created
