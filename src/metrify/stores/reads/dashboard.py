"""What the web dashboard reads that no API route answers: the control-room figures.

Open anomalies by severity, how fresh the data is (newest reading, last ingest), the
newest readings for the live page, the edit history of a meter and the newest time a
meter or grid node has data (the default range of their pages). Every query is bounded
by an index or by a recent time window, so a page stays fast over a store of millions
of readings; region scope is applied in SQL, as the API's reads do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from metrify.stores.pools import AsyncConnection

__all__ = [
    "LIVE_COLUMNS",
    "anomaly_counts",
    "freshness",
    "history",
    "live_tail",
    "meter_page",
    "newest_node_ts",
    "newest_reading_ts",
]

#: how far back before the newest aggregated bucket the live and freshness reads look:
#: late readings of older intervals are corrections, not live data
WINDOW: Final = dt.timedelta(days=1)

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


def _meter_scope(regions: Sequence[str] | None, column: str) -> tuple[str, list[Any]]:
    if regions is None:
        return "TRUE", []
    return (
        f"{column} IN (SELECT meter_id FROM meters WHERE region = ANY(%s))",
        [list(regions)],
    )


async def anomaly_counts(
    conn: AsyncConnection, regions: Sequence[str] | None
) -> list[tuple[str, str, int]]:
    """(status, severity, incidents) of the anomalies still being worked on (open or
    acknowledged) that a reader bound to ``regions`` may see (None: all; nodes and
    stations have no region, so a region-bound reader sees only meters')."""
    params: list[Any] = []
    if regions is None:
        scope = "TRUE"
    else:
        clause, params = _meter_scope(regions, "subject_id")
        scope = f"subject_type = 'meter' AND {clause}"
    cur = await conn.execute(
        "SELECT status, severity, count(*) FROM anomalies"
        f" WHERE status IN ('open', 'acknowledged') AND {scope} GROUP BY 1, 2",
        params,
    )
    return [(str(s), str(v), int(n)) for s, v, n in await cur.fetchall()]


async def _lower_bound(conn: AsyncConnection) -> dt.datetime | None:
    """A day before the newest aggregated bucket (from the aggregates' primary key, an
    index probe); None when nothing is aggregated yet (then every reading is read)."""
    cur = await conn.execute("SELECT max(bucket) FROM agg_group_30m WHERE dim = 'fleet'")
    row = await cur.fetchone()
    newest = None if row is None else row[0]
    return None if newest is None else newest - WINDOW


async def freshness(conn: AsyncConnection, regions: Sequence[str] | None) -> dict[str, Any]:
    """The newest reading's interval start, the last time a reading was stored, and how
    long after its interval ended the newest reading was stored (the ingest lag), over
    the recent window of the readings a reader may see."""
    since = await _lower_bound(conn)
    scope, params = _meter_scope(regions, "meter_id")
    cur = await conn.execute(
        "SELECT max(ts), max(ingested_at), count(*) FILTER (WHERE quality & 1 = 0),"
        " count(*) FILTER (WHERE quality & 1 <> 0),"
        " count(*) FILTER (WHERE status = 'estimated'),"
        " count(*) FILTER (WHERE status = 'suspect')"
        f" FROM readings WHERE ts >= %s AND {scope}",
        [since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC), *params],
    )
    newest, stored, present, missing, estimated, suspect = (await cur.fetchone()) or (None,) * 6
    lag = None
    if newest is not None:
        cur = await conn.execute(
            "SELECT max(ingested_at - (ts + make_interval(secs => interval_s)))"
            f" FROM readings WHERE ts = %s AND {scope}",
            [newest, *params],
        )
        got = await cur.fetchone()
        lag = None if got is None or got[0] is None else got[0].total_seconds()
    return {
        "newest_ts": newest,
        "last_ingested_at": stored,
        "ingest_lag_s": lag,
        "window_present": int(present or 0),
        "window_missing": int(missing or 0),
        "window_estimated": int(estimated or 0),
        "window_suspect": int(suspect or 0),
    }


async def live_tail(
    conn: AsyncConnection, regions: Sequence[str] | None, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest readings by interval time (latest stored first within one time): what
    has just arrived from the field, for the live page."""
    since = await _lower_bound(conn)
    scope, params = _meter_scope(regions, "meter_id")
    cur = await conn.execute(
        f"SELECT {', '.join(LIVE_COLUMNS)} FROM readings WHERE ts >= %s AND {scope}"
        " ORDER BY ts DESC, ingested_at DESC, meter_id LIMIT %s",
        [since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC), *params, limit],
    )
    return [dict(zip(LIVE_COLUMNS, r, strict=True)) for r in await cur.fetchall()]


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
    scope, params = ("TRUE", []) if regions is None else ("region = ANY(%s)", [list(regions)])
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    cur = await conn.execute(
        f"SELECT {', '.join(METER_COLUMNS)} FROM meters"
        f" WHERE meter_id LIKE %s AND meter_id > %s AND {scope} ORDER BY meter_id LIMIT %s",
        [pattern, after or "", *params, limit],
    )
    return [dict(zip(METER_COLUMNS, r, strict=True)) for r in await cur.fetchall()]
