"""Daily quality scores of a meter, and whether any are waiting to be re-scored.

Scores are per local day of the meter. Ingests may leave the re-scoring to a later
refresh, marking the meter-days in ``quality_dirty``; a reader that wants its own
writes checks :func:`marked` first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from metrify.stores.pools import AsyncConnection

DAY_COLUMNS = (
    "day",
    "expected",
    "present",
    "valid",
    "estimated",
    "suspect",
    "rejected",
    "missing",
    "completeness",
    "score",
)


async def days(
    conn: AsyncConnection, meter_id: str, first: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """Scored days in [first, end) in order, at most ten years of them."""
    cur = await conn.execute(
        f"SELECT {', '.join(DAY_COLUMNS)} FROM quality_daily WHERE meter_id = %s AND day >= %s "
        "AND day < %s ORDER BY day LIMIT 3660",
        (meter_id, first, end),
    )
    return [dict(zip(DAY_COLUMNS, r, strict=True)) for r in await cur.fetchall()]


async def marked(conn: AsyncConnection, meter_id: str | None = None) -> bool:
    """Whether days of ``meter_id`` (None: of any meter) wait to be re-scored."""
    where, params = ("WHERE meter_id = %s", (meter_id,)) if meter_id else ("", ())
    cur = await conn.execute(f"SELECT EXISTS (SELECT 1 FROM quality_dirty {where})", params)
    row = await cur.fetchone()
    return row is not None and bool(row[0])
