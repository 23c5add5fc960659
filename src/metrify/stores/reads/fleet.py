"""The fleet per region: meters, how many reported, energy, statuses, mean score.

One statement: PostgreSQL aggregates the readings and the daily scores of the regions
in scope, and regions without readings still appear with their meter count.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from metrify.stores.pools import AsyncConnection, Connection

_SUMMARY = """
    WITH scope AS (
        SELECT meter_id, region FROM meters
        WHERE %(all)s OR region = ANY(%(regions)s)
    ), agg AS (
        SELECT s.region, count(DISTINCT r.meter_id) AS reporting,
               count(*) FILTER (WHERE r.quality & 1 = 0) AS readings,
               count(*) FILTER (WHERE r.quality & 1 <> 0) AS missing,
               sum(r.import_kwh) FILTER (WHERE r.status <> 'rejected') AS import_kwh,
               count(*) FILTER (WHERE r.status = 'valid') AS valid,
               count(*) FILTER (WHERE r.status = 'estimated') AS estimated,
               count(*) FILTER (WHERE r.status = 'suspect') AS suspect,
               count(*) FILTER (WHERE r.status = 'rejected') AS rejected
        FROM readings r JOIN scope s USING (meter_id)
        WHERE r.ts >= %(start)s AND r.ts < %(end)s
        GROUP BY s.region
    ), score AS (
        SELECT s.region, avg(q.score) AS score
        FROM quality_daily q JOIN scope s USING (meter_id)
        WHERE q.day >= %(start)s::date AND q.day < %(end)s::date
        GROUP BY s.region
    ), meters_per AS (
        SELECT region, count(*) AS meters FROM scope GROUP BY region
    )
    SELECT m.region, m.meters, coalesce(a.reporting, 0), coalesce(a.readings, 0),
           coalesce(a.missing, 0), a.import_kwh,
           coalesce(a.valid, 0), coalesce(a.estimated, 0), coalesce(a.suspect, 0),
           coalesce(a.rejected, 0), sc.score
    FROM meters_per m
    LEFT JOIN agg a ON a.region IS NOT DISTINCT FROM m.region
    LEFT JOIN score sc ON sc.region IS NOT DISTINCT FROM m.region
    WHERE %(region)s::text IS NULL OR m.region = %(region)s::text
    ORDER BY m.region NULLS LAST
"""
REGION_COLUMNS = (
    "region",
    "meters",
    "reporting_meters",
    "readings",
    "missing",
    "import_kwh",
    "valid",
    "estimated",
    "suspect",
    "rejected",
    "mean_quality_score",
)


async def summary(
    conn: AsyncConnection,
    start: dt.datetime,
    end: dt.datetime,
    *,
    regions: tuple[str, ...] | None,
    region: str | None = None,
) -> list[dict[str, Any]]:
    """Per region (:data:`REGION_COLUMNS`) over [start, end), of the meters in
    ``regions`` (None: every meter), only ``region`` if given; regions in name order,
    meters without a region last."""
    cur = await conn.execute(
        _SUMMARY,
        {
            "all": regions is None,
            "regions": list(regions or ()),
            "start": start,
            "end": end,
            "region": region,
        },
    )
    return [dict(zip(REGION_COLUMNS, r, strict=True)) for r in await cur.fetchall()]


#: what :func:`totals` returns, in order
TOTAL_COLUMNS = ("readings", "meters", "first_ts", "last_ts", "import_kwh", "grid", "quarantined")


def totals(conn: Connection) -> dict[str, Any]:
    """Everything stored, counted once: what a demo or a first load shows its user.

    A whole-table scan, so it is for small stores and summaries, never a request path."""
    row = conn.execute(
        """
        SELECT (SELECT count(*) FROM readings), (SELECT count(DISTINCT meter_id) FROM readings),
               (SELECT min(ts) FROM readings), (SELECT max(ts) FROM readings),
               (SELECT round(sum(import_kwh)::numeric, 1) FROM readings),
               (SELECT count(*) FROM grid_measurements), (SELECT count(*) FROM quarantine)
        """
    ).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    return dict(zip(TOTAL_COLUMNS, row, strict=True))
