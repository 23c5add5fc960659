"""The history of a forecast subject as a regular series ``(ts, value)``, and its weather.

A subject is named the way the energy aggregates name it (:mod:`metrify.stores.aggregates`):
a meter, a grid node, a region, a tariff segment or the fleet. What its history is:

* a **meter**: its energy per 30-minute UTC bucket (kWh) from ``agg_meter_30m``, i.e. the
  current version of every reading that is not rejected, estimates included;
* a **node** with measurements of its own (a feeder's SCADA, or a national demand series
  loaded with ``metrify ingest grid``): the mean ``load_mw`` per 30-minute bucket (MW),
  rejected measurements left out; a node without measurements: the sum of its meters'
  energy per bucket (kWh) from ``agg_group_30m``;
* a **region**, a **segment** (tariff) or the **fleet**: the sum of its meters per bucket
  (kWh) from ``agg_group_30m``, electricity meters only (gas, heat and water are summed
  apart there, migration 0021).

Buckets with no usable value (only gap rows not estimated, or only rejected readings)
are left out rather than read as zero consumption: a forecaster must not learn that a
meter's outage was a night of no demand.

Weather is that of the station linked to the meter, or for a group the station most of
its meters are linked to (none when no meter names one). Everything is read with COPY
and parsed by Polars: the history of 3,500 meters over eight weeks is 9.4M buckets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal, get_args

import polars as pl

from metrify.stores import aggregates
from metrify.stores.pools import Connection
from metrify.stores.postgres import copy_out

__all__ = [
    "FLEET_KEY",
    "SERIES_SCHEMA",
    "Described",
    "Subject",
    "SubjectType",
    "UnknownSubject",
    "actual_sql",
    "describe",
    "fresh",
    "group_subjects",
    "history",
    "meter_histories",
    "meter_ids",
    "meter_places",
    "span",
    "weather",
]

SubjectType = Literal["meter", "node", "segment", "region", "fleet"]
SUBJECT_TYPES: Final = get_args(SubjectType)
FLEET_KEY: Final = aggregates.FLEET_KEY

#: the frame every reader returns: interval start (UTC) and the value
SERIES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "ts": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
}

#: a bucket of the aggregates holds a usable energy value when something in it was not
#: a gap nor rejected, or was a gap that got estimated (see migration 0013's counts)
_USABLE = "(a.n_present + a.n_estimated - a.n_rejected) > 0"
_EPOCH_US = "(extract(epoch FROM {0}) * 1000000)::bigint"
#: the same for a 30-minute bucket, whose epoch is whole seconds: date_part's double is
#: exact there, and cheaper than extract's numeric (with the ORDER BY dropped, reading
#: 9.4M buckets took 19 s instead of 30 on a busy machine)
_BUCKET_US = "(date_part('epoch', {0})::bigint * 1000000)"
_BUCKET = "date_bin('30 minutes', g.ts, timestamptz '2000-01-01 00:00:00+00')"


class UnknownSubject(LookupError):
    """No such meter, node, region, segment, or an empty fleet."""


@dataclass(frozen=True)
class Subject:
    """What a forecast is of: ``kind`` and its key (``all`` for the fleet)."""

    kind: SubjectType
    key: str

    def __str__(self) -> str:
        return "fleet" if self.kind == "fleet" else f"{self.kind} {self.key}"


@dataclass(frozen=True)
class Described:
    """A known subject and where its history comes from: ``grid`` (a node's own
    measurements, MW) or ``aggregates`` (energy, kWh per 30 minutes); ``zone`` is the
    meter's own time zone (None for groups and meters without one); ``station`` the
    weather station linked to it, if any."""

    subject: Subject
    source: Literal["grid", "aggregates"]
    unit: str
    zone: str | None
    station: str | None


def describe(conn: Connection, subject: Subject) -> Described:
    """What the store knows of ``subject``; :class:`UnknownSubject` when nothing."""
    kind, key = subject.kind, subject.key
    if kind == "meter":
        row = conn.execute(
            "SELECT timezone, station_id FROM meters WHERE meter_id = %s", (key,)
        ).fetchone()
        if row is None:
            raise UnknownSubject(f"no meter {key}")
        return Described(subject, "aggregates", "kWh", row[0], row[1])
    if kind == "node":
        measured = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM grid_measurements WHERE node_id = %s)", (key,)
        ).fetchone()
        if measured and measured[0]:
            return Described(subject, "grid", "MW", None, _station_of(conn, "node_id", key))
        known = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM grid_nodes WHERE node_id = %(k)s)"
            " OR EXISTS (SELECT 1 FROM meters WHERE node_id = %(k)s)",
            {"k": key},
        ).fetchone()
        if not (known and known[0]):
            raise UnknownSubject(f"no grid node {key}")
        return Described(subject, "aggregates", "kWh", None, _station_of(conn, "node_id", key))
    if kind == "fleet":
        if not _exists(conn, "SELECT EXISTS (SELECT 1 FROM meters)", ()):
            raise UnknownSubject("the fleet has no meters")
        return Described(subject, "aggregates", "kWh", None, _station_of(conn, None, key))
    column = aggregates.GROUP_COLUMNS[kind]
    if not _exists(conn, f"SELECT EXISTS (SELECT 1 FROM meters WHERE {column} = %s)", (key,)):
        raise UnknownSubject(f"no {kind} {key}")
    return Described(subject, "aggregates", "kWh", None, _station_of(conn, column, key))


def _exists(conn: Connection, sql: str, params: tuple[object, ...]) -> bool:
    row = conn.execute(sql, params).fetchone()
    return bool(row and row[0])


def _station_of(conn: Connection, column: str | None, key: str) -> str | None:
    """The station most of the group's meters are linked to (ties: the first by id)."""
    where = "" if column is None else f" AND {column} = %s"
    row = conn.execute(
        "SELECT station_id FROM meters WHERE station_id IS NOT NULL"
        + where
        + " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        () if column is None else (key,),
    ).fetchone()
    return None if row is None else str(row[0])


def fresh(conn: Connection) -> None:
    """Rebuild what writes marked, so a history includes every committed reading."""
    if aggregates.pending(conn):
        aggregates.refresh(conn)


def actual_sql(described: Described) -> tuple[str, list[object]]:
    """A query of the subject's history as ``(ts, value)`` between ``%s`` bounds that
    the caller appends (start, end): the same series :func:`history` returns, for SQL
    that joins it (scoring stored forecasts)."""
    subject = described.subject
    if described.source == "grid":
        return (
            f"SELECT {_BUCKET} AS ts, avg(g.load_mw) AS value FROM grid_measurements g"
            " WHERE g.node_id = %s AND g.status <> 'rejected' AND g.load_mw IS NOT NULL"
            " AND g.ts >= %s AND g.ts < %s GROUP BY 1",
            [subject.key],
        )
    if subject.kind == "meter":
        return (
            "SELECT a.bucket AS ts, a.import_kwh AS value FROM agg_meter_30m a"
            f" WHERE a.meter_id = %s AND {_USABLE} AND a.bucket >= %s AND a.bucket < %s",
            [subject.key],
        )
    return (
        "SELECT a.bucket AS ts, a.import_kwh AS value FROM agg_group_30m a"
        f" WHERE a.dim = %s AND a.key = %s AND a.commodity = 'electricity' AND {_USABLE}"
        " AND a.bucket >= %s AND a.bucket < %s",
        [subject.kind, subject.key],
    )


def history(
    conn: Connection, described: Described, start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """The subject's series over [start, end), oldest first (:data:`SERIES_SCHEMA`)."""
    if described.source == "aggregates":
        fresh(conn)
    sql, params = actual_sql(described)
    query = f"SELECT {_BUCKET_US.format('ts')}, value FROM ({sql}) s ORDER BY 1"
    with conn.cursor() as cur:
        raw = copy_out(cur, query, ["ts", "value"], [*params, start, end])
    return _series(raw, ["ts", "value"])


def meter_histories(
    conn: Connection, meters: list[str] | None, start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """Many meters' series at once (all registered meters when ``meters`` is None), as
    ``(meter_id, ts, value)`` in no particular order: one scan of the meter aggregates
    instead of a query per meter (sorting 9.4M buckets on the server cost more than the
    scan; the models sort each series anyway)."""
    fresh(conn)
    where = "" if meters is None else " AND a.meter_id = ANY(%s)"
    params: list[object] = [start, end] + ([] if meters is None else [meters])
    query = (
        f"SELECT a.meter_id, {_BUCKET_US.format('a.bucket')}, a.import_kwh"
        f" FROM agg_meter_30m a WHERE {_USABLE} AND a.bucket >= %s AND a.bucket < %s{where}"
    )
    with conn.cursor() as cur:
        raw = copy_out(cur, query, ["meter_id", "ts", "value"], params)
    return _series(raw, ["meter_id", "ts", "value"])


def _series(raw: pl.DataFrame | None, columns: list[str]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"meter_id": pl.String(), **SERIES_SCHEMA}
    if raw is None:
        return pl.DataFrame(schema={c: schema[c] for c in columns})
    return raw.with_columns(
        pl.from_epoch(pl.col("ts").cast(pl.Int64), "us").dt.replace_time_zone("UTC"),
        pl.col("value").cast(pl.Float64),
    )


def weather(
    conn: Connection, station: str | None, start: dt.datetime, end: dt.datetime
) -> pl.DataFrame | None:
    """The station's temperature per observation time over [start, end), rejected
    observations left out; None without a station or without observations."""
    if station is None:
        return None
    query = (
        f"SELECT {_EPOCH_US.format('ts')}, temperature_c FROM weather_observations"
        " WHERE station_id = %s AND ts >= %s AND ts < %s AND status <> 'rejected'"
        " AND temperature_c IS NOT NULL ORDER BY 1"
    )
    with conn.cursor() as cur:
        raw = copy_out(cur, query, ["ts", "temperature_c"], [station, start, end])
    if raw is None:
        return None
    return raw.with_columns(
        pl.from_epoch(pl.col("ts").cast(pl.Int64), "us").dt.replace_time_zone("UTC"),
        pl.col("temperature_c").cast(pl.Float64),
    )


def meter_ids(conn: Connection) -> list[str]:
    """Every registered meter that is not removed, by id."""
    rows = conn.execute(
        "SELECT meter_id FROM meters WHERE status <> 'removed' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def meter_places(
    conn: Connection, ids: list[str]
) -> dict[str, tuple[str | None, str | None, int | None]]:
    """(time zone, weather station, interval in seconds) of each registered meter of
    ``ids``, as registered (any may be unknown)."""
    rows = conn.execute(
        "SELECT meter_id, timezone, station_id, interval_s FROM meters WHERE meter_id = ANY(%s)",
        (ids,),
    ).fetchall()
    return {str(m): (z, s, i) for m, z, s, i in rows}


def group_subjects(conn: Connection) -> list[Subject]:
    """The fleet (when it has meters) and every grid node not removed: registered (a
    node's first measurement registers it) or named by a meter, by id."""
    rows = conn.execute(
        "SELECT node_id FROM grid_nodes WHERE status <> 'removed'"
        " UNION SELECT node_id FROM meters WHERE node_id IS NOT NULL ORDER BY 1"
    ).fetchall()
    out = [Subject("node", str(r[0])) for r in rows]
    if _exists(conn, "SELECT EXISTS (SELECT 1 FROM meters)", ()):
        out.insert(0, Subject("fleet", FLEET_KEY))
    return out


def span(conn: Connection, described: Described) -> tuple[dt.datetime, dt.datetime] | None:
    """(first, end) of the subject's stored history, ``end`` being the end of its last
    30-minute bucket; None when it has none."""
    if described.source == "aggregates":
        fresh(conn)
    sql, params = actual_sql(described)
    row = conn.execute(
        f"SELECT min(ts), max(ts) FROM ({sql}) s",
        [*params, dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2200, 1, 1, tzinfo=dt.UTC)],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1] + dt.timedelta(minutes=30)
