"""What the anomaly detectors read besides their own state.

The streaming detectors need the hourly temperatures of the meters' weather stations and
the ratings of grid nodes; the daily job needs a whole stored day: each feeder's energy
against its meters', each meter's daily use and each meter's peers. Each read is one
query returning a frame the detectors take as it is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import polars as pl
import psycopg

from metrify.contracts.anomalies import DAILY_SCHEMA
from metrify.contracts.records import TS

__all__ = [
    "daily_use",
    "feeder_energy",
    "node_ratings",
    "peer_groups",
    "temperatures",
]

Connection = psycopg.Connection[Any]


def temperatures(
    conn: Connection, stations: list[str], start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """Observed temperatures of ``stations`` in [start, end), leaving out rejected ones."""
    rows = conn.execute(
        "SELECT station_id, ts, temperature_c FROM weather_observations"
        " WHERE station_id = ANY(%s) AND ts >= %s AND ts < %s"
        " AND temperature_c IS NOT NULL AND status <> 'rejected'",
        (stations, start, end),
    ).fetchall()
    return pl.DataFrame(
        rows,
        schema={"station_id": pl.String(), "ts": TS, "temperature_c": pl.Float64()},
        orient="row",
    )


def node_ratings(conn: Connection, ids: pl.Series) -> pl.DataFrame:
    """Capacity and nominal voltage of the grid nodes ``ids`` (those registered)."""
    rows = conn.execute(
        "SELECT node_id, capacity_mw, nominal_kv FROM grid_nodes WHERE node_id = ANY(%s)",
        (ids.unique().to_list(),),
    ).fetchall()
    return pl.DataFrame(
        rows,
        schema={
            "node_id": pl.String(),
            "capacity_mw": pl.Float64(),
            "nominal_kv": pl.Float64(),
        },
        orient="row",
    )


FEEDER_ENERGY_SQL: Final = """
WITH node_energy AS (
    SELECT node_id, sum(load_mw * interval_s / 3.6) AS node_kwh, count(*) AS n
    FROM grid_measurements WHERE ts >= %(start)s AND ts < %(end)s AND load_mw IS NOT NULL
    GROUP BY node_id
), meter_energy AS (
    SELECT m.node_id, sum(r.import_kwh) AS meters_kwh, count(DISTINCT r.meter_id) AS meters
    FROM readings r JOIN meters m ON m.meter_id = r.meter_id
    WHERE r.ts >= %(start)s AND r.ts < %(end)s AND r.import_kwh IS NOT NULL
      AND r.status <> 'rejected'
    GROUP BY m.node_id
)
SELECT n.node_id, n.node_kwh, e.meters_kwh, e.meters
FROM node_energy n JOIN meter_energy e ON e.node_id = n.node_id
WHERE n.node_kwh > 0
"""


def feeder_energy(conn: Connection, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Per feeder with load and metered consumers in [start, end): the energy it carried
    (``node_kwh``), what its meters recorded (``meters_kwh``, rejected readings left out)
    and how many meters recorded it."""
    rows = conn.execute(FEEDER_ENERGY_SQL, {"start": start, "end": end}).fetchall()
    return pl.DataFrame(
        rows,
        schema={
            "node_id": pl.String(),
            "node_kwh": pl.Float64(),
            "meters_kwh": pl.Float64(),
            "meters": pl.Int64(),
        },
        orient="row",
    )


DAILY_SQL: Final = """
SELECT meter_id, (ts AT TIME ZONE 'UTC')::date AS day, sum(import_kwh) AS total,
       coalesce(sum(import_kwh) FILTER (WHERE extract(hour FROM ts AT TIME ZONE 'UTC') < 6), 0)
           AS night,
       max(import_kwh * 3600.0 / interval_s) AS peak_kw,
       min(import_kwh * 3600.0 / interval_s) AS base_kw, count(*) AS n
FROM readings
WHERE ts >= %s AND ts < %s AND quality & 1 = 0 AND status <> 'rejected'
  AND import_kwh IS NOT NULL
GROUP BY 1, 2
"""


def daily_use(conn: Connection, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Daily aggregates (:data:`~metrify.contracts.anomalies.DAILY_SCHEMA`) of every meter
    for ``start <= day < end`` (UTC days; gaps and rejected readings left out)."""
    rows = conn.execute(DAILY_SQL, (start, end)).fetchall()
    return pl.DataFrame(rows, schema=DAILY_SCHEMA, orient="row")


def peer_groups(conn: Connection) -> pl.DataFrame:
    """Each meter's peers: same commodity, tariff and region (unknowns grouped together).

    A gas or heat meter's day follows the weather, an electricity meter's its household:
    compared with each other, every cold morning would make outliers. Electricity meters
    keep the group names they had before commodities (``tariff/region``)."""
    rows = conn.execute(
        "SELECT meter_id, CASE WHEN coalesce(commodity, 'electricity') <> 'electricity'"
        " THEN commodity || '/' ELSE '' END"
        " || coalesce(tariff, '?') || '/' || coalesce(region, '?') FROM meters"
    ).fetchall()
    return pl.DataFrame(
        rows, schema={"meter_id": pl.String(), "peer_group": pl.String()}, orient="row"
    )
