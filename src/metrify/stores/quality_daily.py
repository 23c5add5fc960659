"""Daily quality scores (``quality_daily``): added to by fresh writes, recomputed where
a write changed what was stored.

One row per meter per local day counts the day's readings by status, against the count
its interval and the day's real length call for (46 or 50 half-hours on the days the
clocks change).

Two ways keep it current:

* **Increments.** A batch of new keys (the fast COPY) that brings many readings per
  meter-day adds its counts to the days' rows in its own transaction: one row per
  meter-day, where a recompute would read every reading of those days back (on a file
  load, a sixth of the store's work went into that).
* **Marks and recomputes.** A batch that changed stored readings (a correction, an
  estimate replaced) cannot be counted by adding, and a stream batch bringing a reading or
  two per meter-day would rewrite each day's row with every batch. Both mark the
  (meter, UTC day) pairs in ``quality_dirty`` in their transaction; :func:`refresh`
  recomputes the marked days from the readings later.

A recompute sets absolute counts from a snapshot of the readings. Were an increment's
transaction to commit after that snapshot was taken and before the recompute wrote, the
recompute would overwrite its counts. So increments hold a shared advisory lock until
their transaction ends and a recompute takes it exclusively first: it then sees every
increment's rows or is followed by them.

Roll-ups per feeder and for the fleet (:func:`quality_report`) are computed when asked,
so they always agree with the meter rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import polars as pl
import psycopg

from metrify.contracts.localtime import DAY_US, known_zones, local_us
from metrify.contracts.records import Quality, Status
from metrify.stores.arrays import array_literal
from metrify.stores.meter_days import insert_meter_days

#: the advisory lock between increments (shared) and recomputes (exclusive)
LOCK: Final = 7_305_118_245
#: a fresh batch adds to the days' rows when it brings at least this many readings per
#: meter-day on average (a file's day of half-hours brings 48); fewer are marked
MIN_ROWS_PER_DAY: Final = 12


def _score(valid: str, estimated: str, expected: str) -> str:
    """The day's score in SQL: 100 for a complete, all-valid day; estimates count half,
    suspect and rejected readings nothing."""
    return (
        f"round((100.0 * least(({valid} + 0.5 * ({estimated}))::float8 / nullif({expected}, 0),"
        " 1.0))::numeric, 1)::float8"
    )


def expected_intervals(day: str, tz: str, interval_s: str) -> str:
    """How many readings of ``interval_s`` seconds a meter owes for local ``day`` of zone
    ``tz``, in SQL (each argument an SQL expression): the day's real length over the
    interval, so 48 half-hours on an ordinary day and 46 or 50 where the clocks change.

    The one definition of the expected count: increments and recomputes both use it.
    """
    length = (
        f"extract(epoch FROM ({day} + 1)::timestamp AT TIME ZONE {tz}"
        f" - {day}::timestamp AT TIME ZONE {tz})"
    )
    return f"({length} / {interval_s})::int"


RECOMPUTE_SQL: Final = f"""
WITH days AS (
    SELECT DISTINCT t.meter_id, d.local_day, coalesce(m.timezone, 'UTC') AS tz
    FROM touched_days t
    LEFT JOIN meters m ON m.meter_id = t.meter_id
    CROSS JOIN LATERAL (
        SELECT ((t.day::timestamp AT TIME ZONE 'UTC')
                AT TIME ZONE coalesce(m.timezone, 'UTC'))::date
        UNION
        SELECT (((t.day + 1)::timestamp AT TIME ZONE 'UTC' - interval '1 microsecond')
                AT TIME ZONE coalesce(m.timezone, 'UTC'))::date
    ) AS d(local_day)
), bounds AS (
    SELECT meter_id, local_day, tz,
           local_day::timestamp AT TIME ZONE tz AS day_start,
           (local_day + 1)::timestamp AT TIME ZONE tz AS day_end
    FROM days
), stats AS (
    SELECT b.meter_id, b.local_day, b.tz,
           min(r.interval_s) AS interval_s,
           count(r.ts) FILTER (WHERE r.quality & {int(Quality.MISSING)} = 0) AS present,
           count(r.ts) FILTER (WHERE r.status = 'valid') AS valid,
           count(r.ts) FILTER (WHERE r.status = 'estimated') AS estimated,
           count(r.ts) FILTER (WHERE r.status = 'suspect') AS suspect,
           count(r.ts) FILTER (WHERE r.status = 'rejected') AS rejected
    FROM bounds b
    -- an inner join: the other local day a UTC day touches may hold no reading yet
    -- (the data ends before it), and gets no row, as no increment writes one
    JOIN readings r ON r.meter_id = b.meter_id AND r.ts >= b.day_start AND r.ts < b.day_end
    GROUP BY b.meter_id, b.local_day, b.tz, b.day_start, b.day_end
), scored AS (
    SELECT meter_id, local_day,
           {expected_intervals("local_day", "tz", "interval_s")} AS expected,
           present, valid, estimated, suspect, rejected
    FROM stats
)
INSERT INTO quality_daily AS q (meter_id, day, expected, present, valid, estimated, suspect,
                                rejected, missing, completeness, score, computed_at)
SELECT meter_id, local_day, expected, present, valid, estimated, suspect, rejected,
       greatest(expected - present, 0),
       least(present::float8 / nullif(expected, 0), 1.0),
       {_score("valid", "estimated", "expected")},
       now()
FROM scored WHERE expected > 0
ON CONFLICT (meter_id, day) DO UPDATE SET
    expected = EXCLUDED.expected, present = EXCLUDED.present, valid = EXCLUDED.valid,
    estimated = EXCLUDED.estimated, suspect = EXCLUDED.suspect, rejected = EXCLUDED.rejected,
    missing = EXCLUDED.missing, completeness = EXCLUDED.completeness, score = EXCLUDED.score,
    computed_at = EXCLUDED.computed_at
"""

_COUNTS: Final = ("present", "valid", "estimated", "suspect", "rejected")
# The expected count of the day's finest interval is the largest of the counts each
# batch's finest interval gives, so increments combine by greatest().
_EXPECTED: Final = "greatest(q.expected, EXCLUDED.expected)"
_SUM: Final = {c: f"(q.{c} + EXCLUDED.{c})" for c in _COUNTS}

INCREMENT_SQL: Final = f"""
INSERT INTO quality_daily AS q (meter_id, day, expected, present, valid, estimated, suspect,
                                rejected, missing, completeness, score, computed_at)
SELECT meter_id, day, expected, present, valid, estimated, suspect, rejected,
       greatest(expected - present, 0),
       least(present::float8 / expected, 1.0),
       {_score("valid", "estimated", "expected")},
       now()
FROM (
    SELECT k.meter_id, k.day, k.present, k.valid, k.estimated, k.suspect, k.rejected,
           {expected_intervals("k.day", "k.tz", "k.interval_s")} AS expected
    FROM unnest(%s::text[], %s::date[], %s::text[], %s::int[], %s::int[], %s::int[],
                %s::int[], %s::int[], %s::int[])
         AS k(meter_id, day, tz, interval_s, present, valid, estimated, suspect, rejected)
) s
WHERE expected > 0
ON CONFLICT (meter_id, day) DO UPDATE SET
    expected = {_EXPECTED},
    {", ".join(f"{c} = {s}" for c, s in _SUM.items())},
    missing = greatest({_EXPECTED} - {_SUM["present"]}, 0),
    completeness = least({_SUM["present"]}::float8 / {_EXPECTED}, 1.0),
    score = {_score(_SUM["valid"], _SUM["estimated"], _EXPECTED)},
    computed_at = EXCLUDED.computed_at
"""


def day_counts(rows: pl.DataFrame, zones: pl.DataFrame) -> pl.DataFrame:
    """The counts of fresh ``rows`` (``meter_id, ts, interval_s, quality, status``) per
    meter and local day, in ``(meter_id, day)`` order (the order rows are locked in).

    ``zones``: ``meter_id, tz`` of the meters not on UTC; zones ``zoneinfo`` does not know
    count as UTC, as the rules and detectors take them.
    """
    frame = rows.select("meter_id", "ts", "interval_s", "quality", "status")
    zones = zones.select("meter_id", tz=pl.col("tz").cast(pl.String))
    known = known_zones(zones.get_column("tz").drop_nulls().unique().to_list())
    if known:  # each row's day on its meter's clock
        frame = frame.join(zones, on="meter_id", how="left", maintain_order="left")
    local = local_us(frame, "tz", known) if known else pl.col("ts").dt.epoch("us")
    status = pl.col("status")
    # (grouped by meter and day, the zone added per meter after: a zone is its meter's,
    # and a string column of it for every row cost more than the counting)
    counts = frame.group_by("meter_id", day=(local // DAY_US).cast(pl.Int32).cast(pl.Date)).agg(
        interval_s=pl.col("interval_s").min(),
        present=((pl.col("quality") & int(Quality.MISSING)) == 0).sum(),
        valid=(status == Status.VALID.value).sum(),
        estimated=(status == Status.ESTIMATED.value).sum(),
        suspect=(status == Status.SUSPECT.value).sum(),
        rejected=(status == Status.REJECTED.value).sum(),
    )
    tz = pl.when(pl.col("tz").is_in(known)).then(pl.col("tz")).otherwise(pl.lit("UTC"))
    return (
        counts.join(zones, on="meter_id", how="left")
        .with_columns(tz=tz)
        .select("meter_id", "tz", "day", *counts.columns[2:])
        .sort("meter_id", "day")
    )


def fresh_zones(
    cur: psycopg.Cursor[tuple[object, ...]], rows: pl.DataFrame, ids: list[str]
) -> pl.DataFrame | None:
    """Fresh ``rows`` (all keys new, just written in ``cur``'s transaction; ``ids``: their
    distinct meters) are added to their days' counts in three steps: this one, then
    :func:`increments` (no database: a writer finds them on another thread while the
    server takes the rows) and :func:`add_fresh`.

    The zones of their meters that are not on UTC (read in the transaction, so a meter
    registered in it counts with its declared zone); None when the rows are too thin to
    count (a reading or two per meter-day: their days are marked for :func:`refresh`)."""
    if not rows.height or rows.height < MIN_ROWS_PER_DAY * len(ids):
        return None
    cur.execute(
        "SELECT meter_id, timezone FROM meters WHERE meter_id = ANY(%s)"
        " AND timezone IS NOT NULL AND timezone <> 'UTC'",
        (ids,),
    )
    return pl.DataFrame(
        cur.fetchall(), schema={"meter_id": pl.String(), "tz": pl.String()}, orient="row"
    )


def increments(rows: pl.DataFrame, zones: pl.DataFrame) -> list[str] | None:
    """The parameters of the statement adding fresh ``rows`` to their days' counts
    (``zones`` as :func:`fresh_zones` gives them); None when they are too thin for it.
    Reads no database: a writer may find them on another thread."""
    counts = day_counts(rows, zones)
    if counts.height * MIN_ROWS_PER_DAY > rows.height:
        return None
    columns = ["meter_id", "day", "tz", "interval_s", *_COUNTS]
    return [array_literal(counts.get_column(c)) for c in columns]


def add_fresh(
    cur: psycopg.Cursor[tuple[object, ...]],
    rows: pl.DataFrame,
    counted: list[str] | None,
    pairs: tuple[str, str] | None = None,
) -> None:
    """Add fresh ``rows`` to their days' counts (``counted``: :func:`increments`), or mark
    their days for :func:`refresh` when they were too thin to count (None; ``pairs``:
    their :func:`~metrify.stores.meter_days.meter_day_pairs`, when found already)."""
    if counted is None:
        mark(cur, rows, pairs)
        return
    cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LOCK,))
    cur.execute(INCREMENT_SQL, counted)


def mark(
    cur: psycopg.Cursor[tuple[object, ...]],
    rows: pl.DataFrame,
    pairs: tuple[str, str] | None = None,
) -> None:
    """Mark the (meter, UTC day) pairs of ``rows`` stale, in one statement (``pairs``:
    those pairs, when found already)."""
    insert_meter_days(cur, "quality_dirty", rows, "ON CONFLICT DO NOTHING", pairs)


def rezone(cur: psycopg.Cursor[tuple[object, ...]], meters_sql: str) -> None:
    """Re-derive the days of meters whose time zone changed: their rows counted local days
    of the old zone, so they go, and every UTC day they have readings on is marked for
    :func:`refresh` to count again in the new zone (``meters_sql`` selects the meter ids).
    Run in the transaction that changes the zones, so a crash leaves neither half."""
    cur.execute(f"DELETE FROM quality_daily WHERE meter_id IN ({meters_sql})")
    cur.execute(
        "INSERT INTO quality_dirty (meter_id, day)"
        " SELECT DISTINCT meter_id, (ts AT TIME ZONE 'UTC')::date FROM readings"
        f" WHERE meter_id IN ({meters_sql}) ON CONFLICT DO NOTHING"
    )


def refresh(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Recompute the daily scores of every meter-day marked stale; how many daily rows
    were written.

    Takes the marks and recomputes those days in one transaction, so a crash in between
    leaves them marked. A UTC day touches at most two local days.
    """
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM quality_dirty)").fetchone()
    if row is None or not row[0]:
        return 0  # nothing marked: no need to wait for the increments under way
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS touched_days (meter_id text, day date)"
            " ON COMMIT DELETE ROWS"
        )
        cur.execute(
            "WITH due AS (DELETE FROM quality_dirty RETURNING meter_id, day)"
            " INSERT INTO touched_days SELECT meter_id, day FROM due"
        )
        if cur.rowcount <= 0:
            return 0
        cur.execute(RECOMPUTE_SQL)
        return max(cur.rowcount, 0)


# --- the report ------------------------------------------------------------------------


def _rows(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def latest_complete_day(conn: psycopg.Connection[Any]) -> dt.date | None:
    """The newest scored day on which most meters have every reading they owe; the day
    before it when the newest is still arriving (a load or stream that ended mid-day
    leaves every meter short, which would read as the fleet's worst day). A single meter
    with a gap does not make a day partial. None when nothing is scored."""
    rows = conn.execute(
        """
        SELECT day, count(*) FILTER (WHERE present >= expected) * 2 > count(*) AS complete
        FROM quality_daily
        WHERE day >= (SELECT max(day) FROM quality_daily) - 1
        GROUP BY day ORDER BY day DESC
        """
    ).fetchall()
    if not rows:
        return None
    newest, complete = rows[0]
    if complete or len(rows) == 1:
        return newest  # type: ignore[no-any-return]
    return rows[1][0]  # type: ignore[no-any-return]


def quality_report(
    conn: psycopg.Connection[Any], day: dt.date | None, limit: int = 10
) -> dict[str, Any] | None:
    """Fleet summary, per-feeder roll-up and the worst meters for ``day`` (default: the
    latest complete day, see :func:`latest_complete_day`)."""
    if day is None:
        day = latest_complete_day(conn)
        if day is None:
            return None
    totals = """
        count(*) AS meters,
        coalesce(sum(present)::float8 / nullif(sum(expected), 0), 0) AS completeness,
        coalesce(avg(score), 0)::float8 AS score,
        coalesce(sum(valid)::float8 / nullif(sum(expected), 0), 0) AS valid_share,
        coalesce(sum(estimated)::float8 / nullif(sum(expected), 0), 0) AS estimated_share,
        coalesce(sum(suspect)::float8 / nullif(sum(expected), 0), 0) AS suspect_share
    """
    with conn.cursor() as cur:
        cur.execute(f"SELECT {totals} FROM quality_daily WHERE day = %s", (day,))
        fleet = _rows(cur)[0]
        if not fleet["meters"]:
            return None
        cur.execute(
            f"SELECT coalesce(m.node_id, '(none)') AS feeder, {totals} FROM quality_daily q"
            " LEFT JOIN meters m USING (meter_id) WHERE q.day = %s GROUP BY 1 ORDER BY score, 1",
            (day,),
        )
        feeders = _rows(cur)
        cur.execute(
            "SELECT meter_id, expected, present, valid, estimated, suspect, rejected, missing,"
            " completeness, score FROM quality_daily WHERE day = %s"
            " ORDER BY score, completeness, meter_id LIMIT %s",
            (day, limit),
        )
        worst = _rows(cur)
    return {"day": day.isoformat(), "fleet": fleet, "feeders": feeders, "worst": worst}
