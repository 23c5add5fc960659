"""What the baselines read and keep: meters with their weather station, their use and
their station's temperatures over a period, and the fitted models (``baseline_fits``,
migration 0018).

Use is read from the readings as the energy aggregates count it (every reading that is
not rejected, estimates included), streamed out with COPY; the weather from the
station's observations. Subjects are a meter, a tariff segment (``meters.tariff``, as
``metrify energy --segment``) or the fleet; only meters linked to a station can have a
weather-normalised baseline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from metrify.stores.pools import Connection
from metrify.stores.postgres import copy_out

__all__ = [
    "LinkedMeter",
    "fits",
    "last_day",
    "linked_meters",
    "save_fits",
    "temperatures",
    "usage",
]


@dataclass(frozen=True)
class LinkedMeter:
    """A meter and what its baseline needs: station, zone and reading interval."""

    meter_id: str
    station_id: str
    timezone: str
    interval_s: int


def linked_meters(
    conn: Connection,
    *,
    meter: str | None = None,
    segment: str | None = None,
    fleet: bool = False,
    default_tz: str = "UTC",
) -> tuple[list[LinkedMeter], list[str]]:
    """The subject's meters with a weather station, and those of its meters without one
    (which a baseline cannot cover). A meter's zone defaults to ``default_tz``, its
    interval to 30 minutes."""
    if meter is not None:
        where, params = "meter_id = %s", [meter]
    elif segment is not None:
        where, params = "tariff = %s", [segment]
    elif fleet:
        where, params = "status <> 'removed'", []
    else:
        raise ValueError("give a meter, a segment or the fleet")
    rows = conn.execute(
        f"SELECT meter_id, station_id, timezone, interval_s FROM meters WHERE {where}"
        " ORDER BY meter_id",
        params,
    ).fetchall()
    linked = [LinkedMeter(m, s, tz or default_tz, int(i or 1800)) for m, s, tz, i in rows if s]
    return linked, [m for m, s, _, _ in rows if not s]


def usage(
    conn: Connection, meter_ids: list[str], start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """Every counted reading of the meters in ``[start, end)``: ``meter_id``, ``ts``
    (UTC), ``kwh``."""
    with conn.cursor() as cur:
        frame = copy_out(
            cur,
            "SELECT meter_id, ts AT TIME ZONE 'UTC', import_kwh FROM readings"
            " WHERE meter_id = ANY(%s) AND ts >= %s AND ts < %s"
            " AND status <> 'rejected' AND import_kwh IS NOT NULL",
            ["meter_id", "ts", "kwh"],
            (meter_ids, start, end),
        )
    if frame is None:
        return pl.DataFrame(
            schema={"meter_id": pl.Utf8, "ts": pl.Datetime("us", "UTC"), "kwh": pl.Float64}
        )
    return frame.with_columns(
        pl.col("ts").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC"),
        pl.col("kwh").cast(pl.Float64),
    )


def temperatures(
    conn: Connection, station_ids: list[str], start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """The stations' temperatures in ``[start, end)``: ``station_id``, ``ts`` (UTC),
    ``temperature_c``."""
    with conn.cursor() as cur:
        frame = copy_out(
            cur,
            "SELECT station_id, ts AT TIME ZONE 'UTC', temperature_c FROM weather_observations"
            " WHERE station_id = ANY(%s) AND ts >= %s AND ts < %s"
            " AND temperature_c IS NOT NULL AND status <> 'rejected'",
            ["station_id", "ts", "temperature_c"],
            (station_ids, start, end),
        )
    if frame is None:
        return pl.DataFrame(
            schema={
                "station_id": pl.Utf8,
                "ts": pl.Datetime("us", "UTC"),
                "temperature_c": pl.Float64,
            }
        )
    return frame.with_columns(
        pl.col("ts").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC"),
        pl.col("temperature_c").cast(pl.Float64),
    )


def save_fits(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Store fits (each a :meth:`metrify.analytics.baselines.Fit.summary`), replacing a
    row of the same meter, model and period end."""
    if not rows:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO baseline_fits"
            " (meter_id, model, period_start, period_end, n, p, cvrmse, nmbe, params)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
            " ON CONFLICT (meter_id, model, period_end) DO UPDATE SET"
            " period_start = EXCLUDED.period_start, fitted_at = now(), n = EXCLUDED.n,"
            " p = EXCLUDED.p, cvrmse = EXCLUDED.cvrmse, nmbe = EXCLUDED.nmbe,"
            " params = EXCLUDED.params",
            [
                (
                    r["meter_id"],
                    r["model"],
                    r["from"],
                    r["to"],
                    r["n"],
                    r["p"],
                    _finite(r["cvrmse"]),
                    _finite(r["nmbe"]),
                    orjson.dumps(r["params"], option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                )
                for r in rows
            ],
        )
    return len(rows)


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


def fits(conn: Connection, meter_id: str, model: str | None = None) -> list[dict[str, Any]]:
    """The meter's stored fits, newest period first."""
    rows = conn.execute(
        "SELECT meter_id, model, period_start, period_end, fitted_at, n, p, cvrmse, nmbe,"
        " params FROM baseline_fits WHERE meter_id = %s AND (%s::text IS NULL OR model = %s)"
        " ORDER BY period_end DESC, model",
        (meter_id, model, model),
    ).fetchall()
    names = ("meter_id", "model", "from", "to", "fitted_at", "n", "p", "cvrmse", "nmbe", "params")
    out = []
    for row in rows:
        item = dict(zip(names, row, strict=True))
        for key in ("from", "to", "fitted_at"):
            item[key] = item[key].isoformat()
        out.append(item)
    return out


def last_day(conn: Connection, meter_ids: list[str]) -> dt.date | None:
    """The UTC day of the meters' newest counted reading (None without readings)."""
    row = conn.execute(
        "SELECT max(ts) FROM readings WHERE meter_id = ANY(%s) AND status <> 'rejected'",
        (meter_ids,),
    ).fetchone()
    return row[0].astimezone(dt.UTC).date() if row and row[0] else None
