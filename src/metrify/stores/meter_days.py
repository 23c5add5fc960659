"""The (meter, UTC day) pairs a batch of readings touches, inserted as one statement.

Two kinds of mark are kept per meter-day: stale daily quality scores
(:mod:`metrify.stores.quality_daily`) and aggregates to rebuild
(:mod:`metrify.stores.aggregate_days`). Both send a batch's pairs the same way.
"""

from __future__ import annotations

import polars as pl
import psycopg

from metrify.stores.arrays import array_literal

__all__ = ["insert_meter_days"]


def insert_meter_days(
    cur: psycopg.Cursor[tuple[object, ...]], table: str, rows: pl.DataFrame, suffix: str = ""
) -> int:
    """Insert the distinct (``meter_id``, UTC day of ``ts``) pairs of ``rows`` into
    ``table`` (its ``meter_id`` and ``day`` columns) in one statement, ``suffix`` (an
    ``ON CONFLICT`` clause) after it; how many pairs there were (0: nothing sent).

    The days go as integers since the epoch: the cheapest array to send."""
    pairs = rows.select("meter_id", day=pl.col("ts").dt.date().cast(pl.Int32)).unique()
    if not pairs.height:
        return 0
    cur.execute(
        f"INSERT INTO {table} (meter_id, day)"
        " SELECT m, date '1970-01-01' + d FROM unnest(%s::text[], %s::int[]) AS k(m, d)"
        f" {suffix}",
        (array_literal(pairs.get_column("meter_id")), array_literal(pairs.get_column("day"))),
    )
    return pairs.height
