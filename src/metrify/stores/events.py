"""Meter events (power failure and restore, tamper, cover open, clock set, reverse
running): the writer and the one read model.

Events are few beside readings (a handful per meter and month), so the table is plain,
keyed by ``(meter_id, ts, event)``: the same event delivered twice changes nothing, a
changed code or details replaces the stored ones (the newer report wins).

The lake holds them too (kind ``events``, day partitions like the time series, current
rows only): a write notes its days in the lake outbox in its own transaction and says
which events it inserted or changed, so the pipeline sends those to the lake and a crash
in between is caught up from the store (:mod:`metrify.pipeline.lakesync`).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg

from metrify.contracts.records import EVENT
from metrify.stores import lake_outbox
from metrify.stores.pools import AsyncConnection
from metrify.stores.postgres import (
    ABSENT,
    WriteResult,
    absent_fields,
    copy_frame,
    quarantine_rows,
)
from metrify.stores.reads.buckets import JsonRow, as_json_rows

__all__ = ["EVENT_COLUMNS", "of_kinds", "outages", "page", "write"]

#: what the event listing returns of each event
EVENT_COLUMNS = ("ts", "event", "code", "details", "source")

_PAGE = as_json_rows(
    f"SELECT {', '.join(EVENT_COLUMNS)} FROM meter_events WHERE meter_id = %s"
    " AND ts >= %s AND ts < %s AND ts > %s ORDER BY ts, event LIMIT %s",
    EVENT_COLUMNS,
)


def write(
    conn: psycopg.Connection[tuple[object, ...]],
    frame: pl.DataFrame,
    *,
    quarantine: pl.DataFrame | None = None,
    outbox: bool = False,
) -> WriteResult:
    """Upsert events (``EVENT`` fields plus ``source``, and ``ingested_at`` when given),
    with the batch's quarantine rows, in one transaction. ``outbox``: note the batch's
    UTC days for the lake; the result then names the changed events (``changed_keys``)
    and the days of unchanged ones (``unchanged_days``, for the lake to compare).

    An :data:`~metrify.stores.postgres.ABSENT` column marks the fields (``code``,
    ``details``) an event's input did not carry: a stored event keeps its value of those,
    and :attr:`WriteResult.kept` gives the values the written events now hold."""
    result = WriteResult()
    cols = [*EVENT.fields, "source", *(["ingested_at"] if "ingested_at" in frame.columns else [])]
    key = list(EVENT.key)
    absent = absent_fields(EVENT, frame)
    with conn.transaction(), conn.cursor() as cur:
        if frame.height:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_meter_events"
                " (LIKE meter_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            cur.execute("DELETE FROM stage_meter_events")
            if outbox:
                days = frame["ts"].dt.date().unique().drop_nulls().sort().to_list()
                result.outbox = lake_outbox.add(cur, EVENT.kind, days)
            if absent:
                cur.execute(
                    f"ALTER TABLE stage_meter_events ADD COLUMN IF NOT EXISTS {ABSENT} integer"
                )
                copy_frame(cur, "stage_meter_events", frame.select(*cols, ABSENT))
                result.kept = _keep_stored(cur, absent)
            else:
                copy_frame(cur, "stage_meter_events", frame.select(cols))
            names = ", ".join(cols)
            cur.execute(
                f"""
                INSERT INTO meter_events AS e ({names})
                SELECT {names} FROM stage_meter_events
                ON CONFLICT (meter_id, ts, event) DO UPDATE
                SET code = EXCLUDED.code, details = EXCLUDED.details,
                    source = EXCLUDED.source, ingested_at = EXCLUDED.ingested_at
                WHERE (e.code, e.details) IS DISTINCT FROM (EXCLUDED.code, EXCLUDED.details)
                RETURNING (xmax = 0) AS inserted, {", ".join(key)}
                """
            )
            rows = cur.fetchall()
            flags = [bool(r[0]) for r in rows]
            result.changed_keys = pl.DataFrame(
                [r[1:] for r in rows],
                schema={c: EVENT.schema[c] for c in key},
                orient="row",
            )
            unchanged = frame.join(result.changed_keys, on=key, how="anti")
            result.unchanged_days = unchanged["ts"].dt.date().unique().drop_nulls().sort().to_list()
            result.inserted = sum(flags)
            result.updated = len(flags) - result.inserted
            result.unchanged = frame.height - len(flags)
        if quarantine is not None and quarantine.height:
            quarantine_rows(cur, quarantine)
    return result


def _keep_stored(cur: psycopg.Cursor[tuple[object, ...]], absent: dict[str, int]) -> pl.DataFrame:
    """Give the staged events the stored values of the fields they did not carry (so the
    upsert finds a repeat unchanged), and return those staged rows as they now are (for
    the lake, which must get what the store keeps, not the input's nulls)."""
    sets = ", ".join(
        f"{f} = CASE WHEN coalesce(s.{ABSENT}, 0) & {bit} <> 0 THEN e.{f} ELSE s.{f} END"
        for f, bit in absent.items()
    )
    cur.execute(
        f"UPDATE stage_meter_events s SET {sets} FROM meter_events e"
        " WHERE e.meter_id = s.meter_id AND e.ts = s.ts AND e.event = s.event"
        f" AND coalesce(s.{ABSENT}, 0) <> 0"
    )
    fields = [*EVENT.key, *absent]
    cur.execute(
        f"SELECT {', '.join(fields)} FROM stage_meter_events WHERE coalesce({ABSENT}, 0) <> 0"
    )
    schema = {c: EVENT.schema[c] for c in fields}
    return pl.DataFrame(cur.fetchall(), schema=schema, orient="row")


async def page(
    conn: AsyncConnection,
    meter_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    after: dt.datetime,
    limit: int,
) -> list[JsonRow]:
    """Up to ``limit`` events of a meter in [start, end) after ``after``, in time order."""
    cur = await conn.execute(_PAGE, (meter_id, start, end, after, limit))
    return await cur.fetchall()


#: each power failure of the meters asked for, with the restore that ended it (none yet:
#: open); a second failure before a restore starts nothing new
_OUTAGES = """
    SELECT meter_id, ts, restored FROM (
        SELECT meter_id, ts, event,
               lag(event) OVER w AS before,
               min(ts) FILTER (WHERE event = 'power_restore') OVER (
                   PARTITION BY meter_id ORDER BY ts
                   ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS restored
        FROM meter_events
        WHERE meter_id = ANY(%s) AND event IN ('power_failure', 'power_restore')
          AND ts < %s
        WINDOW w AS (PARTITION BY meter_id ORDER BY ts)
    ) e
    WHERE event = 'power_failure' AND before IS DISTINCT FROM 'power_failure'
      AND (restored IS NULL OR restored > %s)
"""


def outages(
    conn: psycopg.Connection[tuple[object, ...]],
    ids: list[str],
    start: dt.datetime,
    end: dt.datetime,
) -> pl.DataFrame:
    """Power outages of ``ids`` overlapping [start, end): ``meter_id``, ``ts_start`` (the
    failure), ``ts_end`` (the restore; null while none is stored)."""
    rows = conn.execute(_OUTAGES, (ids, end, start)).fetchall()
    return pl.DataFrame(
        rows,
        schema={
            "meter_id": pl.String(),
            "ts_start": pl.Datetime("us", "UTC"),
            "ts_end": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def of_kinds(
    conn: psycopg.Connection[tuple[object, ...]],
    ids: list[str],
    kinds: tuple[str, ...],
    start: dt.datetime,
    end: dt.datetime,
) -> pl.DataFrame:
    """Events of ``kinds`` of the meters ``ids`` in [start, end): meter_id, ts, event."""
    rows = conn.execute(
        "SELECT meter_id, ts, event FROM meter_events WHERE meter_id = ANY(%s)"
        " AND event = ANY(%s) AND ts >= %s AND ts < %s",
        (ids, list(kinds), start, end),
    ).fetchall()
    return pl.DataFrame(
        rows,
        schema={"meter_id": pl.String(), "ts": pl.Datetime("us", "UTC"), "event": pl.String()},
        orient="row",
    )
