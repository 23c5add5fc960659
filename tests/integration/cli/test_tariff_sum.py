"""The Dutch home's hourly export (DSMR-reader): electricity per tariff in two columns,
returned energy in two more, times with a UTC offset. Mapped as sums, every hour stores
the two tariffs added up; the expected values come from the file, read with the csv
module."""

from __future__ import annotations

import csv
import datetime as dt
import json

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import shared_data

runner = CliRunner()
T1, T2 = "Electricity 1 (Dutch Users: Low Tariff)", "Electricity 2 (Dutch Users: Normal Tariff)"
R1 = "Electricity 1 Returned (Dutch Users: Low Tariff)"
R2 = "Electricity 2 Returned (Dutch Users: Normal Tariff)"


def test_tariff_columns_load_as_the_meters_whole_energy(
    settings: Settings, conn: psycopg.Connection
) -> None:
    path = shared_data() / "dutch-home-hourly-2024" / "dsmrreader-data-export-hour.csv"
    expected = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            start = dt.datetime.fromisoformat(row["Hour Start"]).astimezone(dt.UTC)
            expected[start] = (float(row[T1]) + float(row[T2]), float(row[R1]) + float(row[R2]))
    result = runner.invoke(
        app,
        [
            "ingest", "readings", str(path), "--set", "meter_id=NL-HOME",
            "--map", "ts=Hour Start", "--map", f"import_kwh={T1}+{T2}",
            "--map", f"export_kwh={R1}+{R2}", "--interval", "3600", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["quarantined"] == 0
    assert not any("Electricity" in w for w in summary["warnings"])  # all four were read
    stored = {
        ts: (imp, exp)
        for ts, imp, exp in conn.execute(
            "SELECT ts, import_kwh, export_kwh FROM readings"
            " WHERE meter_id = 'NL-HOME' AND quality & 1 = 0"  # the file's hours, not gaps
        ).fetchall()
    }
    assert stored.keys() == expected.keys()
    for ts, (imp, exp) in expected.items():
        assert stored[ts] == (pytest.approx(imp), pytest.approx(exp))
    total = sum(v[0] for v in expected.values())
    assert sum(v[0] for v in stored.values()) == pytest.approx(total)
