"""Consumption patterns in and out of the store: the measured half-hours they are
computed from, and the runs that keep what was found (migration 0017).

The input is the 30-minute meter aggregates (:mod:`metrify.stores.aggregates`), not the
raw readings: the same half-hours the energy answers use, one row per meter and bucket,
rebuilt first where writes marked them. Only *measured* buckets go in: at least one real
reading, no gap row (estimated or not) and nothing rejected. An estimate is a model's
guess at a gap; letting it into a household's typical day would teach the patterns the
estimator's habits instead of the household's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import orjson
import polars as pl

from metrify.stores import aggregates
from metrify.stores.pools import Connection
from metrify.stores.postgres import copy_out

__all__ = [
    "FIGURES",
    "clusters",
    "half_hours",
    "households",
    "latest_run",
    "meter_attributes",
    "meter_pattern",
    "prune",
    "save_run",
    "segment_pattern",
    "segments",
]

#: the figure columns meter and segment rows share (besides typical_days)
FIGURES: Final = (
    "days",
    "complete_days",
    "mean_daily_kwh",
    "mean_kw",
    "peak_kw",
    "load_factor",
    "base_load_kw",
    "peak_time",
    "peak_share",
)


def half_hours(
    conn: Connection, start: dt.datetime, end: dt.datetime, meters: Sequence[str] | None = None
) -> pl.DataFrame:
    """Measured 30-minute buckets in [start, end): (id, ts UTC, kwh), refreshed first."""
    if aggregates.pending(conn):
        aggregates.refresh(conn)
    where = "bucket >= %s AND bucket < %s AND n_present > 0 AND n_missing = 0 AND n_rejected = 0"
    params: list[Any] = [start, end]
    if meters is not None:
        where += " AND meter_id = ANY(%s)"
        params.append(list(meters))
    with conn.cursor() as cur:
        frame = copy_out(
            cur,
            "SELECT meter_id, to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'),"
            f" import_kwh FROM agg_meter_30m WHERE {where}",
            ["id", "ts", "kwh"],
            params,
        )
    schema: dict[str, Any] = {
        "id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "kwh": pl.Float64,
    }
    if frame is None:
        return pl.DataFrame(schema=schema)
    return frame.select(
        "id",
        pl.col("ts")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us")
        .dt.replace_time_zone("UTC"),
        pl.col("kwh").cast(pl.Float64),
    )


def meter_attributes(conn: Connection) -> pl.DataFrame:
    """Every registered meter's (id, tariff, region, timezone)."""
    rows = conn.execute("SELECT meter_id, tariff, region, timezone FROM meters").fetchall()
    return pl.DataFrame(rows, schema=["id", "tariff", "region", "timezone"], orient="row").cast(
        pl.String
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def save_run(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    tz: str,
    definitions: dict[str, Any],
    clustering: dict[str, Any] | None,
    meters: list[dict[str, Any]],
    segments: list[dict[str, Any]],
    centres: list[dict[str, Any]],
    source: str,
) -> int:
    """Store one run in one transaction, replacing any earlier run of the same period;
    returns its id. ``meters``: dicts with meter_id, tariff, region, acorn, cluster,
    shape, typical_days and :data:`FIGURES`; ``segments``: dim, key, households,
    typical_days and the figures; ``centres``: cluster, households, peak_time,
    peak_share, centre."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM pattern_runs WHERE period_start = %s AND period_end = %s", (start, end)
        )
        row = conn.execute(
            "INSERT INTO pattern_runs (period_start, period_end, tz, definitions, clustering,"
            " meters, source) VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)"
            " RETURNING run_id",
            (
                start,
                end,
                tz,
                _json(definitions),
                None if clustering is None else _json(clustering),
                len(meters),
                source,
            ),
        ).fetchone()
        assert row is not None
        run_id = int(row[0])
        figures = ", ".join(FIGURES)
        marks = ", ".join(["%s"] * len(FIGURES))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meter_patterns (run_id, meter_id, tariff, region, acorn, cluster,"
                f" shape, typical_days, {figures}) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb,"
                f" %s::jsonb, {marks})",
                [
                    (
                        run_id,
                        m["meter_id"],
                        m.get("tariff"),
                        m.get("region"),
                        m.get("acorn"),
                        m.get("cluster"),
                        None if m.get("shape") is None else _json(m["shape"]),
                        _json(m["typical_days"]),
                        *(m.get(f) for f in FIGURES),
                    )
                    for m in meters
                ],
            )
            cur.executemany(
                "INSERT INTO segment_patterns (run_id, dim, key, households, typical_days,"
                f" {figures}) VALUES (%s, %s, %s, %s, %s::jsonb, {marks})",
                [
                    (
                        run_id,
                        s["dim"],
                        s["key"],
                        s["households"],
                        _json(s["typical_days"]),
                        *(s.get(f) for f in FIGURES),
                    )
                    for s in segments
                ],
            )
            cur.executemany(
                "INSERT INTO pattern_clusters (run_id, cluster, households, peak_time,"
                " peak_share, centre) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                [
                    (
                        run_id,
                        c["cluster"],
                        c["households"],
                        c["peak_time"],
                        c["peak_share"],
                        _json(c["centre"]),
                    )
                    for c in centres
                ],
            )
    return run_id


_RUN_COLUMNS: Final = (
    "run_id",
    "period_start",
    "period_end",
    "tz",
    "definitions",
    "clustering",
    "meters",
    "source",
    "computed_at",
)


def latest_run(conn: Connection, run_id: int | None = None) -> dict[str, Any] | None:
    """The run ``run_id``, or the newest one; None when there is none."""
    cols = ", ".join(_RUN_COLUMNS)
    if run_id is None:
        row = conn.execute(
            f"SELECT {cols} FROM pattern_runs ORDER BY computed_at DESC, run_id DESC LIMIT 1"
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {cols} FROM pattern_runs WHERE run_id = %s", (run_id,)
        ).fetchone()
    return None if row is None else dict(zip(_RUN_COLUMNS, row, strict=True))


_METER_COLUMNS: Final = ("meter_id", "tariff", "region", "acorn", "cluster", *FIGURES)


def meter_pattern(conn: Connection, run_id: int, meter_id: str) -> dict[str, Any] | None:
    """One meter's row of a run, with its shape and typical days; None if not in it."""
    cols = ", ".join((*_METER_COLUMNS, "shape", "typical_days"))
    row = conn.execute(
        f"SELECT {cols} FROM meter_patterns WHERE run_id = %s AND meter_id = %s",
        (run_id, meter_id),
    ).fetchone()
    return (
        None
        if row is None
        else dict(zip((*_METER_COLUMNS, "shape", "typical_days"), row, strict=True))
    )


def segment_pattern(conn: Connection, run_id: int, dim: str, key: str) -> dict[str, Any] | None:
    """One segment's row of a run with its typical days; None if not in it."""
    names = ("dim", "key", "households", *FIGURES, "typical_days")
    row = conn.execute(
        f"SELECT {', '.join(names)} FROM segment_patterns"
        " WHERE run_id = %s AND dim = %s AND key = %s",
        (run_id, dim, key),
    ).fetchone()
    return None if row is None else dict(zip(names, row, strict=True))


def segments(conn: Connection, run_id: int) -> list[tuple[str, str]]:
    """The (dim, key) of every segment a run holds."""
    rows = conn.execute(
        "SELECT dim, key FROM segment_patterns WHERE run_id = %s ORDER BY dim, key", (run_id,)
    ).fetchall()
    return [(str(d), str(k)) for d, k in rows]


def households(conn: Connection, run_id: int) -> pl.DataFrame:
    """A run's meters, one row each: the figures, tariff, region, acorn, cluster and the
    48 slots of the day shape (``s0``..``s47``; null where not clustered)."""
    cols = ", ".join((*_METER_COLUMNS, "shape"))
    rows = conn.execute(
        f"SELECT {cols} FROM meter_patterns WHERE run_id = %s ORDER BY meter_id", (run_id,)
    ).fetchall()
    names = [*_METER_COLUMNS, "shape"]
    schema: dict[str, Any] = {n: pl.Float64 for n in names}
    schema |= {n: pl.String for n in ("meter_id", "tariff", "region", "acorn", "peak_time")}
    schema |= {"cluster": pl.Int32, "days": pl.Int32, "complete_days": pl.Int32}
    schema["shape"] = pl.List(pl.Float64)
    return pl.DataFrame([dict(zip(names, r, strict=True)) for r in rows], schema=schema)


def clusters(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """A run's clusters, largest first, each with its centre shape (48 shares)."""
    names = ("cluster", "households", "peak_time", "peak_share", "centre")
    rows = conn.execute(
        f"SELECT {', '.join(names)} FROM pattern_clusters WHERE run_id = %s ORDER BY cluster",
        (run_id,),
    ).fetchall()
    return [dict(zip(names, r, strict=True)) for r in rows]


def prune(conn: Connection, source: str, keep: int) -> int:
    """Delete the runs of ``source`` beyond its ``keep`` newest; returns how many. The
    daily job makes a run per day (a new trailing year each time): without this a
    year of them would hold 365 copies of nearly the same patterns."""
    row = conn.execute(
        "WITH gone AS (DELETE FROM pattern_runs WHERE source = %s AND run_id NOT IN ("
        " SELECT run_id FROM pattern_runs WHERE source = %s"
        " ORDER BY computed_at DESC, run_id DESC LIMIT %s) RETURNING 1)"
        " SELECT count(*) FROM gone",
        (source, source, keep),
    ).fetchone()
    return int(row[0]) if row else 0
