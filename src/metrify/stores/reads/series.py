"""Grid and weather series: raw rows of one node or station, or means per bucket.

A bucket holds the mean of each value, except precipitation (summed: rain adds up) and
grid load, whose maximum is kept beside the mean (peaks size the grid).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from metrify.stores.pools import AsyncConnection
from metrify.stores.reads.buckets import WORST, JsonRow, Resolution, as_json_rows, bucket


@dataclass(frozen=True)
class Series:
    """A measured table and the reference table its ids belong to."""

    table: str
    id_col: str
    ref_table: str
    values: tuple[str, ...]


GRID = Series(
    "grid_measurements",
    "node_id",
    "grid_nodes",
    ("load_mw", "generation_mw", "frequency_hz", "voltage_kv", "price_per_mwh"),
)
WEATHER = Series(
    "weather_observations",
    "station_id",
    "weather_stations",
    (
        "temperature_c",
        "humidity_pct",
        "wind_speed_ms",
        "wind_dir_deg",
        "pressure_hpa",
        "precipitation_mm",
        "solar_wm2",
        "cloud_cover_pct",
    ),
)


@functools.cache
def _page_sql(series: Series, step: str) -> str:
    return as_json_rows(_sql(series, step))


def _sql(series: Series, step: str) -> str:
    """Raw rows, or per bucket the mean of each value (max load, total precipitation)."""
    table, id_col, values = series.table, series.id_col, series.values
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
    start = bucket(step)
    return (
        f"SELECT {start} AS ts, {', '.join(aggs)}, count(*) AS intervals, "
        f"bit_or(quality) AS quality, {WORST} AS status FROM {table} "
        f"WHERE {id_col} = %s AND ts >= %s AND ts < %s AND {start} > %s "
        f"GROUP BY 1 ORDER BY 1 LIMIT %s"
    )


async def known(conn: AsyncConnection, series: Series, ident: str) -> bool:
    """Whether the node or station exists (a series of an unknown one is not found,
    an empty series of a known one is a page without items)."""
    cur = await conn.execute(
        f"SELECT 1 FROM {series.ref_table} WHERE {series.id_col} = %s", (ident,)
    )
    return await cur.fetchone() is not None


async def page(
    conn: AsyncConnection,
    series: Series,
    ident: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    resolution: Resolution,
    after: dt.datetime,
    limit: int,
) -> list[JsonRow]:
    """Up to ``limit`` rows or buckets in [start, end) starting after ``after``."""
    cur = await conn.execute(_page_sql(series, resolution), (ident, start, end, after, limit))
    return await cur.fetchall()
