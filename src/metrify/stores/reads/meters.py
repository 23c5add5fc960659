"""Meters as the unit of region scope: which region a meter is in.

Region-scoped callers may see and write only meters of their regions; these reads are
the store's half of that check (the caller decides what is allowed).
"""

from __future__ import annotations

from metrify.stores.pools import AsyncConnection, Connection


async def region_of(conn: AsyncConnection, meter_id: str) -> tuple[bool, str | None]:
    """(known, region): whether the meter exists, and its region (None: no region)."""
    cur = await conn.execute("SELECT region FROM meters WHERE meter_id = %s", (meter_id,))
    row = await cur.fetchone()
    return (False, None) if row is None else (True, row[0])


def outside_regions(
    conn: Connection, meter_ids: list[str], regions: list[str], limit: int = 5
) -> list[str]:
    """Up to ``limit`` of the known ``meter_ids`` whose region is none of ``regions``
    (or unset), in id order; meters not yet known are not listed."""
    rows = conn.execute(
        "SELECT meter_id FROM meters WHERE meter_id = ANY(%s) AND "
        "(region IS NULL OR NOT region = ANY(%s)) ORDER BY meter_id LIMIT %s",
        (meter_ids, regions, limit),
    ).fetchall()
    return [str(r[0]) for r in rows]


def unknown(conn: Connection, meter_ids: list[str], limit: int = 5) -> list[str]:
    """Up to ``limit`` of ``meter_ids`` that are not registered, in id order."""
    rows = conn.execute(
        "SELECT m.id FROM unnest(%s::text[]) AS m(id) WHERE NOT EXISTS"
        " (SELECT 1 FROM meters WHERE meter_id = m.id) ORDER BY m.id LIMIT %s",
        (meter_ids, limit),
    ).fetchall()
    return [str(r[0]) for r in rows]
