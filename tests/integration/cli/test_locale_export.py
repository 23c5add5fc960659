"""A real London household rewritten as a German spreadsheet export would write it:
semicolons, day-first dates with dots in local time (Europe/Berlin), decimal commas.
Loaded with only the column names and the zone, the store holds the household's own
readings: every key and value equal to those read from the original file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import london_readings

runner = CliRunner()


def test_a_german_export_of_a_real_household_loads_as_the_household(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    original = london_readings(first=1).filter(
        pl.col("ts") < dt.datetime(2013, 3, 1, tzinfo=dt.UTC)  # CET all along: UTC+1
    )
    meter = original["meter_id"][0]
    lines = ["Datum;Zählpunkt;Verbrauch (kWh)"]
    for _, ts, kwh in original.iter_rows():
        local = ts + dt.timedelta(hours=1)
        lines.append(f"{local:%d.%m.%Y %H:%M};{meter};{kwh:.3f}")
    path = tmp_path / "export.csv"
    path.write_text(
        "\n".join(line if i == 0 else _decimal_comma(line) for i, line in enumerate(lines)) + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            "ingest", "readings", str(path),
            "--map", "ts=Datum", "--map", "meter_id=Zählpunkt",
            "--map", "import_kwh=Verbrauch (kWh)", "--tz", "Europe/Berlin", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["quarantined"] == 0, summary["reasons"]
    stored = pl.DataFrame(
        conn.execute(
            "SELECT ts, import_kwh FROM readings WHERE meter_id = %s"
            " AND quality & 1 = 0 ORDER BY ts",  # real readings, not the gaps' rows
            (meter,),
        ).fetchall(),
        schema={"ts": pl.Datetime("us", "UTC"), "import_kwh": pl.Float64},
        orient="row",
    )
    assert stored["ts"].to_list() == original["ts"].to_list()
    assert stored["import_kwh"].round(3).to_list() == original["import_kwh"].round(3).to_list()


def _decimal_comma(line: str) -> str:
    """The value's point as a comma (the date's dots stay)."""
    head, value = line.rsplit(";", 1)
    return f"{head};{value.replace('.', ',')}"


def test_a_load_profile_export_with_date_and_time_apart_loads_as_the_household(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The shape of a German load profile (Lastgang) from a Windows tool: cp1252 bytes,
    the date and the time in two columns, each interval named by its END in local time
    (so a day's last interval ends at ``24:00`` of that day), a whole year across both
    DST changes, decimal commas."""
    original = london_readings(first=1)
    meter = original["meter_id"][0]
    berlin = ZoneInfo("Europe/Berlin")
    lines = ["Zählpunkt;Datum;Uhrzeit;Wirkarbeit (kWh)"]
    for _, ts, kwh in original.iter_rows():
        end = (ts + dt.timedelta(minutes=30)).astimezone(berlin)
        if (end.hour, end.minute) == (0, 0):
            date, time = end - dt.timedelta(days=1), "24:00"
        else:
            date, time = end, f"{end:%H:%M}"
        lines.append(f"{meter};{date:%d.%m.%Y};{time};{kwh:.3f}")
    text = "\n".join(lines[:1] + [_decimal_comma(line) for line in lines[1:]]) + "\n"
    path = tmp_path / "lastgang.csv"
    path.write_bytes(text.encode("cp1252"))
    args = [
        "ingest", "readings", str(path),
        "--map", "meter_id=Zählpunkt", "--map", "ts=Datum+Uhrzeit",
        "--map", "import_kwh=Wirkarbeit (kWh)", "--ts-end", "--tz", "Europe/Berlin",
        "--interval", "1800", "--json",
    ]  # fmt: skip

    refused = runner.invoke(app, args)
    assert refused.exit_code != 0
    assert "--encoding" in refused.output and "Traceback" not in refused.output

    result = runner.invoke(app, [*args, "--encoding", "cp1252"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["quarantined"] == 0, summary["reasons"]
    stored = pl.DataFrame(
        conn.execute(
            "SELECT ts, import_kwh FROM readings WHERE meter_id = %s"
            " AND quality & 1 = 0 ORDER BY ts",
            (meter,),
        ).fetchall(),
        schema={"ts": pl.Datetime("us", "UTC"), "import_kwh": pl.Float64},
        orient="row",
    )
    assert stored["ts"].to_list() == original["ts"].to_list()
    assert stored["import_kwh"].round(3).to_list() == original["import_kwh"].round(3).to_list()
