"""The daily quality report's questions: one day's interval counts per region, for the
fleet, and its worst meters, with the energy each region drew that day.

The counts are the daily scores' (``quality_daily``, :mod:`metrify.stores.quality_daily`):
each meter's own local day, so a London meter's day D is D in London time. The energy is
the 30-minute aggregates' (``agg_meter_30m``) over the same local day of each meter, so
counts and energy describe the same readings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from metrify.stores.pools import Connection

__all__ = ["NO_REGION", "day_report"]

#: the region of meters that have none (or are not registered)
NO_REGION: Final = "(none)"

_TOTALS: Final = """
    count(*) AS meters,
    sum(q.expected)::bigint AS expected,
    sum(q.present)::bigint AS present,
    sum(q.valid)::bigint AS valid,
    sum(q.estimated)::bigint AS estimated,
    sum(q.suspect)::bigint AS suspect,
    sum(q.rejected)::bigint AS rejected,
    sum(q.missing)::bigint AS missing,
    coalesce(sum(q.present)::float8 / nullif(sum(q.expected), 0), 0) AS completeness,
    round(avg(q.score)::numeric, 1)::float8 AS score,
    coalesce(sum(e.import_kwh), 0)::float8 AS import_kwh
"""

_DAY: Final = f"""
WITH q AS (
    SELECT q.*, coalesce(m.region, '{NO_REGION}') AS region,
           coalesce(m.timezone, 'UTC') AS tz
    FROM quality_daily q LEFT JOIN meters m USING (meter_id)
    WHERE q.day = %(day)s
), e AS (
    SELECT q.meter_id, sum(a.import_kwh) AS import_kwh
    FROM q JOIN agg_meter_30m a ON a.meter_id = q.meter_id
         AND a.bucket >= (%(day)s::date::timestamp AT TIME ZONE q.tz)
         AND a.bucket < ((%(day)s::date + 1)::timestamp AT TIME ZONE q.tz)
    GROUP BY q.meter_id
)
"""


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def day_report(conn: Connection, day: dt.date, worst: int = 10) -> dict[str, Any]:
    """The report of local ``day``: ``fleet`` totals, ``regions`` (by name) and the
    ``worst`` meters (lowest score, then completeness). Counts are of intervals:
    ``missing`` are those owed but absent or gap rows, estimated or not; ``estimated``
    those the estimation filled. Empty lists and zero counts when nothing is scored."""
    params = {"day": day, "worst": worst}
    fleet = _rows(conn, f"{_DAY} SELECT {_TOTALS} FROM q LEFT JOIN e USING (meter_id)", params)
    regions = _rows(
        conn,
        f"{_DAY} SELECT q.region, {_TOTALS} FROM q LEFT JOIN e USING (meter_id)"
        " GROUP BY q.region ORDER BY q.region",
        params,
    )
    meters = _rows(
        conn,
        f"""{_DAY}
        SELECT q.meter_id, q.region, q.expected, q.present, q.valid, q.estimated, q.suspect,
               q.rejected, q.missing, q.completeness, q.score,
               coalesce(e.import_kwh, 0)::float8 AS import_kwh
        FROM q LEFT JOIN e USING (meter_id)
        ORDER BY q.score, q.completeness, q.meter_id LIMIT %(worst)s
        """,
        params,
    )
    totals = fleet[0]
    for key in ("expected", "present", "valid", "estimated", "suspect", "rejected", "missing"):
        totals[key] = totals[key] or 0
    return {"day": day.isoformat(), "fleet": totals, "regions": regions, "worst": meters}
