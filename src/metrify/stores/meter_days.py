"""The (meter, UTC day) pairs a batch of readings touches, inserted as one statement.

Two kinds of mark are kept per meter-day: stale daily quality scores
(:mod:`metrify.stores.quality_daily`) and aggregates to rebuild
(:mod:`metrify.stores.aggregate_days`). Both send a batch's pairs the same way.
"""

from __future__ import annotations

import polars as pl
import psycopg

from metrify.stores.arrays import array_literal

__all__ = ["insert_meter_days", "meter_day_pairs"]


def insert_meter_days(
    cur: psycopg.Cursor[tuple[object, ...]],
    table: str,
    rows: pl.DataFrame,
    suffix: str = "",
    pairs: tuple[str, str] | None = None,
) -> None:
    """Insert the distinct (``meter_id``, UTC day of ``ts``) pairs of ``rows`` into
    ``table`` (its ``meter_id`` and ``day`` columns) in one statement, ``suffix`` (an
    ``ON CONFLICT`` clause) after it; nothing when ``rows`` is empty.

    ``pairs``: :func:`meter_day_pairs` of ``rows``, found already (on another thread)."""
    sent = meter_day_pairs(rows) if pairs is None else pairs
    if sent[0] == "{}":  # (an empty array: no rows, no pairs)
        return
    cur.execute(
        f"INSERT INTO {table} (meter_id, day)"
        " SELECT m, date '1970-01-01' + d FROM unnest(%s::text[], %s::int[]) AS k(m, d)"
        f" {suffix}",
        sent,
    )


def meter_day_pairs(rows: pl.DataFrame) -> tuple[str, str]:
    """The distinct (meter, UTC day) pairs of ``rows`` as the two array parameters of
    :func:`insert_meter_days`: the days as integers since the epoch, the cheapest array
    to send. Reads no database."""
    pairs = rows.select("meter_id", day=pl.col("ts").dt.date().cast(pl.Int32)).unique()
    return array_literal(pairs.get_column("meter_id")), array_literal(pairs.get_column("day"))
