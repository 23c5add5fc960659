"""SQL for the read endpoints: aggregation happens in PostgreSQL, never in Python.

Buckets use ``date_bin`` on UTC instants (a ``1d`` bucket is a UTC day). Sums leave
out rejected readings (a rejected value is not consumption) but every bucket counts
its readings per status and ORs their quality flags, so nothing is hidden. Pages are
keyset-paginated on the bucket start, which stays fast however long the range.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Literal

from metrify.api.problems import Problem

Resolution = Literal["raw", "15m", "1h", "1d"]
STEPS = {"15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

READING_COLUMNS = (
    "ts",
    "interval_s",
    "import_kwh",
    "export_kwh",
    "register_kwh",
    "voltage_v",
    "quality",
    "status",
    "source",
)
RAW_READINGS = (
    f"SELECT {', '.join(READING_COLUMNS)} FROM readings WHERE meter_id = %s AND ts >= %s "
    "AND ts < %s AND ts > %s ORDER BY ts LIMIT %s"
)
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
_WORST = (
    "(ARRAY['valid','estimated','suspect','rejected'])[max(CASE status WHEN 'valid' THEN 1 "
    "WHEN 'estimated' THEN 2 WHEN 'suspect' THEN 3 ELSE 4 END)]"
)


def bucket_readings_sql(step: str) -> str:
    return f"""
        SELECT date_bin(interval '{STEPS[step]}', ts, {ORIGIN}) AS bucket,
               sum(import_kwh) FILTER (WHERE status <> 'rejected'),
               sum(export_kwh) FILTER (WHERE status <> 'rejected'),
               count(*),
               count(*) FILTER (WHERE status = 'valid'),
               count(*) FILTER (WHERE status = 'estimated'),
               count(*) FILTER (WHERE status = 'suspect'),
               count(*) FILTER (WHERE status = 'rejected'),
               count(*) FILTER (WHERE import_kwh IS NULL),
               bit_or(quality),
               {_WORST}
        FROM readings
        WHERE meter_id = %s AND ts >= %s AND ts < %s
          AND date_bin(interval '{STEPS[step]}', ts, {ORIGIN}) > %s
        GROUP BY 1 ORDER BY 1 LIMIT %s
    """


LATEST = f"""
    SELECT m.region, r.*
    FROM meters m
    LEFT JOIN LATERAL (
        SELECT {", ".join(READING_COLUMNS)} FROM readings
        WHERE meter_id = m.meter_id ORDER BY ts DESC LIMIT 1
    ) r ON TRUE
    WHERE m.meter_id = %s
"""

GRID_VALUES = ("load_mw", "generation_mw", "frequency_hz", "voltage_kv", "price_per_mwh")
WEATHER_VALUES = (
    "temperature_c",
    "humidity_pct",
    "wind_speed_ms",
    "wind_dir_deg",
    "pressure_hpa",
    "precipitation_mm",
    "solar_wm2",
    "cloud_cover_pct",
)


def series_sql(table: str, id_col: str, values: tuple[str, ...], step: str) -> str:
    """Raw rows, or per bucket the mean of each value (max load, total precipitation)."""
    if step == "raw":
        interval = ", interval_s" if table == "grid_measurements" else ""
        cols = ", ".join(values)
        return (
            f"SELECT ts{interval}, {cols}, quality, status FROM {table} "
            f"WHERE {id_col} = %s AND ts >= %s AND ts < %s AND ts > %s ORDER BY ts LIMIT %s"
        )
    aggs = []
    for v in values:
        if v == "precipitation_mm":
            aggs.append(f"sum({v}) AS {v}")
        else:
            aggs.append(f"avg({v}) AS {v}")
    if "load_mw" in values:
        aggs.append("max(load_mw) AS max_load_mw")
    bucket = f"date_bin(interval '{STEPS[step]}', ts, {ORIGIN})"
    return (
        f"SELECT {bucket} AS ts, {', '.join(aggs)}, count(*) AS intervals, "
        f"bit_or(quality) AS quality, {_WORST} AS status FROM {table} "
        f"WHERE {id_col} = %s AND ts >= %s AND ts < %s AND {bucket} > %s "
        f"GROUP BY 1 ORDER BY 1 LIMIT %s"
    )


FLEET = """
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


def as_json_rows(sql: str, columns: tuple[str, ...]) -> str:
    """Each row of ``sql`` as one JSON object text, plus its ``ts`` for the cursor.

    PostgreSQL renders the JSON, so a page of hundreds of rows costs Python one join of
    byte strings instead of a dict and a datetime per value.
    """
    return f"SELECT row_to_json(t)::text, t.ts FROM ({sql}) AS t({', '.join(columns)})"


def json_page(rows: list[tuple[Any, ...]], limit: int, head: bytes) -> bytes:
    """``{<head>, "items": [...], "next_cursor": ...}`` from :func:`as_json_rows` rows."""
    more = len(rows) > limit
    page = rows[:limit]
    cursor = encode_cursor(page[-1][1]).encode() if more and page else None
    items = b",".join(str(r[0]).encode() for r in page)
    tail = b'"' + cursor + b'"' if cursor else b"null"
    return b"{" + head + b',"items":[' + items + b'],"next_cursor":' + tail + b"}"


def utc(value: dt.datetime) -> dt.datetime:
    """Naive times on the wire are UTC (DESIGN.md)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def check_range(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start, end = utc(start), utc(end)
    if end <= start:
        raise Problem(422, "'to' must be after 'from'")
    return start, end


MIN_TS = dt.datetime(1, 1, 2, tzinfo=dt.UTC)


def encode_cursor(value: Any) -> str:
    text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_ts_cursor(cursor: str | None) -> dt.datetime:
    if cursor is None:
        return MIN_TS
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return utc(dt.datetime.fromisoformat(text))
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "invalid cursor") from None


def decode_id_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "invalid cursor") from None


def row_dict(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(columns, row, strict=True))
