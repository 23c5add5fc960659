"""Marking whole UTC days of the energy aggregates for a rebuild.

Writers mark the meter-days they change (migration 0013's triggers; the bulk writer's
COPY into the partitions marks its own, :func:`mark_rows`) and
:func:`metrify.stores.aggregates.refresh` rebuilds what is marked. The daily batch job
re-derives its data interval outright instead of trusting the marks alone: a re-run of
a day, or a backfill, recomputes every meter-day and group-day of it from the readings,
whatever the marks say. A rebuild of a day replaces its rows (delete, then insert), so
marking a day twice, or a day with nothing stored, is harmless.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.stores.aggregates import GROUP_COLUMNS, LOCK
from metrify.stores.changes import AGGREGATES_CHANNEL
from metrify.stores.meter_days import insert_meter_days
from metrify.stores.pools import Connection

__all__ = ["mark_days", "mark_rows"]


def mark_rows(
    cur: psycopg.Cursor[tuple[object, ...]],
    rows: pl.DataFrame,
    pairs: tuple[str, str] | None = None,
) -> None:
    """Mark the (meter, UTC day) pairs of readings ``rows`` just inserted in ``cur``'s
    transaction straight into the partitions, as the parent table's trigger marks what
    goes in through it: under the writers' shared lock, then announced.

    Why not the trigger: a statement trigger with a transition table copies every
    inserted row into a tuple store (spilled to disk past ``work_mem``) only to read
    back its distinct meter-days. For a bulk load that was a third of PostgreSQL's
    work; the writer knows the pairs already and sends a few thousand of them.
    ``pairs``: :func:`~metrify.stores.meter_days.meter_day_pairs` of ``rows``, found
    already.
    """
    if not rows.height:
        return
    cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LOCK,))
    insert_meter_days(cur, "agg_dirty", rows, pairs=pairs)
    cur.execute("SELECT pg_notify(%s, '')", (AGGREGATES_CHANNEL,))


def mark_days(conn: Connection, first: dt.date, last: dt.date) -> int:
    """Mark every meter-day and group-day of the UTC days [first, last] for the next
    refresh: the meters with readings on those days or aggregate rows left from earlier
    (a reading deleted since), and the groups with rows on them (a group left without
    meters). How many meter-days were marked.

    Marks are taken under the writers' shared lock, as the triggers take it, so a
    refresh already under way finishes before them or sees them.
    """
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LOCK,))
        cur = conn.execute(
            "INSERT INTO agg_dirty (meter_id, day)"
            " SELECT meter_id, (ts AT TIME ZONE 'UTC')::date FROM readings"
            " WHERE ts >= %(start)s AND ts < %(end)s"
            " UNION"
            " SELECT meter_id, (bucket AT TIME ZONE 'UTC')::date FROM agg_meter_30m"
            " WHERE bucket >= %(start)s AND bucket < %(end)s",
            {"start": start, "end": end},
        )
        marked = max(cur.rowcount, 0)
        conn.execute(
            "INSERT INTO agg_group_dirty (dim, key, day)"
            " SELECT DISTINCT dim, key, (bucket AT TIME ZONE 'UTC')::date FROM agg_group_30m"
            " WHERE dim = ANY(%(dims)s) AND bucket >= %(start)s AND bucket < %(end)s",
            {"dims": [*GROUP_COLUMNS, "fleet"], "start": start, "end": end},
        )
    return marked
