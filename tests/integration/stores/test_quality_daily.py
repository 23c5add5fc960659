"""Daily quality scores kept by increments from fresh writes and by recomputes of marked days.

The expected rows are counted here from the input with ``zoneinfo``: each reading's local
day in its meter's zone, and each day's expected count from the real length of that local
day, which differs on the days the clocks change.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import READING, Quality
from metrify.settings import Settings
from metrify.stores import quality_daily
from metrify.stores.postgres import PostgresStore

UTC = dt.UTC
#: meters and zones: two clock changes inside the data (London springs forward on
#: 2025-03-30, Adelaide falls back on 2025-04-06), one meter on UTC
ZONES = {"LDN": "Europe/London", "ADL": "Australia/Adelaide", "UTC1": None}
START = {
    "LDN": dt.datetime(2025, 3, 28, 12, tzinfo=UTC),
    "ADL": dt.datetime(2025, 4, 3, 12, tzinfo=UTC),
    "UTC1": dt.datetime(2025, 3, 28, 12, tzinfo=UTC),
}
HALF_HOURS = 5 * 48  # five days


def readings(meter: str, *, n: int = HALF_HOURS, every: int = 1800) -> list[dict[str, object]]:
    """Half-hourly rows with every status and one gap row, as the pipeline stores them."""
    rows = []
    for i in range(n):
        status, quality, kwh = "valid", 0, 0.25
        if i % 17 == 3:
            status, quality = "suspect", int(Quality.SPIKE)
        elif i % 23 == 5:
            status, quality = "rejected", int(Quality.OUT_OF_RANGE)
        elif i % 29 == 7:  # a gap, estimated: it keeps `missing`
            status, quality = "estimated", int(Quality.MISSING | Quality.ESTIMATED)
        elif i == 11:  # a gap left open
            status, quality, kwh = "valid", int(Quality.MISSING), None
        rows.append(
            {
                "meter_id": meter,
                "ts": START[meter] + dt.timedelta(seconds=every * i),
                "interval_s": every,
                "import_kwh": kwh,
                "quality": quality,
                "status": status,
            }
        )
    return rows


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = pl.DataFrame(
        rows,
        schema={
            "meter_id": pl.String(),
            "ts": pl.Datetime("us", "UTC"),
            "interval_s": pl.Int32(),
            "import_kwh": pl.Float64(),
            "quality": pl.Int32(),
            "status": pl.String(),
        },
    )
    extra = {c: pl.lit(None, t) for c, t in READING.schema.items() if c not in base.columns}
    return base.with_columns(
        **extra, source=pl.lit("file:test"), ingested_at=pl.lit(dt.datetime(2026, 1, 1, tzinfo=UTC))
    )


def expected_days(rows: list[dict[str, object]]) -> dict[tuple[str, dt.date], tuple]:
    """(meter, local day) -> (expected, present, valid, estimated, suspect, rejected,
    missing, completeness, score), counted from the rows."""
    counts: dict[tuple[str, dt.date], Counter[str]] = {}
    interval: dict[tuple[str, dt.date], int] = {}
    for r in rows:
        zone = ZoneInfo(ZONES[str(r["meter_id"])] or "UTC")
        ts = r["ts"]
        assert isinstance(ts, dt.datetime)
        key = (str(r["meter_id"]), ts.astimezone(zone).date())
        c = counts.setdefault(key, Counter())
        c[str(r["status"])] += 1
        c["present"] += int(not int(r["quality"]) & int(Quality.MISSING))  # type: ignore[call-overload]
        interval[key] = min(interval.get(key, 86400), int(r["interval_s"]))  # type: ignore[call-overload]
    out = {}
    for (meter, day), c in counts.items():
        zone = ZoneInfo(ZONES[meter] or "UTC")
        begin = dt.datetime.combine(day, dt.time(), zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        seconds = end.timestamp() - begin.timestamp()
        expected = round(seconds / interval[(meter, day)])
        share = min((c["valid"] + 0.5 * c["estimated"]) / expected, 1.0)
        # rounded half away from zero, as PostgreSQL rounds numerics
        score = float(Decimal(repr(100 * share)).quantize(Decimal("0.1"), ROUND_HALF_UP))
        out[(meter, day)] = (
            expected,
            c["present"],
            c["valid"],
            c["estimated"],
            c["suspect"],
            c["rejected"],
            max(expected - c["present"], 0),
            min(c["present"] / expected, 1.0),
            score,
        )
    return out


def stored_days(conn: psycopg.Connection) -> dict[tuple[str, dt.date], tuple]:
    rows = conn.execute(
        "SELECT meter_id, day, expected, present, valid, estimated, suspect, rejected, missing,"
        " completeness, score FROM quality_daily"
    ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def add_meters(conn: psycopg.Connection) -> None:
    for meter, zone in ZONES.items():
        conn.execute("INSERT INTO meters (meter_id, timezone) VALUES (%s, %s)", (meter, zone))


def test_fresh_batches_add_their_counts_to_each_local_day(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Two fresh batches that split days between them leave every (meter, local day) row
    as counted from the input, on clock-change days too, with nothing marked; a
    recompute of every day from the stored readings then finds the same rows."""
    add_meters(conn)
    rows = [r for meter in ZONES for r in readings(meter)]
    first = [r for r in rows if int(r["ts"].hour) < 12 or r["ts"].day % 2]  # type: ignore[attr-defined]
    second = [r for r in rows if r not in first]
    store = PostgresStore(conn)
    assert store.write_series(READING, frame(first)).inserted == len(first)
    assert store.write_series(READING, frame(second)).inserted == len(second)
    want = expected_days(rows)
    # the clock changes are in the data: a 23-hour and a 25-hour local day
    assert want[("LDN", dt.date(2025, 3, 30))][0] == 46
    assert want[("ADL", dt.date(2025, 4, 6))][0] == 50
    assert conn.execute("SELECT count(*) FROM quality_dirty").fetchone() == (0,)
    assert stored_days(conn) == want
    # the recompute agrees with the increments
    conn.execute(
        "INSERT INTO quality_dirty SELECT DISTINCT meter_id, (ts AT TIME ZONE 'UTC')::date"
        " FROM readings"
    )
    assert store.refresh_quality_daily() >= len(want)
    assert stored_days(conn) == want


def test_a_thin_batch_marks_its_days_and_a_refresh_counts_them(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A stream batch of a reading or two per meter-day is marked, not added (adding
    would rewrite each day's row with every batch); the refresh then counts the days."""
    add_meters(conn)
    rows = [r for meter in ZONES for r in readings(meter, n=2)]
    store = PostgresStore(conn)
    store.write_series(READING, frame(rows))
    assert conn.execute("SELECT count(*) FROM quality_daily").fetchone() == (0,)
    marked = conn.execute("SELECT count(*) FROM quality_dirty").fetchone()
    assert marked is not None and marked[0] >= len(ZONES)
    assert store.refresh_quality_daily() == len(expected_days(rows))
    assert stored_days(conn) == expected_days(rows)


def test_a_recompute_waits_for_an_increment_under_way(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A recompute that ran while a fresh batch's transaction was open would write counts
    without that batch's rows over its increment; it waits for the transaction instead."""
    add_meters(conn)
    old = readings("UTC1")
    store = PostgresStore(conn)
    store.write_series(READING, frame(old[:96]))
    # a correction elsewhere marked the days this batch also adds to
    conn.execute(
        "INSERT INTO quality_dirty SELECT DISTINCT meter_id, (ts AT TIME ZONE 'UTC')::date"
        " FROM readings"
    )
    url = settings.database_url
    assert url is not None
    result: list[int] = []
    with conn.transaction():
        store.write_series(READING, frame(old[96:]))  # the increment, not committed yet

        def recompute() -> None:
            with psycopg.connect(url.get_secret_value(), autocommit=True) as other:
                result.append(quality_daily.refresh(other))

        thread = threading.Thread(target=recompute)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive()  # waiting for the increment's transaction
    thread.join(timeout=30)
    assert result and result[0] > 0
    assert stored_days(conn) == expected_days(old)


# --------------------------------------------------------------------------- expected count


def expected_by_sql(conn: psycopg.Connection, day: dt.date, tz: str, interval_s: int) -> int:
    sql = quality_daily.expected_intervals("%(day)s::date", "%(tz)s::text", "%(iv)s::int")
    row = conn.execute(f"SELECT {sql}", {"day": day, "tz": tz, "iv": interval_s}).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("day", "tz", "interval_s", "expected"),
    [
        (dt.date(2013, 3, 31), "Europe/London", 1800, 46),  # clocks go forward: 23 hours
        (dt.date(2013, 10, 27), "Europe/London", 1800, 50),  # clocks go back: 25 hours
        (dt.date(2013, 6, 1), "Europe/London", 1800, 48),
        (dt.date(2013, 3, 31), "Europe/London", 900, 92),
        (dt.date(2013, 10, 27), "Europe/London", 900, 100),
        (dt.date(2013, 6, 1), "Europe/London", 900, 96),
        (dt.date(2025, 4, 6), "Australia/Adelaide", 1800, 50),  # autumn in the south
        (dt.date(2025, 10, 5), "Australia/Adelaide", 1800, 46),
        (dt.date(2013, 3, 31), "UTC", 1800, 48),
        (dt.date(2013, 3, 31), "UTC", 86400, 1),
    ],
)
def test_expected_intervals_of_a_local_day(
    settings: Settings,
    conn: psycopg.Connection,
    day: dt.date,
    tz: str,
    interval_s: int,
    expected: int,
) -> None:
    assert expected_by_sql(conn, day, tz, interval_s) == expected


def test_expected_intervals_follow_the_real_day_length_all_year(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Every day of a year in zones with and without clock changes, against the length
    of the local day as ``zoneinfo`` measures it."""
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    for tz in ("Europe/London", "America/New_York", "Australia/Adelaide", "Asia/Kolkata"):
        zone = ZoneInfo(tz)
        for interval_s in (900, 1800, 3600):
            sql = quality_daily.expected_intervals("d", "%(tz)s::text", "%(iv)s::int")
            got = conn.execute(
                f"SELECT {sql} FROM unnest(%(days)s::date[]) AS d ORDER BY d",
                {"days": days, "tz": tz, "iv": interval_s},
            ).fetchall()
            want = []
            for day in days:
                begin = dt.datetime.combine(day, dt.time(), zone)
                end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
                want.append(round((end.timestamp() - begin.timestamp()) / interval_s))
            assert [r[0] for r in got] == want, (tz, interval_s)


def _half_hours(meter: str, first: dt.datetime, n: int) -> list[dict[str, object]]:
    return [
        {"meter_id": meter, "ts": first + dt.timedelta(minutes=30 * i), "import_kwh": 0.2}
        for i in range(n)
    ]


def test_the_report_defaults_to_the_latest_complete_day(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A load that ended at 14:00 leaves every meter's newest day short: that day is not
    the default. A single meter's gap does not make a day partial."""
    from support.pipeline import submit_frames

    day1 = dt.datetime(2025, 3, 3, tzinfo=UTC)
    rows = [r for m in ("P1", "P2", "P3") for r in _half_hours(m, day1, 48 + 28)]
    submit_frames(settings, READING, [pl.DataFrame(rows).with_columns(interval_s=pl.lit(1800))])
    report = quality_daily.quality_report(conn, None)
    assert report is not None and report["day"] == "2025-03-03"
    # the rest of the second day arrives, but P3 misses one half-hour of it
    rest = [
        r
        for m in ("P1", "P2", "P3")
        for r in _half_hours(m, day1 + dt.timedelta(hours=38), 20)
        if not (m == "P3" and r["ts"] == day1 + dt.timedelta(hours=47, minutes=30))
    ]
    submit_frames(settings, READING, [pl.DataFrame(rest).with_columns(interval_s=pl.lit(1800))])
    report = quality_daily.quality_report(conn, None)
    assert report is not None and report["day"] == "2025-03-04"
