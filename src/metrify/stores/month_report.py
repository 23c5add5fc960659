"""What the monthly report reads: a month's energy by segment, its daily quality counts,
its anomalies by outcome and the grid nodes measured in it.

Energy comes from the 30-minute meter aggregates (:mod:`metrify.stores.aggregates`,
refreshed first where writes marked them), the same buckets the energy answers use:
rejected readings count for nothing, estimates count. The segment is the meter's tariff,
as in the aggregates' ``segment`` dimension; the region filter is applied to the meter
rows here because the group aggregates hold no region-by-segment cross.
Quality is :mod:`metrify.stores.quality_daily`'s rows (local days), anomalies are the
``anomalies`` table seen as :mod:`metrify.stores.anomalies` scopes a region-bound reader
(meters of the region only), and a node's series is
:func:`metrify.stores.grid_insight.node_series`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import polars as pl

from metrify.stores import aggregates, quality_daily
from metrify.stores.pools import Connection

__all__ = [
    "NO_SEGMENT",
    "anomaly_counts",
    "anomaly_top",
    "known_region",
    "quality_days",
    "report_nodes",
    "segment_buckets",
    "segment_meters",
    "usual_zone",
]

#: the segment of meters registered without a tariff
NO_SEGMENT: Final = "(none)"

_REGION: Final = "(%(region)s::text IS NULL OR m.region = %(region)s)"


def known_region(conn: Connection, region: str) -> bool:
    """Whether any registered meter is in ``region``."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM meters WHERE region = %s)", (region,))
    found = row.fetchone()
    return bool(found and found[0])


def usual_zone(conn: Connection, region: str | None) -> str | None:
    """The time zone most meters (of ``region``) are registered with, None when none
    has one: a month is the meters' own calendar month."""
    row = conn.execute(
        "SELECT m.timezone FROM meters m WHERE m.timezone IS NOT NULL AND"
        f" {_REGION} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        {"region": region},
    ).fetchone()
    return None if row is None else str(row[0])


def segment_buckets(
    conn: Connection, start: dt.datetime, end: dt.datetime, region: str | None
) -> pl.DataFrame:
    """Per segment and 30-minute UTC bucket in [start, end): ``segment``, ``bucket``,
    ``meters`` (with a row in the bucket), ``kwh`` (not rejected) and ``kw`` (the
    segment's coincident demand over the half-hour). Refreshes the aggregates first.

    For the whole fleet the group aggregates answer (a row per segment and bucket:
    a month of a million meters reads a few thousand rows); meters without a tariff,
    which no segment group holds, are the fleet's bucket less its segments'. Electricity
    meters only: a tariff's kWh is not summed with gas, heat or water (migration 0021). A region
    has no group of its own per segment, so its meters' buckets are summed here."""
    if aggregates.pending(conn):
        aggregates.refresh(conn)
    params = {"none": NO_SEGMENT, "start": start, "end": end, "region": region}
    if region is None:
        query = """
            SELECT key, bucket, meters, import_kwh FROM agg_group_30m
            WHERE dim = 'segment' AND commodity = 'electricity'
              AND bucket >= %(start)s AND bucket < %(end)s
            UNION ALL
            SELECT %(none)s, f.bucket, f.meters - coalesce(sum(s.meters), 0),
                   f.import_kwh - coalesce(sum(s.import_kwh), 0)
            FROM agg_group_30m f
            LEFT JOIN agg_group_30m s ON s.dim = 'segment' AND s.bucket = f.bucket
                AND s.commodity = 'electricity'
            WHERE f.dim = 'fleet' AND f.key = 'all' AND f.commodity = 'electricity'
              AND f.bucket >= %(start)s AND f.bucket < %(end)s
            GROUP BY f.bucket, f.meters, f.import_kwh
            HAVING f.meters > coalesce(sum(s.meters), 0)
            ORDER BY 1, 2
        """
    else:
        query = f"""
            SELECT coalesce(m.tariff, %(none)s) AS segment, a.bucket, count(*) AS meters,
                   sum(a.import_kwh)::float8 AS kwh
            FROM agg_meter_30m a JOIN meters m ON m.meter_id = a.meter_id
            WHERE a.bucket >= %(start)s AND a.bucket < %(end)s AND {_REGION}
              AND coalesce(m.commodity, 'electricity') = 'electricity'
            GROUP BY 1, 2 ORDER BY 1, 2
        """
    rows = conn.execute(query, params).fetchall()
    schema: dict[str, Any] = {
        "segment": pl.String,
        "bucket": pl.Datetime("us", "UTC"),
        "meters": pl.Int64,
        "kwh": pl.Float64,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(kw=pl.col("kwh") / 0.5)


def segment_meters(
    conn: Connection, first: dt.date, last: dt.date, region: str | None
) -> dict[str, int]:
    """Per segment, how many meters (of ``region``) had a reading on any of local days
    ``first`` to ``last`` inclusive: from the daily quality rows (one per meter and day),
    not from a month of half-hours."""
    quality_daily.refresh(conn)
    rows = conn.execute(
        f"""
        SELECT coalesce(m.tariff, %(none)s), count(DISTINCT q.meter_id)
        FROM quality_daily q JOIN meters m ON m.meter_id = q.meter_id
        WHERE q.day >= %(first)s AND q.day <= %(last)s AND q.present > 0 AND {_REGION}
        GROUP BY 1
        """,
        {"none": NO_SEGMENT, "first": first, "last": last, "region": region},
    ).fetchall()
    return {str(s): int(n) for s, n in rows}


def quality_days(
    conn: Connection, first: dt.date, last: dt.date, region: str | None
) -> pl.DataFrame:
    """The daily quality counts summed over the meters (of ``region``) for local days
    ``first`` to ``last`` inclusive: ``day``, ``meters``, ``expected``, ``present``,
    ``valid``, ``estimated``, ``suspect``, ``rejected``, ``missing``, ``score`` (mean)."""
    counts = ("expected", "present", "valid", "estimated", "suspect", "rejected", "missing")
    quality_daily.refresh(conn)  # days that stream writes or corrections marked
    rows = conn.execute(
        f"""
        SELECT q.day, count(*), {", ".join(f"sum(q.{c})" for c in counts)},
               avg(q.score)::float8
        FROM quality_daily q JOIN meters m ON m.meter_id = q.meter_id
        WHERE q.day >= %(first)s AND q.day <= %(last)s AND {_REGION}
        GROUP BY 1 ORDER BY 1
        """,
        {"first": first, "last": last, "region": region},
    ).fetchall()
    schema: dict[str, Any] = {
        "day": pl.Date,
        "meters": pl.Int64,
        **dict.fromkeys(counts, pl.Int64),
        "score": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _anomaly_where(region: str | None) -> str:
    """Anomalies whose span overlaps the month; with a region, only its meters' (nodes
    and stations have no region: the rule of :mod:`metrify.stores.anomalies`)."""
    scope = (
        " AND a.subject_type = 'meter' AND a.subject_id IN"
        " (SELECT meter_id FROM meters WHERE region = %(region)s)"
        if region is not None
        else ""
    )
    return f"a.ts_start < %(end)s AND a.ts_end >= %(start)s{scope}"


def anomaly_counts(
    conn: Connection, start: dt.datetime, end: dt.datetime, region: str | None
) -> pl.DataFrame:
    """Anomalies overlapping [start, end) counted by ``kind``, ``severity`` and
    ``status`` (the outcome: open, acknowledged, resolved, false_positive)."""
    rows = conn.execute(
        "SELECT a.kind, a.severity, a.status, count(*) FROM anomalies a"
        f" WHERE {_anomaly_where(region)} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        {"start": start, "end": end, "region": region},
    ).fetchall()
    schema: dict[str, Any] = {
        "kind": pl.String,
        "severity": pl.String,
        "status": pl.String,
        "count": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def anomaly_top(
    conn: Connection, start: dt.datetime, end: dt.datetime, region: str | None, limit: int
) -> list[dict[str, Any]]:
    """The ``limit`` worst anomalies overlapping [start, end): highest severity, then
    score, then the earliest."""
    cols = ("id", "kind", "subject_type", "subject_id", "ts_start", "ts_end", "severity")
    rows = conn.execute(
        f"SELECT {', '.join(f'a.{c}' for c in cols)}, a.score, a.status FROM anomalies a"
        f" WHERE {_anomaly_where(region)}"
        " ORDER BY array_position(ARRAY['critical','high','medium','low','info'], a.severity),"
        " a.score DESC NULLS LAST, a.ts_start, a.id LIMIT %(limit)s",
        {"start": start, "end": end, "region": region, "limit": limit},
    ).fetchall()
    return [dict(zip((*cols, "score", "status"), r, strict=True)) for r in rows]


def report_nodes(
    conn: Connection, start: dt.datetime, end: dt.datetime, region: str | None
) -> list[dict[str, Any]]:
    """The grid nodes measured in [start, end) (``node_id``, ``kind``, ``capacity_mw``),
    by id; with a region, the nodes its meters are registered to and the nodes above
    those (a substation carries its feeders' meters)."""
    above = (
        """
        AND g.node_id IN (
            WITH RECURSIVE up(node_id) AS (
                SELECT DISTINCT node_id FROM meters WHERE region = %(region)s
                    AND node_id IS NOT NULL
                UNION
                SELECT n.parent_id FROM grid_nodes n JOIN up u ON n.node_id = u.node_id
                WHERE n.parent_id IS NOT NULL
            ) SELECT node_id FROM up)
        """
        if region is not None
        else ""
    )
    rows = conn.execute(
        "SELECT g.node_id, n.kind, n.capacity_mw FROM ("
        " SELECT DISTINCT node_id FROM grid_measurements"
        " WHERE ts >= %(start)s AND ts < %(end)s AND status <> 'rejected') g"
        f" LEFT JOIN grid_nodes n ON n.node_id = g.node_id WHERE TRUE {above}"
        " ORDER BY g.node_id",
        {"start": start, "end": end, "region": region},
    ).fetchall()
    return [{"node_id": r[0], "kind": r[1], "capacity_mw": r[2]} for r in rows]
