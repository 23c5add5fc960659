"""A meter's time zone decides which local days its daily quality scores count.

The zone given with ``--tz`` is kept on the meters a load registers, and a meter whose
zone changes later (a meters file) has its days counted again in the new zone.
Australia/Brisbane has no daylight saving: UTC+10 all year, so its local day 2013-01-01
is 2012-12-31T14:00Z .. 2013-01-01T14:00Z, 48 half-hours; counted as UTC days the same
readings fall 20 on 2012-12-31 (14:00..23:30) and 28 on 2013-01-01.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP

ZONE = "Australia/Brisbane"
START = dt.datetime(2013, 1, 1)  # local midnight in ZONE


def readings_file(path: Path, *, local: bool) -> Path:
    """One local day of half-hours for meter B1, written as local or as UTC times."""
    lines = ["LCLid,tstp,energy(kWh/hh)"]
    for i in range(48):
        at = START + dt.timedelta(minutes=30 * i)
        if not local:
            at -= dt.timedelta(hours=10)
        lines.append(f"B1,{at:%Y-%m-%d %H:%M:%S},0.5")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.stdout + result.stderr


def days(conn: psycopg.Connection) -> list[tuple[dt.date, int, int]]:
    return conn.execute(
        "SELECT day, present, expected FROM quality_daily WHERE meter_id = 'B1' ORDER BY day"
    ).fetchall()


def test_the_zone_given_on_the_way_in_is_kept(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = readings_file(tmp_path / "local.csv", local=True)
    run("ingest", "readings", str(path), *LONDON_MAP, "--tz", ZONE)
    assert conn.execute("SELECT timezone FROM meters WHERE meter_id = 'B1'").fetchone() == (ZONE,)
    assert days(conn) == [(dt.date(2013, 1, 1), 48, 48)]


def test_a_zone_registered_later_recounts_the_days(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = readings_file(tmp_path / "utc.csv", local=False)
    run("ingest", "readings", str(path), *LONDON_MAP)
    assert days(conn) == [(dt.date(2012, 12, 31), 20, 48), (dt.date(2013, 1, 1), 28, 48)]
    meters = tmp_path / "meters.csv"
    meters.write_text(f"meter_id,timezone\nB1,{ZONE}\n")
    run("ingest", "meters", str(meters))
    assert days(conn) == [(dt.date(2013, 1, 1), 48, 48)]
    # the same zone again changes nothing
    run("ingest", "meters", str(meters))
    assert days(conn) == [(dt.date(2013, 1, 1), 48, 48)]
