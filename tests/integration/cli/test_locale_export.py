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
    stored = _stored(conn, meter)
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
    stored = _stored(conn, meter)
    assert stored["ts"].to_list() == original["ts"].to_list()
    assert stored["import_kwh"].round(3).to_list() == original["import_kwh"].round(3).to_list()


def test_a_utility_download_with_lines_above_its_table_loads_as_the_household(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A customer download in the shape US utilities give (Green Button CSV): name,
    address and account lines above the table, the date and the start time in two
    columns, times local to the utility (here America/New_York, across its DST change
    of 10 March 2013), usage in kWh and cost columns. Without --skip-lines the command
    stops before storing anything, saying so; with it, the household's own readings."""
    original = london_readings(first=1).filter(
        pl.col("ts").is_between(
            dt.datetime(2013, 3, 1, tzinfo=dt.UTC), dt.datetime(2013, 3, 20, tzinfo=dt.UTC)
        )
    )
    york = ZoneInfo("America/New_York")
    lines = ["Name,A CUSTOMER", 'Address,"1 MAIN ST, ANYTOWN"', "Account Number,1234", ""]
    lines.append("TYPE,DATE,START TIME,END TIME,USAGE (kWh),COST,NOTES")
    for _, ts, kwh in original.iter_rows():
        start = ts.astimezone(york)
        end = start + dt.timedelta(minutes=29)
        lines.append(f"Electric usage,{start:%Y-%m-%d},{start:%H:%M},{end:%H:%M},{kwh:.3f},$0.01,")
    path = tmp_path / "download.csv"
    path.write_text("\n".join(lines) + "\n")
    args = [
        "ingest", "readings", str(path), "--set", "meter_id=US-1",
        "--map", "ts=DATE+START TIME", "--map", "import_kwh=USAGE (kWh)",
        "--tz", "America/New_York", "--interval", "1800", "--json",
    ]  # fmt: skip
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--skip-lines" in refused.output
    result = runner.invoke(app, [*args, "--skip-lines", "4"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["quarantined"] == 0, summary["reasons"]
    stored = _stored(conn, "US-1")
    assert stored["ts"].to_list() == original["ts"].to_list()
    assert stored["import_kwh"].round(3).to_list() == original["import_kwh"].round(3).to_list()


def test_a_spreadsheet_of_a_real_household_loads_as_the_household(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A year of a real household as a back office's spreadsheet: a title and a blank
    row above the table, the date and the time of day in cells of their own types,
    local time (Europe/Berlin, both DST changes), the meter as a number cell, the energy
    as number cells, an empty row in the middle of the table and a total under it."""
    import xlsxwriter

    original = london_readings(first=1)
    berlin = ZoneInfo("Europe/Berlin")
    path = tmp_path / "Lastgang 2013.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Lastgang")
    day, clock = (
        book.add_format({"num_format": "dd.mm.yyyy"}),
        book.add_format({"num_format": "hh:mm"}),
    )
    sheet.write(0, 0, "Lastgang Zählpunkt 4711, Jahr 2013")
    for col, name in enumerate(["Zählpunkt", "Datum", "Uhrzeit", "Verbrauch (kWh)"]):
        sheet.write(2, col, name)
    row = 3
    for i, (_, ts, kwh) in enumerate(original.iter_rows()):
        if i == 100:
            row += 1  # an empty row: no row of the table
        local = ts.astimezone(berlin)
        sheet.write_number(row, 0, 4711)
        sheet.write_datetime(row, 1, dt.datetime(local.year, local.month, local.day), day)
        sheet.write_datetime(row, 2, dt.time(local.hour, local.minute), clock)
        sheet.write_number(row, 3, kwh)
        row += 1
    sheet.write(row, 1, "Summe")  # the total under the table: text in the date column
    sheet.write_number(row, 3, float(original["import_kwh"].sum()))
    book.close()

    result = runner.invoke(
        app,
        [
            "ingest", "readings", str(path), "--skip-lines", "2",
            "--map", "meter_id=Zählpunkt", "--map", "ts=Datum+Uhrzeit",
            "--map", "import_kwh=Verbrauch (kWh)", "--tz", "Europe/Berlin",
            "--interval", "1800", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # the total row is no reading, and the only row quarantined
    assert (summary["quarantined"], summary["reasons"]) == (1, {"missing meter_id": 1})
    assert summary["read"] == original.height + 1
    stored = _stored(conn, "4711")
    assert stored["ts"].to_list() == original["ts"].to_list()
    assert stored["import_kwh"].to_list() == original["import_kwh"].to_list()


def test_a_file_of_day_rows_loads_as_the_household(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A real household in the shape Australian distributors publish customer data: a
    row per day (its date day first, with slashes), then 48 columns named by the end
    of each half hour, 0:30 to 0:00 (the day's end), in market time (UTC+10 all year).
    --wide turns each row into its half hours; every stored value is the original's."""
    original = london_readings(first=1)
    local = original.with_columns(at=pl.col("ts") + pl.duration(hours=10))
    days = (
        local.group_by(day=pl.col("at").dt.date())
        .agg(pl.col("import_kwh").sort_by("at"), pl.col("ts").sort(), n=pl.len())
        .filter(pl.col("n") == 48)
        .sort("day")
        .head(60)
    )
    ends = [*[f"{h}:{m:02d}" for h in range(24) for m in (0, 30)][1:], "0:00"]
    lines = [",".join(["Customer", "Postcode", "date", *ends])]
    for day, values, _, _ in days.iter_rows():
        cells = [f"{v:.3f}" for v in values]
        lines.append(",".join(["7", "2000", f"{day.day}/{day.month:02d}/{day.year}", *cells]))
    path = tmp_path / "customer-7.csv"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app,
        [
            "ingest", "readings", str(path), "--wide", "import_kwh",
            "--map", "meter_id=Customer", "--map", "ts=date", "--ts-end",
            "--tz", "+10:00", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["quarantined"] == 0, summary["reasons"]
    assert summary["read"] == days.height * 48
    assert summary["intervals_detected"] == {"1800": 1}  # from the half hours
    assert any("'Postcode'" in w for w in summary["warnings"])
    stored = _stored(conn, "7")
    expected = days.explode("import_kwh", "ts").sort("ts")
    assert stored["ts"].to_list() == expected["ts"].to_list()
    assert stored["import_kwh"].to_list() == expected["import_kwh"].round(3).to_list()


def _stored(conn: psycopg.Connection, meter: str) -> pl.DataFrame:
    """The meter's real readings as stored (not the gaps' rows), in time order."""
    return pl.DataFrame(
        conn.execute(
            "SELECT ts, import_kwh FROM readings WHERE meter_id = %s"
            " AND quality & 1 = 0 ORDER BY ts",
            (meter,),
        ).fetchall(),
        schema={"ts": pl.Datetime("us", "UTC"), "import_kwh": pl.Float64},
        orient="row",
    )
