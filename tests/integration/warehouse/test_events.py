"""Meter events in the warehouse: a head-end's event log goes through ``metrify ingest
events`` (its own names for the events, a line no name fits, a re-sent file, a changed
code) into the store and the lake's ``events`` table; dbt builds ``stg_events`` and
``fct_meter_events_daily`` on DuckDB (from the lake), on PostgreSQL (from the store) and
on Snowflake's SQL through fakesnow (landing tables filled from the lake).

The expected rows are computed here from the log's text: the head-end names mapped by
this test's own table, local days with :mod:`zoneinfo` in each meter's zone (UTC, the
fleet zone, for a meter that names none or is not registered), and outages by walking
each meter's failures and restores in time order. Several events sit on a local-day
boundary that is not the UTC one: Amsterdam on the night its clocks go forward, New York
four hours behind UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import psycopg
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from metrify.batch import dbt
from metrify.cli import app
from metrify.settings import Settings
from metrify.stores import warehouse
from metrify.stores.lake import Lake
from support.fake_snowflake import snowflake_target

pytestmark = [
    pytest.mark.slow,
    # fakesnow's own notice, on every result it hands dbt-snowflake
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result"),
]

UTC = dt.UTC
#: registered meters and their zone ("" names none: the fleet zone, UTC here)
METERS = {"A1": "Europe/Amsterdam", "N1": "America/New_York", "F1": ""}
#: U9 reports events but is not registered; the store keeps them, so must the warehouse
LOG = """Meter,When,What,Code
A1,2025-03-29T22:59:00Z,Clock adjusted,
A1,2025-03-29T23:00:00Z,Clock adjusted,
A1,2025-03-29T23:30:00Z,Power Off,3.26.0.85
A1,2025-03-30T00:15:00Z,Power On,3.26.0.216
A1,2025-03-30T21:50:00Z,Power Off,
A1,2025-03-30T22:00:00Z,Power Off,
A1,2025-03-30T22:40:00Z,Power On,
A1,2025-03-30T22:40:00Z,Terminal cover open,40
N1,2025-03-30T02:00:00Z,Reverse flow,
N1,2025-03-30T03:59:59Z,Reverse flow,
N1,2025-03-30T04:00:00Z,Tampering,
N1,2025-03-30T05:00:00Z,Power On,
N1,2025-03-30T06:00:30Z,Power Off,
N1,2025-03-30T07:15:00Z,Power On,
F1,2025-03-30T12:00:00Z,Magnetic tamper,
F1,2025-03-30T23:59:59Z,Power Off,
F1,2025-03-31T00:00:00Z,Cover closed,41
U9,2025-03-30T10:00:00Z,Clock adjusted,4
U9,2025-03-30T11:00:00Z,Alien landing,
"""
#: the head-end's names as the contract's events, written out here (not the pipeline's
#: table); "Alien landing" is none of them and goes to quarantine
NAMES = {
    "Clock adjusted": "clock_set",
    "Power Off": "power_failure",
    "Power On": "power_restore",
    "Terminal cover open": "cover_open",
    "Reverse flow": "reverse_running",
    "Tampering": "tamper",
    "Magnetic tamper": "magnetic_field",
    "Cover closed": "cover_close",
}
#: a second report of one event, with another code: it replaces the first
CHANGED = ("A1", "2025-03-30T22:40:00Z", "Terminal cover open", "40", "41")

Key = tuple[str, dt.date, str]
Row = tuple[int, dt.datetime, dt.datetime, int | None, int | None, float | None]

MART = (
    "SELECT meter_id, local_day, event, events, first_ts, last_ts, outages, open_outages,"
    " outage_minutes FROM marts.fct_meter_events_daily"
)


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _ingest(path: Path) -> None:
    run(
        "ingest", "events", str(path),
        "--map", "meter_id=Meter", "--map", "ts=When", "--map", "event=What",
        "--map", "code=Code",
    )  # fmt: skip


def _events() -> list[tuple[str, dt.datetime, str]]:
    """(meter, UTC instant, event) of every line a name fits, once per key."""
    out = set()
    for line in csv.DictReader(io.StringIO(LOG)):
        if line["What"] in NAMES:
            ts = dt.datetime.fromisoformat(line["When"].replace("Z", "+00:00"))
            out.add((line["Meter"], ts, NAMES[line["What"]]))
    return sorted(out, key=lambda e: (e[0], e[1], e[2]))


def _local_day(meter: str, ts: dt.datetime) -> dt.date:
    zone = METERS.get(meter) or "UTC"
    return ts.astimezone(ZoneInfo(zone)).date()


def expected() -> dict[Key, Row]:
    """Per meter, local day and event: count, first, last; on power failures the outages
    begun that day (count, open, restored minutes)."""
    events = _events()
    groups: dict[Key, list[dt.datetime]] = defaultdict(list)
    for meter, ts, event in events:
        groups[(meter, _local_day(meter, ts), event)].append(ts)
    # outages: a failure while none is open begins one, the next restore ends it
    begun: dict[tuple[str, dt.date], list[float | None]] = defaultdict(list)
    for meter in {e[0] for e in events}:
        start: dt.datetime | None = None
        for m, ts, event in events:  # sorted by meter, ts, event
            if m != meter:
                continue
            if event == "power_failure" and start is None:
                start = ts
                begun[(meter, _local_day(meter, ts))].append(None)
            elif event == "power_restore" and start is not None:
                begun[(meter, _local_day(meter, start))][-1] = (ts - start).total_seconds() / 60
                start = None
    out: dict[Key, Row] = {}
    for (meter, day, event), times in groups.items():
        failures = event == "power_failure"
        lengths = begun.get((meter, day), [])
        out[(meter, day, event)] = (
            len(times),
            min(times),
            max(times),
            len(lengths) if failures else None,
            sum(1 for x in lengths if x is None) if failures else None,
            sum(x for x in lengths if x is not None) if failures else None,
        )
    return out


def _by_key(rows: list[tuple[Any, ...]]) -> dict[Key, Row]:
    return {
        (str(m), d, str(e)): (
            int(n),
            first.astimezone(UTC),
            last.astimezone(UTC),
            outages,
            open_outages,
            None if minutes is None else float(minutes),
        )
        for m, d, e, n, first, last, outages, open_outages, minutes in rows
    }


def _assert_mart(actual: dict[Key, Row], want: dict[Key, Row]) -> None:
    assert actual.keys() == want.keys()
    for key, (n, first, last, outages, open_outages, minutes) in want.items():
        assert actual[key][:5] == (n, first, last, outages, open_outages), key
        assert actual[key][5] == (None if minutes is None else pytest.approx(minutes)), key


def _stale_version_in_lake(settings: Settings) -> None:
    """An older version of the changed event beside its current row, as Snowflake's
    landing table holds after a changed event loads again: staging must keep the newer."""
    lake = Lake(settings.lake)
    meter, when, _, _, new_code = CHANGED
    ts = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    current = lake.read("events").filter(
        (pl.col("meter_id") == meter) & (pl.col("ts") == ts) & (pl.col("event") == "cover_open")
    )
    assert current["code"].to_list() == [new_code]
    stale = current.with_columns(pl.col("ingested_at") - dt.timedelta(days=1), code=pl.lit("stale"))
    write_deltalake(lake.uri("events"), stale.to_arrow(), mode="append", partition_by=["date"])
    assert lake.read("events").height == len(_events()) + 1


def test_event_mart_equals_the_event_log_on_duckdb_postgres_and_snowflake(
    settings: Settings, tmp_path: Path, database_url: str
) -> None:
    meters = tmp_path / "meters.csv"
    meters.write_text(
        "meter_id,region,timezone,status\n"
        + "".join(f"{m},north,{zone},active\n" for m, zone in METERS.items())
    )
    run("ingest", "meters", str(meters))
    log = tmp_path / "events.csv"
    log.write_text(LOG)
    _ingest(log)
    _ingest(log)  # re-sent: changes nothing
    meter, when, what, old_code, new_code = CHANGED
    changed = tmp_path / "changed.csv"
    changed.write_text(f"Meter,When,What,Code\n{meter},{when},{what},{new_code}\n")
    assert f"{meter},{when},{what},{old_code}" in LOG
    _ingest(changed)
    _stale_version_in_lake(settings)

    want = expected()
    # the boundary cases are there: local days that are not the UTC day
    assert want[("A1", dt.date(2025, 3, 30), "clock_set")][0] == 1  # 23:00Z is local 00:00
    assert ("N1", dt.date(2025, 3, 29), "reverse_running") in want  # 02:00Z is 22:00 EDT
    assert want[("A1", dt.date(2025, 3, 30), "power_failure")][3:] == (2, 0, 45 + 50)

    built = dbt.build(settings)
    assert built.success and not built.failures, [(n.name, n.message) for n in built.failures]
    names = {n.name for n in built.nodes}
    assert {"stg_events", "fct_meter_events_daily"} <= names
    assert any(n.startswith("accepted_values_stg_events_event") for n in names), names
    _assert_mart(_by_key(warehouse.query(settings, MART)), want)
    # one row per event in staging, the newer code of the changed one
    staged = warehouse.query(settings, "SELECT meter_id, ts, event, code FROM staging.stg_events")
    assert len(staged) == len(_events())
    codes = {(m, ts.astimezone(UTC), e): c for m, ts, e, c in staged}
    at = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    assert codes[(meter, at, "cover_open")] == new_code

    try:
        on_postgres = dbt.build(settings, target="postgres")
        assert on_postgres.success and not on_postgres.failures, [
            (n.name, n.message) for n in on_postgres.failures
        ]
        with psycopg.connect(database_url) as conn:
            _assert_mart(_by_key(conn.execute(MART).fetchall()), want)
            staged = conn.execute(
                "SELECT meter_id, ts, event, code FROM staging.stg_events"
            ).fetchall()
        assert len(staged) == len(_events())
        assert {(m, t, e): c for m, t, e, c in staged}[(meter, at, "cover_open")] == new_code
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for schema in ("staging", "intermediate", "marts"):
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    # Snowflake's SQL, on fakesnow: its landing table holds every row the lake has, the
    # stale version too (as a Snowflake fed by COPY INTO would after the changed event)
    import snowflake.connector

    with snowflake_target(tmp_path / "fakesnow", Lake(settings.lake), ("events",)) as target:
        on_snowflake = dbt.build(target, target="snowflake")
        assert on_snowflake.success and not on_snowflake.failures, [
            (n.name, n.message) for n in on_snowflake.failures
        ]
        reader = snowflake.connector.connect(database="METRIFY", schema="MARTS")
        try:
            cur = reader.cursor()
            cur.execute(MART)
            _assert_mart(_by_key(cur.fetchall()), want)
            cur.execute("SELECT code FROM METRIFY.STAGING.STG_EVENTS WHERE event = 'cover_open'")
            assert cur.fetchall() == [(new_code,)]
        finally:
            reader.close()
