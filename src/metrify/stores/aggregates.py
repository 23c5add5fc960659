"""Energy aggregates: recompute what is marked, and answer buckets from the aggregates.

The tables and the triggers that mark changed meter-days are migration 0013's. Two
levels are kept, both in 30-minute UTC buckets:

* ``agg_meter_30m``: per meter, energy (import, export) of every reading that is not
  rejected, the highest interval demand (kWh over the interval's hours), and counts of
  present (a real reading, not a gap row), estimated, suspect, rejected and missing (gap
  rows, estimated or not) readings;
* ``agg_group_30m``: the same summed over the meters of a grid node, a region, a tariff
  segment and the fleet (``dim`` ``fleet``, key ``all``), with ``peak_kw`` the group's
  30-minute coincident demand, one row per **commodity** of the members (migration
  0021): a water meter's m³ and a gas meter's kWh never add into the electricity total,
  and a meter with no commodity counts as electricity.

A recompute takes the marks and rebuilds those meter-days from the readings; the group
buckets they touch take the difference between the meters' new and old rows, and the
group-days of a moved meter are summed again from the meter rows. Writers mark in their
own transaction under a shared advisory lock, which a refresh takes exclusively first:
so when a refresh reads the readings, every marked write has committed, and a write it
cannot see yet leaves a mark for the next refresh. (Were a writer to mark a day that
an older mark already covers and commit after a refresh took that mark, its change would
otherwise be lost.)

Coarser buckets in a zone (hour, day, ISO week, month) are sums of whole 30-minute
buckets, which holds for every zone whose offset from UTC is a multiple of 30 minutes
(all but a few, e.g. Asia/Kathmandu, whose hours come out aligned to the half-hour).
A reading of a longer interval (hourly) counts in the bucket of its start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metrify.contracts.commodities import policy
from metrify.contracts.records import Commodity
from metrify.stores.pools import Connection

#: the advisory lock between marking writers (shared) and a refresh (exclusive); the
#: number is in migration 0013's trigger functions too
LOCK: Final = 7_305_118_246

Dim = Literal["meter", "node", "region", "segment", "fleet"]
Resolution = Literal["30m", "1h", "1d", "1w", "1mo"]

#: resolution -> the unit of PostgreSQL's date_trunc (None: the 30-minute base itself)
UNITS: Final[dict[str, str | None]] = {
    "30m": None,
    "1h": "hour",
    "1d": "day",
    "1w": "week",
    "1mo": "month",
}
#: the group dimensions and the meters column each groups by
GROUP_COLUMNS: Final = {"node": "node_id", "region": "region", "segment": "tariff"}
FLEET_KEY: Final = "all"
#: what a group answer sums when no commodity is asked for
DEFAULT_COMMODITY: Final[str] = Commodity.ELECTRICITY.value
#: a meter's commodity as the groups count it (reference data may leave it empty)
_COMMODITY_OF = "coalesce(m.commodity, 'electricity')"

COUNTS: Final = ("n_present", "n_estimated", "n_suspect", "n_rejected", "n_missing")
COLUMNS: Final = ("import_kwh", "export_kwh", "peak_kw", *COUNTS)

_UTC_DAY = "(t.day::timestamp AT TIME ZONE 'UTC')"
_NEXT_UTC_DAY = "((t.day + 1)::timestamp AT TIME ZONE 'UTC')"
_BUCKET = "date_bin('30 minutes', r.ts, timestamptz '2000-01-01 00:00:00+00')"
_KEPT = "r.status <> 'rejected'"


@dataclass(frozen=True)
class Refreshed:
    """What one refresh rebuilt: meter-days and group-days."""

    meter_days: int
    group_days: int


def refresh(conn: Connection) -> Refreshed:
    """Rebuild every marked meter-day, and bring the group buckets they touch along, in
    one transaction.

    A group's bucket is a sum over its meters' buckets, so a rebuilt meter-day changes
    its groups by exactly the difference between its new and old rows (:data:`DELTA`);
    adding that difference costs what changed, where summing every member again cost a
    whole fleet-day per late reading. Group-days a meter move marked are summed again
    from the meter rows (the move changed who the members are) and take no difference.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        conn.execute(
            "CREATE TEMP TABLE agg_todo ON COMMIT DROP AS"
            " WITH taken AS (DELETE FROM agg_dirty RETURNING meter_id, day)"
            " SELECT DISTINCT meter_id, day FROM taken"
        )
        conn.execute("ANALYZE agg_todo")
        meter_days = _count(conn, "agg_todo")
        if meter_days:
            _rebuild_meters(conn)
        conn.execute(
            "CREATE TEMP TABLE agg_group_todo ON COMMIT DROP AS"
            " WITH taken AS (DELETE FROM agg_group_dirty RETURNING dim, key, day)"
            " SELECT DISTINCT dim, key, day FROM taken"
        )
        conn.execute("ANALYZE agg_group_todo")
        group_days = _count(conn, "agg_group_todo")
        if group_days:
            _rebuild_groups(conn)
        if meter_days:
            group_days += _apply_deltas(conn)
    return Refreshed(meter_days, group_days)


def pending(conn: Connection) -> bool:
    """Whether any meter-day or group-day waits to be rebuilt."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM agg_dirty) OR EXISTS (SELECT 1 FROM agg_group_dirty)"
    ).fetchone()
    return bool(row and row[0])


def _count(conn: Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


#: the columns of a difference row, and how a meter row contributes to its groups
_DELTA_COLUMNS = ("meters", "import_kwh", "export_kwh", "n_export", *COUNTS)
_CONTRIBUTION = ("1", "import_kwh", "export_kwh", "(export_kwh IS NOT NULL)::int", *COUNTS)


def _rebuild_meters(conn: Connection) -> None:
    """Rebuild the marked meter-days, keeping the difference (new rows minus old ones)
    in the temporary table ``agg_delta`` for the groups."""
    pairs = list(zip(_CONTRIBUTION, _DELTA_COLUMNS, strict=True))
    minus = ", ".join(f"-({c}) AS {name}" for c, name in pairs)
    plus = ", ".join(f"{c} AS {name}" for c, name in pairs)
    conn.execute(
        "CREATE TEMP TABLE agg_delta ON COMMIT DROP AS"
        " WITH gone AS (DELETE FROM agg_meter_30m a USING agg_todo t"
        f" WHERE a.meter_id = t.meter_id AND a.bucket >= {_UTC_DAY}"
        f" AND a.bucket < {_NEXT_UTC_DAY} RETURNING a.*)"
        f" SELECT meter_id, bucket, {minus} FROM gone"
    )
    conn.execute(
        f"""
        WITH added AS (
            INSERT INTO agg_meter_30m (meter_id, bucket, {", ".join(COLUMNS)})
            SELECT r.meter_id, {_BUCKET},
                   coalesce(sum(r.import_kwh) FILTER (WHERE {_KEPT}), 0),
                   sum(r.export_kwh) FILTER (WHERE {_KEPT}),
                   max(r.import_kwh * 3600.0 / r.interval_s) FILTER (WHERE {_KEPT}),
                   count(*) FILTER (WHERE r.quality & 1 = 0),
                   count(*) FILTER (WHERE r.status = 'estimated'),
                   count(*) FILTER (WHERE r.status = 'suspect'),
                   count(*) FILTER (WHERE r.status = 'rejected'),
                   count(*) FILTER (WHERE r.quality & 1 <> 0)
            FROM agg_todo t JOIN readings r ON r.meter_id = t.meter_id
                 AND r.ts >= {_UTC_DAY} AND r.ts < {_NEXT_UTC_DAY}
            GROUP BY 1, 2
            RETURNING *
        )
        INSERT INTO agg_delta SELECT meter_id, bucket, {plus} FROM added
        """
    )


def _apply_deltas(conn: Connection) -> int:
    """Add the meters' differences to their groups' buckets (by the meters' groups now),
    except on the group-days summed again just before; drop buckets left without a
    member. Export stays NULL where no member has one (``n_export``), as a sum would.
    Returns how many group-days changed."""
    sums = ", ".join(f"sum(d.{c}) AS {c}" for c in _DELTA_COLUMNS)
    conn.execute(
        f"""
        CREATE TEMP TABLE agg_group_delta ON COMMIT DROP AS
        SELECT g.dim, g.key, {_COMMODITY_OF} AS commodity, d.bucket, {sums}
        FROM agg_delta d JOIN meters m ON m.meter_id = d.meter_id
        CROSS JOIN LATERAL (VALUES ('node', m.node_id), ('region', m.region),
            ('segment', m.tariff), ('fleet', '{FLEET_KEY}')) AS g(dim, key)
        WHERE g.key IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM agg_group_todo t WHERE t.dim = g.dim AND t.key = g.key
            AND t.day = (d.bucket AT TIME ZONE 'UTC')::date)
        GROUP BY 1, 2, 3, 4
        """
    )
    both = "g.{0} + EXCLUDED.{0}"
    counts = ", ".join(f"{c} = {both.format(c)}" for c in ("meters", "n_export", *COUNTS))
    conn.execute(
        f"""
        INSERT INTO agg_group_30m AS g
            (dim, key, commodity, bucket, {", ".join(_DELTA_COLUMNS)}, peak_kw)
        SELECT dim, key, commodity, bucket, {", ".join(_DELTA_COLUMNS)}, import_kwh / 0.5
        FROM agg_group_delta
        ON CONFLICT (dim, key, commodity, bucket) DO UPDATE SET {counts},
            import_kwh = {both.format("import_kwh")},
            peak_kw = ({both.format("import_kwh")}) / 0.5,
            export_kwh = CASE WHEN {both.format("n_export")} > 0
                THEN coalesce(g.export_kwh, 0) + coalesce(EXCLUDED.export_kwh, 0) END
        """
    )
    conn.execute(
        "DELETE FROM agg_group_30m a USING agg_group_delta d WHERE a.dim = d.dim"
        " AND a.key = d.key AND a.commodity = d.commodity AND a.bucket = d.bucket"
        " AND a.meters <= 0"
    )
    row = conn.execute(
        "SELECT count(DISTINCT (dim, key, (bucket AT TIME ZONE 'UTC')::date)) FROM agg_group_delta"
    ).fetchone()
    return int(row[0]) if row else 0


def _rebuild_groups(conn: Connection) -> None:
    """Rebuild the marked group-days: first each group-day's member meters with the
    day's bounds (analysed, so the planner sees its size), then one pass over those
    meters' buckets by primary key. Joined on the ranges directly, the planner chose a
    hash join filtering every bucket of every member meter (45 s for a month of 200)."""
    conn.execute(
        "DELETE FROM agg_group_30m a USING agg_group_todo t WHERE a.dim = t.dim"
        f" AND a.key = t.key AND a.bucket >= {_UTC_DAY} AND a.bucket < {_NEXT_UTC_DAY}"
    )
    members = " UNION ALL ".join(
        f"SELECT t.dim, t.key, m.meter_id, {_COMMODITY_OF} AS commodity,"
        f" {_UTC_DAY} AS lo, {_NEXT_UTC_DAY} AS hi"
        f" FROM agg_group_todo t JOIN meters m ON {on} WHERE t.dim = '{dim}'"
        for dim, on in (
            *((d, f"m.{c} = t.key") for d, c in GROUP_COLUMNS.items()),
            ("fleet", "true"),
        )
    )
    conn.execute(f"CREATE TEMP TABLE agg_members ON COMMIT DROP AS {members}")
    conn.execute("ANALYZE agg_members")
    sums = ", ".join(f"sum(a.{c})" for c in COUNTS)
    conn.execute(
        f"""
        INSERT INTO agg_group_30m
            (dim, key, commodity, bucket, meters, n_export, {", ".join(COLUMNS)})
        SELECT g.dim, g.key, g.commodity, a.bucket, count(*), count(a.export_kwh),
               sum(a.import_kwh), sum(a.export_kwh), sum(a.import_kwh) / 0.5, {sums}
        FROM agg_members g
        JOIN agg_meter_30m a ON a.meter_id = g.meter_id AND a.bucket >= g.lo AND a.bucket < g.hi
        GROUP BY 1, 2, 3, 4
        """
    )


def buckets(
    conn: Connection,
    dim: Dim,
    key: str,
    resolution: Resolution,
    start: dt.datetime,
    end: dt.datetime,
    tz: str,
    commodity: str = DEFAULT_COMMODITY,
) -> bytes:
    """The buckets of [start, end) at ``resolution`` in zone ``tz``, oldest first, as a
    JSON array: each with ``start`` (ISO, with the zone's offset then), energy, peak
    demand and the interval counts (without their ``n_`` prefix); buckets with no data
    are left out. PostgreSQL writes the JSON (in the zone, set for the transaction):
    formatting a month of hours in Python took six times as long as the query. A group
    sums its members of ``commodity`` only (a meter's buckets are its own commodity's).
    Refreshes first if anything waits, so answers include every committed write."""
    if pending(conn):
        refresh(conn)
    unit = UNITS[resolution]
    table, where, params = (
        ("agg_meter_30m", "meter_id = %s", [key])
        if dim == "meter"
        else ("agg_group_30m", "dim = %s AND key = %s AND commodity = %s", [dim, key, commodity])
    )
    start_sql = "bucket" if unit is None else "date_trunc(%s, bucket, %s)"
    head: list[Any] = [] if unit is None else [unit, tz]
    fields = ", ".join(
        [
            "'start', start",
            "'import_kwh', import_kwh",
            "'export_kwh', export_kwh",
            "'peak_kw', peak_kw",
            *(f"'{c.removeprefix('n_')}', {c}" for c in COUNTS),
        ]
    )
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTS)
    with conn.transaction():
        conn.execute("SELECT set_config('TimeZone', %s, true)", (tz,))
        row = conn.execute(
            f"""
            SELECT coalesce(json_agg(json_build_object({fields}) ORDER BY start), '[]')::text
            FROM (
                SELECT {start_sql} AS start, sum(import_kwh) AS import_kwh,
                       sum(export_kwh) AS export_kwh, max(peak_kw) AS peak_kw, {sums}
                FROM {table} WHERE {where} AND bucket >= %s AND bucket < %s
                GROUP BY 1
            ) b
            """,
            (*head, *params, start, end),
        ).fetchone()
    return str(row[0] if row else "[]").encode()


def meter_zone(conn: Connection, meter_id: str) -> tuple[bool, str | None]:
    """(known, zone): whether the meter is registered, and its zone if it has one."""
    known, zone, _ = _meter_facts(conn, meter_id)
    return known, zone


def _meter_facts(conn: Connection, meter_id: str) -> tuple[bool, str | None, str]:
    """(known, zone, commodity) of a meter; an unknown one reads as electricity."""
    row = conn.execute(
        "SELECT timezone, coalesce(commodity, 'electricity') FROM meters WHERE meter_id = %s",
        (meter_id,),
    ).fetchone()
    return (False, None, DEFAULT_COMMODITY) if row is None else (True, row[0], str(row[1]))


class BadQuery(ValueError):
    """A subject, zone or range the aggregates cannot answer (the caller's fault)."""


def subject(
    meter: str | None, node: str | None, region: str | None, segment: str | None, fleet: bool
) -> tuple[Dim, str]:
    """The one subject a query names, as (dimension, key); BadQuery unless exactly one."""
    named: list[tuple[Dim, str | None]] = [
        ("meter", meter),
        ("node", node),
        ("region", region),
        ("segment", segment),
        ("fleet", FLEET_KEY if fleet else None),
    ]
    chosen = [(dim, key) for dim, key in named if key is not None]
    if len(chosen) != 1:
        raise BadQuery("give exactly one of meter, node, region, segment or fleet")
    dim, key = chosen[0]
    assert key is not None
    return dim, key


def commodity_of(text: str | None) -> str:
    """A commodity named in a query (None: the default, electricity); BadQuery if unknown."""
    if text is None:
        return DEFAULT_COMMODITY
    try:
        return Commodity(text.strip().lower()).value
    except ValueError:
        names = ", ".join(c.value for c in Commodity)
        raise BadQuery(f"unknown commodity {text!r} (one of {names})") from None


@dataclass(frozen=True)
class Answered:
    """An energy answer: its zone, the commodity summed and the unit of its energy
    fields (``import_kwh`` holds m³ for water), and the buckets as a JSON array."""

    zone: str
    commodity: str
    unit: str
    buckets: bytes


def zone_of(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadQuery(f"unknown time zone {text!r} (an IANA name like Europe/London)") from None


def local_instant(text: str, zone: ZoneInfo) -> dt.datetime:
    """A date (local midnight) or an ISO time (naive: on the zone's clock) as an instant."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{text!r}: expected a date like 2013-06-01 or an ISO time") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def answer(
    conn: Connection,
    dim: Dim,
    key: str,
    resolution: Resolution,
    first: str,
    last: str,
    tz: str | None,
    fleet_tz: str,
    commodity: str | None = None,
) -> Answered:
    """The buckets of a subject over local [first, last) (see :func:`buckets`): in the
    meter's own zone when ``tz`` is not given (a group's: ``fleet_tz``). A group sums
    the meters of ``commodity`` (default electricity); a meter answers in its own
    commodity, and naming another one is a mistake rather than an empty answer."""
    if dim == "meter":
        known, own, measured = _meter_facts(conn, key)
        if not known:
            raise BadQuery(f"no meter {key}")
        if commodity is not None and commodity_of(commodity) != measured:
            raise BadQuery(f"meter {key} measures {measured}, not {commodity_of(commodity)}")
        name = tz or own or "UTC"
    else:
        measured = commodity_of(commodity)
        name = tz or fleet_tz
    zone = zone_of(name)
    start, end = local_instant(first, zone), local_instant(last, zone)
    if end <= start:
        raise BadQuery("--to must be after --from")
    if end - start > dt.timedelta(days=3700):
        raise BadQuery("at most ten years per query")
    body = buckets(conn, dim, key, resolution, start, end, name, measured)
    if dim in GROUP_COLUMNS and body.strip() == b"[]" and not _group_known(conn, dim, key):
        # checked only for an empty answer, so a served one costs no extra query: an
        # unknown node, region or segment was "no data in that range", exit 0, as if it
        # had existed and been quiet (an unknown meter already said "no meter X")
        raise BadQuery(f"no {_GROUP_NAMES[dim]} {key}")
    unit = policy(measured).quantity_unit
    return Answered(name, measured, unit, body)


_GROUP_NAMES: Final = {"node": "grid node", "region": "region", "segment": "segment"}


def _group_known(conn: Connection, dim: str, key: str) -> bool:
    """Whether any meter is in the group (or, for a node, the node is registered)."""
    column = GROUP_COLUMNS[dim]
    sql = f"SELECT EXISTS (SELECT 1 FROM meters WHERE {column} = %(k)s)"
    if dim == "node":
        sql += " OR EXISTS (SELECT 1 FROM grid_nodes WHERE node_id = %(k)s)"
    row = conn.execute(sql, {"k": key}).fetchone()
    return bool(row and row[0])
