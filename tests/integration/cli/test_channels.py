"""Real London households in the shapes exports with a row per value take:

* a head-end's export of OBIS-coded channels, one value per row, sorted by channel (a
  meter's import year, then its export year), with a unit column per row;
* an Australian distributor's solar home file: a row per customer, day and
  consumption category (GC general supply, CL controlled load, GG gross generation),
  48 half-hour columns.

Loaded with ``--channels`` (and ``--wide``), every stored reading holds the households'
own values, added up where the mapping says so. Expected values come from the
households, read independently of the loader."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import london_readings

runner = CliRunner()
HALF_HOUR = dt.timedelta(minutes=30)


def _stored(conn: psycopg.Connection, column: str) -> dict[tuple[str, dt.datetime], float]:
    rows = conn.execute(
        f"SELECT meter_id, ts, {column} FROM readings"
        f" WHERE quality & 1 = 0 AND {column} IS NOT NULL"
    ).fetchall()
    return {(m, ts): v for m, ts, v in rows}


def _load(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["ingest", "readings", *args, "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_an_obis_export_with_a_row_per_value_loads_whole(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    homes = london_readings(first=3).filter(pl.col("ts").dt.month() <= 3)  # a quarter
    ids = homes["meter_id"].unique(maintain_order=True).to_list()
    imports = homes.filter(pl.col("meter_id") == ids[0])
    exports = homes.filter(pl.col("meter_id") == ids[1])  # sent as the same meter's export
    other = homes.filter(pl.col("meter_id") == ids[2])
    path = tmp_path / "headend.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f, delimiter=";")
        out.writerow(["device", "timestamp", "obis", "value", "unit"])
        for meter, frame, code in (
            ("HE-1", imports, "1-0:1.29.0"),
            ("HE-2", other, "1-0:1.29.0"),
            ("HE-1", exports, "1-0:2.29.0"),
        ):
            for ts, value in frame.select("ts", "import_kwh").iter_rows():
                out.writerow([meter, f"{ts:%Y-%m-%dT%H:%M:%SZ}", code, value, "kWh"])
    summary = _load(
        str(path), "--map", "meter_id=device", "--map", "ts=timestamp",
        "--channels", "obis=value", "--interval", "1800",
    )  # fmt: skip
    assert summary["quarantined"] == 0
    # a reading per meter and time that has a value (the rows of one are one record)
    he1 = pl.concat([imports.select("ts"), exports.select("ts")]).unique().height
    assert summary["read"] == he1 + other.height

    def keyed(meter: str, frame: pl.DataFrame) -> dict[tuple[str, dt.datetime], float]:
        return {(meter, ts): v for ts, v in frame.select("ts", "import_kwh").iter_rows()}

    assert _stored(conn, "import_kwh") == keyed("HE-1", imports) | keyed("HE-2", other)
    # the export where the first household also has an import value (the rows of a
    # time the import lacks are no readings: import energy is required)
    both = exports.join(imports.select("ts"), on="ts", how="semi")
    assert _stored(conn, "export_kwh") == keyed("HE-1", both)


def test_a_distributors_day_rows_per_category_load_with_wide_and_channels(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    homes = london_readings(first=3)
    ids = homes["meter_id"].unique(maintain_order=True).to_list()
    series = {
        category: homes.filter(pl.col("meter_id") == meter)
        for category, meter in zip(("GC", "CL", "GG"), ids, strict=True)
    }
    local = dt.timezone(dt.timedelta(hours=10))  # the file's days are AEST, ends named
    days: dict[str, dict[dt.date, list[float]]] = {}
    for category, frame in series.items():
        grouped = (
            frame.with_columns(end=(pl.col("ts") + HALF_HOUR).dt.convert_time_zone("Etc/GMT-10"))
            .with_columns(day=(pl.col("end") - HALF_HOUR).dt.date())
            .group_by("day")
            .agg(pl.col("import_kwh").sort_by("ts"), n=pl.len())
            .filter(pl.col("n") == 48)
        )
        # the values as the file writes them, to the Wh
        kwh = [[round(v, 3) for v in day] for day in grouped["import_kwh"].to_list()]
        days[category] = dict(zip(grouped["day"].to_list(), kwh, strict=True))
    shared = sorted(set(days["GC"]) & set(days["CL"]) & set(days["GG"]))[:40]
    assert len(shared) == 40
    # columns named by the half-hour's end: 0:30, 1:00, ..., 23:30, 0:00 (the day's end)
    ends = [f"{(i + 1) * 30 // 60 % 24}:{(i + 1) * 30 % 60:02d}" for i in range(48)]
    path = tmp_path / "solar-home.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Customer", "Generator Capacity", "Consumption Category", "date", *ends])
        for day in shared:
            for category in ("GC", "CL", "GG"):
                values = [f"{v:.3f}" for v in days[category][day]]
                out.writerow(["7", "1.5", category, f"{day:%d/%m/%Y}", *values])
    summary = _load(
        str(path), "--map", "meter_id=Customer", "--map", "ts=date", "--tz", "+10:00",
        "--ts-end", "--wide", "kwh", "--channels", "Consumption Category=kwh",
        "--map", "import_kwh=GC+CL", "--map", "generation_kwh=GG",
    )  # fmt: skip
    assert summary["quarantined"] == 0
    expected_import, expected_generation = {}, {}
    for day in shared:
        start = dt.datetime.combine(day, dt.time(), local).astimezone(dt.UTC)
        for i in range(48):
            key = ("7", start + i * HALF_HOUR)
            expected_import[key] = days["GC"][day][i] + days["CL"][day][i]
            expected_generation[key] = days["GG"][day][i]
    stored = _stored(conn, "import_kwh")
    assert stored.keys() == expected_import.keys()
    wrong = {k: (stored[k], v) for k, v in expected_import.items() if abs(stored[k] - v) > 1e-9}
    assert wrong == {}
    assert _stored(conn, "generation_kwh") == pytest.approx(expected_generation)
