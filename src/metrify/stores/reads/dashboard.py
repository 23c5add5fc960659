"""What the web dashboard reads that no API route answers: the control-room figures.

Open anomalies by severity, how fresh the data is (newest reading, last ingest, lag),
completeness per region from the 30-minute aggregates, the newest readings for the live
page, the edit history of a meter and the newest time a meter or grid node has data
(the default range of their pages). Every query follows an index (primary keys, the
aggregates), never a scan of a window of raw readings: readings loaded meter by meter
lie in no time order on disk, where a BRIN range reads the whole partition. Region
scope is applied in SQL, as the API's reads do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from metrify.stores.pools import AsyncConnection

__all__ = [
    "LIVE_COLUMNS",
    "REGION_COLUMNS",
    "anomaly_counts",
    "completeness",
    "history",
    "live_tail",
    "meter_page",
    "newest_node_ts",
    "newest_reading_ts",
    "regions_summary",
]

LIVE_COLUMNS: Final = (
    "meter_id",
    "ts",
    "import_kwh",
    "quality",
    "status",
    "source",
    "ingested_at",
)
HISTORY_COLUMNS: Final = (
    "ts",
    "import_kwh",
    "quality",
    "status",
    "source",
    "ingested_at",
    "replaced_at",
    "replaced_by",
    "reason",
)
REGION_COLUMNS: Final = (
    "region",
    "meters",
    "present",
    "missing",
    "estimated",
    "suspect",
    "rejected",
    "import_kwh",
    "mean_quality_score",
)


def _in_regions(regions: Sequence[str] | None, column: str) -> tuple[str, list[Any]]:
    """A condition on ``column`` (a region) for a reader bound to ``regions``."""
    if regions is None:
        return "TRUE", []
    return f"{column} = ANY(%s)", [list(regions)]


async def anomaly_counts(
    conn: AsyncConnection, regions: Sequence[str] | None
) -> list[tuple[str, str, int]]:
    """(status, severity, incidents) of the anomalies still being worked on (open or
    acknowledged) that a reader bound to ``regions`` may see (None: all; nodes and
    stations have no region, so a region-bound reader sees only meters')."""
    params: list[Any] = []
    scope = "TRUE"
    if regions is not None:
        scope = (
            "subject_type = 'meter' AND subject_id IN"
            " (SELECT meter_id FROM meters WHERE region = ANY(%s))"
        )
        params = [list(regions)]
    cur = await conn.execute(
        "SELECT status, severity, count(*) FROM anomalies"
        f" WHERE status IN ('open', 'acknowledged') AND {scope} GROUP BY 1, 2",
        params,
    )
    return [(str(s), str(v), int(n)) for s, v, n in await cur.fetchall()]


_NEWEST_PER_METER: Final = """
    WITH newest AS (
        SELECT m.meter_id, r.*
        FROM meters m
        CROSS JOIN LATERAL (
            SELECT ts, interval_s, import_kwh, quality, status, source, ingested_at
            FROM readings WHERE readings.meter_id = m.meter_id ORDER BY ts DESC LIMIT 1
        ) r
        WHERE {scope}
    )
    SELECT {columns}, interval_s, max(ingested_at) OVER (), count(*) OVER ()
    FROM newest ORDER BY ts DESC, ingested_at DESC, meter_id LIMIT %s
"""


async def live_tail(
    conn: AsyncConnection, regions: Sequence[str] | None, limit: int = 20
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The newest reading of each meter in scope, newest first (``limit`` of them), and
    what they tell of freshness: the newest interval, the last time one of them was
    stored, how long after its interval ended the newest reading was stored (the ingest
    lag), and how many meters have any reading.

    One index probe per meter (its newest reading, by its primary key): the cost
    follows the size of the fleet, not the number of readings stored.
    """
    scope, params = _in_regions(regions, "m.region")
    cur = await conn.execute(
        _NEWEST_PER_METER.format(scope=scope, columns=", ".join(LIVE_COLUMNS)),
        [*params, limit],
    )
    rows = await cur.fetchall()
    width = len(LIVE_COLUMNS)
    tail = [dict(zip(LIVE_COLUMNS, r[:width], strict=True)) for r in rows]
    fresh: dict[str, Any] = {
        "newest_ts": None,
        "last_ingested_at": None,
        "ingest_lag_s": None,
        "meters_reporting": 0,
    }
    if rows:
        first = rows[0]
        ts, ingested, interval_s = first[1], first[6], first[width]
        fresh = {
            "newest_ts": ts,
            "last_ingested_at": first[width + 1],
            "ingest_lag_s": (ingested - ts).total_seconds() - interval_s,
            "meters_reporting": int(first[width + 2]),
        }
    return tail, fresh


#: the group rows whose energy is kWh of electricity (see migration 0021)
_POWER = "commodity = 'electricity'"


async def completeness(
    conn: AsyncConnection, regions: Sequence[str] | None, days: int = 1
) -> dict[str, Any]:
    """Interval counts by kind (present, missing, estimated, suspect, rejected) and the
    energy over the last ``days`` of aggregated data of the fleet or the reader's
    regions, and the energy of the newest half hour (its mean demand is twice that, in
    kW), from the 30-minute aggregates (their primary key): the overview's cards. Counts
    are of every meter; energy of electricity meters (the groups keep each commodity
    apart, and water m³ is no kWh)."""
    if regions is None:
        where, params = "dim = 'fleet'", []
    else:
        where, params = "dim = 'region' AND key = ANY(%s)", [list(regions)]
    cur = await conn.execute(
        f"""
        WITH g AS (SELECT * FROM agg_group_30m WHERE {where}),
             newest AS (SELECT max(bucket) AS b FROM g)
        SELECT (SELECT b FROM newest), coalesce(sum(n_present), 0),
               coalesce(sum(n_missing), 0), coalesce(sum(n_estimated), 0),
               coalesce(sum(n_suspect), 0), coalesce(sum(n_rejected), 0),
               sum(import_kwh) FILTER (WHERE bucket = (SELECT b FROM newest) AND {_POWER}),
               sum(import_kwh) FILTER (WHERE {_POWER})
        FROM g WHERE bucket > (SELECT b FROM newest) - make_interval(days => %s)
        """,
        [*params, days],
    )
    row = await cur.fetchone()
    names = (
        "newest_bucket",
        "present",
        "missing",
        "estimated",
        "suspect",
        "rejected",
        "newest_kwh",
        "window_kwh",
    )
    return dict(zip(names, row or (None, 0, 0, 0, 0, 0, None, None), strict=True))


async def regions_summary(
    conn: AsyncConnection, regions: Sequence[str] | None, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Per region in scope over [start, end) (:data:`REGION_COLUMNS`): meters, interval
    counts by kind and energy from the 30-minute aggregates, and the mean daily quality
    score; regions in name order. The overview's table, without reading raw readings."""
    scope, params = _in_regions(regions, "region")
    cur = await conn.execute(
        f"""
        WITH scope AS (SELECT region, count(*) AS meters FROM meters
                       WHERE region IS NOT NULL AND {scope} GROUP BY region),
        agg AS (
            SELECT key AS region, sum(import_kwh) FILTER (WHERE {_POWER}) AS import_kwh,
                   sum(n_present) AS present,
                   sum(n_missing) AS missing, sum(n_estimated) AS estimated,
                   sum(n_suspect) AS suspect, sum(n_rejected) AS rejected
            FROM agg_group_30m
            WHERE dim = 'region' AND key IN (SELECT region FROM scope)
              AND bucket >= %s AND bucket < %s
            GROUP BY key
        ), score AS (
            SELECT m.region, avg(q.score) AS score
            FROM quality_daily q JOIN meters m USING (meter_id)
            WHERE q.day >= %s::date AND q.day <= %s::date
              AND m.region IN (SELECT region FROM scope)
            GROUP BY m.region
        )
        SELECT s.region, s.meters, coalesce(a.present, 0), coalesce(a.missing, 0),
               coalesce(a.estimated, 0), coalesce(a.suspect, 0), coalesce(a.rejected, 0),
               a.import_kwh, sc.score
        FROM scope s LEFT JOIN agg a USING (region) LEFT JOIN score sc USING (region)
        ORDER BY s.region
        """,
        [*params, start, end, start, end],
    )
    return [dict(zip(REGION_COLUMNS, r, strict=True)) for r in await cur.fetchall()]


async def history(
    conn: AsyncConnection,
    meter_id: str,
    start: dt.datetime,
    end: dt.datetime,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Replaced versions of the meter's readings in [start, end), most recently
    replaced first: what was there before each correction, estimate or edit, and why."""
    cur = await conn.execute(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM reading_history"
        " WHERE meter_id = %s AND ts >= %s AND ts < %s"
        " ORDER BY replaced_at DESC, ts DESC LIMIT %s",
        (meter_id, start, end, limit),
    )
    return [dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in await cur.fetchall()]


async def newest_reading_ts(conn: AsyncConnection, meter_id: str) -> dt.datetime | None:
    """The meter's newest reading time (its primary key, read backwards)."""
    cur = await conn.execute("SELECT max(ts) FROM readings WHERE meter_id = %s", (meter_id,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def newest_node_ts(conn: AsyncConnection, node_id: str) -> dt.datetime | None:
    """The node's newest measurement time (its primary key, read backwards)."""
    cur = await conn.execute("SELECT max(ts) FROM grid_measurements WHERE node_id = %s", (node_id,))
    row = await cur.fetchone()
    return None if row is None else row[0]


METER_COLUMNS: Final = ("meter_id", "region", "node_id", "tariff", "interval_s", "status")


async def meter_page(
    conn: AsyncConnection,
    *,
    prefix: str,
    after: str | None,
    regions: Sequence[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Meters whose id starts with ``prefix``, after ``after``, in id order, of the
    reader's regions (None: all): the meter list's page (the primary key's order)."""
    scope, params = _in_regions(regions, "region")
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    cur = await conn.execute(
        f"SELECT {', '.join(METER_COLUMNS)} FROM meters"
        f" WHERE meter_id LIKE %s AND meter_id > %s AND {scope} ORDER BY meter_id LIMIT %s",
        [pattern, after or "", *params, limit],
    )
    return [dict(zip(METER_COLUMNS, r, strict=True)) for r in await cur.fetchall()]
