"""What grid insight reads: a node's rating, its measured series, the meters below it
and their readings, and the meters of a tariff.

A node's meters are those registered to it or to any node below it (``parent_id``), so
a substation's analysis covers its feeders' meters. Rejected rows are left out, as
every reader of measured values does; estimated readings stay in, marked by ``status``.
Large reads stream out with COPY (a year of a feeder's meters is millions of rows) and
come back as typed Polars frames; times travel as epoch microseconds, so the session's
time zone cannot change them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import polars as pl

from metrify.stores.pools import Connection
from metrify.stores.postgres import copy_out

__all__ = [
    "NODE_SERIES_SCHEMA",
    "READINGS_SCHEMA",
    "node",
    "node_meters",
    "node_series",
    "readings",
    "tariff_meters",
]

UTC_US: Final = pl.Datetime("us", "UTC")
NODE_SERIES_SCHEMA: Final = {
    "ts": UTC_US,
    "interval_s": pl.Int32(),
    "load_mw": pl.Float64(),
    "voltage_kv": pl.Float64(),
    "frequency_hz": pl.Float64(),
}
READINGS_SCHEMA: Final = {
    "meter_id": pl.String(),
    "ts": UTC_US,
    "interval_s": pl.Int32(),
    "import_kwh": pl.Float64(),
    "voltage_v": pl.Float64(),
    "status": pl.String(),
}
METERS_SCHEMA: Final = {
    "meter_id": pl.String(),
    "node_id": pl.String(),
    "interval_s": pl.Int32(),
    "tariff": pl.String(),
    "timezone": pl.String(),
    "nominal_voltage_v": pl.Float64(),
}

_BELOW: Final = """
WITH RECURSIVE below(node_id) AS (
    SELECT %s::text
    UNION
    SELECT n.node_id FROM grid_nodes n JOIN below b ON n.parent_id = b.node_id
)
"""


def node(conn: Connection, node_id: str) -> dict[str, Any] | None:
    """The node's ``node_id``, ``kind``, ``name``, ``capacity_mw``, ``nominal_kv``, or
    None when it is not registered."""
    cols = ("node_id", "kind", "name", "capacity_mw", "nominal_kv")
    row = conn.execute(
        f"SELECT {', '.join(cols)} FROM grid_nodes WHERE node_id = %s", (node_id,)
    ).fetchone()
    return None if row is None else dict(zip(cols, row, strict=True))


def _frame(
    conn: Connection, query: str, schema: dict[str, Any], params: tuple[object, ...]
) -> pl.DataFrame:
    with conn.cursor() as cur:
        raw = copy_out(cur, query, list(schema), params)
    if raw is None:
        return pl.DataFrame(schema=schema)
    casts = []
    for name, dtype in schema.items():
        if dtype == UTC_US:
            casts.append(
                pl.col(name).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
            )
        else:
            casts.append(pl.col(name).cast(dtype))
    return raw.select(casts)


def _epoch(col: str) -> str:
    return f"(extract(epoch FROM {col}) * 1000000)::bigint"


def node_series(
    conn: Connection, node_id: str, start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """The node's measured rows in [start, end) (not rejected), in time order."""
    return _frame(
        conn,
        f"SELECT {_epoch('ts')}, interval_s, load_mw, voltage_kv, frequency_hz"
        " FROM grid_measurements WHERE node_id = %s AND ts >= %s AND ts < %s"
        " AND status <> 'rejected' ORDER BY ts",
        NODE_SERIES_SCHEMA,
        (node_id, start, end),
    )


def node_meters(conn: Connection, node_id: str) -> pl.DataFrame:
    """The meters registered to the node or to a node below it (not removed)."""
    return _frame(
        conn,
        _BELOW + "SELECT m.meter_id, m.node_id, m.interval_s, m.tariff, m.timezone,"
        " m.nominal_voltage_v"
        " FROM meters m JOIN below b ON m.node_id = b.node_id"
        " WHERE m.status <> 'removed' ORDER BY m.meter_id",
        METERS_SCHEMA,
        (node_id,),
    )


def tariff_meters(conn: Connection, tariffs: list[str]) -> pl.DataFrame:
    """The meters on any of ``tariffs`` (compared case-insensitively), fleet-wide."""
    return _frame(
        conn,
        "SELECT meter_id, node_id, interval_s, tariff, timezone, nominal_voltage_v FROM meters"
        " WHERE lower(tariff) = ANY(%s) AND status <> 'removed' ORDER BY meter_id",
        METERS_SCHEMA,
        ([t.lower() for t in tariffs],),
    )


def readings(
    conn: Connection,
    meter_ids: list[str],
    start: dt.datetime,
    end: dt.datetime,
    *,
    voltage_only: bool = False,
) -> pl.DataFrame:
    """The readings of ``meter_ids`` in [start, end) that are not rejected, gap rows
    included (their ``import_kwh`` is null: they count as missing). ``voltage_only``
    keeps the rows that carry a voltage: most meters send none, and a year of a
    feeder's readings is millions of rows to leave in the database."""
    if not meter_ids:
        return pl.DataFrame(schema=READINGS_SCHEMA)
    extra = " AND voltage_v IS NOT NULL" if voltage_only else ""
    return _frame(
        conn,
        f"SELECT meter_id, {_epoch('ts')}, interval_s, import_kwh, voltage_v, status"
        " FROM readings WHERE meter_id = ANY(%s) AND ts >= %s AND ts < %s"
        f" AND status <> 'rejected'{extra}",
        READINGS_SCHEMA,
        (meter_ids, start, end),
    )
