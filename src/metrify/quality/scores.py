"""Daily quality scores rolled up per feeder and for the fleet.

``quality_daily`` holds one row per meter per local day (written by the store after each
batch); roll-ups are computed when asked, so they always agree with the meter rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg


def _rows(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def quality_report(
    conn: psycopg.Connection[Any], day: dt.date | None, limit: int = 10
) -> dict[str, Any] | None:
    """Fleet summary, per-feeder roll-up and the worst meters for ``day`` (default latest)."""
    if day is None:
        row = conn.execute("SELECT max(day) FROM quality_daily").fetchone()
        if row is None or row[0] is None:
            return None
        day = row[0]
    totals = """
        count(*) AS meters,
        coalesce(sum(present)::float8 / nullif(sum(expected), 0), 0) AS completeness,
        coalesce(avg(score), 0)::float8 AS score,
        coalesce(sum(valid)::float8 / nullif(sum(expected), 0), 0) AS valid_share,
        coalesce(sum(estimated)::float8 / nullif(sum(expected), 0), 0) AS estimated_share,
        coalesce(sum(suspect)::float8 / nullif(sum(expected), 0), 0) AS suspect_share
    """
    with conn.cursor() as cur:
        cur.execute(f"SELECT {totals} FROM quality_daily WHERE day = %s", (day,))
        fleet = _rows(cur)[0]
        if not fleet["meters"]:
            return None
        cur.execute(
            f"SELECT coalesce(m.node_id, '(none)') AS feeder, {totals} FROM quality_daily q"
            " LEFT JOIN meters m USING (meter_id) WHERE q.day = %s GROUP BY 1 ORDER BY score, 1",
            (day,),
        )
        feeders = _rows(cur)
        cur.execute(
            "SELECT meter_id, expected, present, valid, estimated, suspect, rejected, missing,"
            " completeness, score FROM quality_daily WHERE day = %s"
            " ORDER BY score, completeness, meter_id LIMIT %s",
            (day, limit),
        )
        worst = _rows(cur)
    return {"day": day.isoformat(), "fleet": fleet, "feeders": feeders, "worst": worst}
