"""Readings of one meter: a page at a resolution, the newest one, every version of one.

Sums leave out rejected readings (a rejected value is not consumption) but every bucket
counts its readings per status and ORs their quality flags, so nothing is hidden. Pages
are keyset-paginated on the row or bucket start, which stays fast however long the range.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from metrify.stores.pools import AsyncConnection, Connection
from metrify.stores.reads.buckets import WORST, JsonRow, Resolution, as_json_rows, bucket

#: what a reading query returns of each stored reading
READING_COLUMNS = (
    "ts",
    "interval_s",
    "import_kwh",
    "export_kwh",
    "generation_kwh",
    "volume_m3",
    "register_kwh",
    "voltage_v",
    "quality",
    "status",
    "source",
)
#: what a bucketed reading query returns of each bucket
BUCKET_COLUMNS = (
    "ts",
    "import_kwh",
    "export_kwh",
    "intervals",
    "valid",
    "estimated",
    "suspect",
    "rejected",
    "missing",
    "quality",
    "status",
)
_RAW = as_json_rows(
    f"SELECT {', '.join(READING_COLUMNS)} FROM readings WHERE meter_id = %s AND ts >= %s "
    "AND ts < %s AND ts > %s ORDER BY ts LIMIT %s",
    READING_COLUMNS,
)


def _bucketed(step: str) -> str:
    return as_json_rows(
        f"""
        SELECT {bucket(step)} AS bucket,
               sum(import_kwh) FILTER (WHERE status <> 'rejected'),
               sum(export_kwh) FILTER (WHERE status <> 'rejected'),
               count(*),
               count(*) FILTER (WHERE status = 'valid'),
               count(*) FILTER (WHERE status = 'estimated'),
               count(*) FILTER (WHERE status = 'suspect'),
               count(*) FILTER (WHERE status = 'rejected'),
               count(*) FILTER (WHERE import_kwh IS NULL),
               bit_or(quality),
               {WORST}
        FROM readings
        WHERE meter_id = %s AND ts >= %s AND ts < %s
          AND {bucket(step)} > %s
        GROUP BY 1 ORDER BY 1 LIMIT %s
    """,
        BUCKET_COLUMNS,
    )


_PAGES = {"raw": _RAW} | {step: _bucketed(step) for step in ("15m", "1h", "1d")}

_LATEST = f"""
    SELECT m.region, r.*
    FROM meters m
    LEFT JOIN LATERAL (
        SELECT {", ".join(READING_COLUMNS)} FROM readings
        WHERE meter_id = m.meter_id ORDER BY ts DESC LIMIT 1
    ) r ON TRUE
    WHERE m.meter_id = %s
"""


async def page(
    conn: AsyncConnection,
    meter_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    resolution: Resolution,
    after: dt.datetime,
    limit: int,
) -> list[JsonRow]:
    """Up to ``limit`` readings (raw: :data:`READING_COLUMNS`) or buckets
    (:data:`BUCKET_COLUMNS`) in [start, end) starting after ``after``, in time order."""
    cur = await conn.execute(_PAGES[resolution], (meter_id, start, end, after, limit))
    return await cur.fetchall()


async def latest(
    conn: AsyncConnection, meter_id: str
) -> tuple[str | None, dict[str, Any] | None] | None:
    """(region, newest reading or None) of a meter; None for an unknown meter."""
    cur = await conn.execute(_LATEST, (meter_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    reading = None if row[1] is None else dict(zip(READING_COLUMNS, row[1:], strict=True))
    return (str(row[0]) if row[0] else None, reading)


#: one version of a reading: its values, and when, by whom and why it was replaced
VERSION_COLUMNS = (
    "import_kwh",
    "export_kwh",
    "register_kwh",
    "quality",
    "status",
    "source",
    "ingested_at",
    "replaced_at",
    "replaced_by",
    "reason",
)


def versions(conn: Connection, meter_id: str, ts: dt.datetime) -> list[dict[str, Any]]:
    """Every version of one reading, newest first: the current one (``reason``
    'current'), then its history. Empty when the meter has no reading at ``ts``."""
    cols = ", ".join(VERSION_COLUMNS[:7])
    current = conn.execute(
        f"SELECT {cols}, NULL::timestamptz, NULL, 'current' FROM readings"
        " WHERE meter_id = %s AND ts = %s",
        (meter_id, ts),
    ).fetchall()
    older = conn.execute(
        f"SELECT {cols}, replaced_at, replaced_by, reason FROM reading_history"
        " WHERE meter_id = %s AND ts = %s ORDER BY replaced_at DESC, id DESC",
        (meter_id, ts),
    ).fetchall()
    return [dict(zip(VERSION_COLUMNS, row, strict=True)) for row in [*current, *older]]
