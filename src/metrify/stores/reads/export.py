"""Bulk export of readings: rows in chunks from a server-side cursor.

A named cursor keeps the result in PostgreSQL and hands it over a chunk at a time, so
memory stays flat whatever the range; the caller encodes each chunk as it comes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from metrify.stores.pools import Connection
from metrify.stores.reads.readings import READING_COLUMNS

CHUNK = 20_000
#: the export's columns: the stored key, then what a reading query returns.
COLUMNS = ("meter_id", *READING_COLUMNS)


def _sql(meter_ids: list[str] | None, regions: tuple[str, ...] | None) -> tuple[str, list[Any]]:
    where = ["r.ts >= %s", "r.ts < %s"]
    params: list[Any] = []
    if meter_ids:
        where.append("r.meter_id = ANY(%s)")
        params.append(meter_ids)
    if regions is not None:
        where.append("r.meter_id IN (SELECT meter_id FROM meters WHERE region = ANY(%s))")
        params.append(list(regions))
    cols = ", ".join(f"r.{c}" for c in COLUMNS)
    return (
        f"SELECT {cols} FROM readings r WHERE {' AND '.join(where)} ORDER BY r.meter_id, r.ts",
        params,
    )


def chunks(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    *,
    meter_ids: list[str] | None = None,
    regions: tuple[str, ...] | None = None,
    size: int = CHUNK,
) -> Iterator[list[tuple[Any, ...]]]:
    """Readings (:data:`COLUMNS`) in [start, end) by meter and time, ``size`` rows at a
    time: of ``meter_ids`` (None or empty: every meter), of meters in ``regions`` (None:
    any region). Holds a transaction on ``conn`` until exhausted or closed."""
    sql, extra = _sql(meter_ids, regions)
    with conn.transaction(), conn.cursor(name="metrify_export") as cur:
        cur.itersize = size
        cur.execute(sql, [start, end, *extra])
        while True:
            chunk = cur.fetchmany(size)
            if not chunk:
                return
            yield chunk
