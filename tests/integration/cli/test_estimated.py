"""A real London household's month as a meter data provider sends it: some days are the
provider's estimates, marked in a column of their own. Loaded with ``--map
estimated=COLUMN``, exactly those readings carry the ``estimated`` bit; the actual reads
sent later replace them even where the values are the same, and a third delivery of the
same file changes nothing. The expected readings come from the file as written."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import polars as pl
import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import london_readings

runner = CliRunner()
ESTIMATED = 256
ESTIMATED_DAYS = (5, 6, 19)  # days of January the provider had no read of


def _write(path: Path, rows: list[dict[str, object]], marked: bool) -> None:
    with path.open("w", newline="") as f:
        columns = ["MeterId", "Start", "kWh", *(["Quality"] if marked else [])]
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            ts = row["ts"]
            assert isinstance(ts, dt.datetime)
            estimate = ts.day in ESTIMATED_DAYS
            quality = ["E" if estimate else "A"] if marked else []
            writer.writerow([row["meter_id"], f"{ts:%Y-%m-%d %H:%M}", row["import_kwh"], *quality])


def _load(path: Path, marked: bool) -> dict[str, object]:
    options = ["--map", "estimated=Quality"] if marked else []
    result = runner.invoke(
        app,
        [
            "ingest", "readings", str(path), "--map", "meter_id=MeterId", "--map", "ts=Start",
            "--map", "import_kwh=kWh", "--interval", "1800", *options, "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _marked(conn: psycopg.Connection) -> set[dt.datetime]:
    rows = conn.execute(
        "SELECT ts FROM readings WHERE quality & %s <> 0 AND quality & 1 = 0", (ESTIMATED,)
    ).fetchall()
    return {r[0] for r in rows}


def test_a_providers_estimates_are_stored_estimated_until_the_actual_reads_come(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    home = london_readings(first=1)
    january = home.filter(pl.col("ts").dt.month() == 1)
    rows = january.to_dicts()
    estimates = {r["ts"] for r in rows if r["ts"].day in ESTIMATED_DAYS}
    assert len(estimates) >= 100  # the household has those days

    _write(tmp_path / "month.csv", rows, marked=True)
    summary = _load(tmp_path / "month.csv", marked=True)
    assert summary["quarantined"] == 0
    assert _marked(conn) == estimates
    # the estimates VEE found valid are stored as estimated; the values are the file's
    valid_marked = conn.execute(
        "SELECT count(*) FROM readings WHERE quality & %s <> 0 AND status = 'valid'",
        (ESTIMATED,),
    ).fetchone()
    assert valid_marked == (0,)
    stored = dict(
        conn.execute("SELECT ts, import_kwh FROM readings WHERE quality & 1 = 0").fetchall()
    )
    assert stored == {r["ts"]: r["import_kwh"] for r in rows}

    # the actual reads of those days, the same values: the marks go, nothing else moves
    actual = [r for r in rows if r["ts"] in estimates]
    _write(tmp_path / "actual.csv", actual, marked=False)
    summary = _load(tmp_path / "actual.csv", marked=False)
    assert (summary["updated"], summary["unchanged"]) == (len(actual), 0)
    assert _marked(conn) == set()
    history = conn.execute(
        "SELECT count(*) FROM reading_history WHERE quality & %s <> 0", (ESTIMATED,)
    ).fetchone()
    assert history == (len(actual),)  # the estimates are kept as the versions before

    # the month as first sent again: the later delivery is the provider's word again
    summary = _load(tmp_path / "month.csv", marked=True)
    assert (summary["updated"], summary["inserted"]) == (len(actual), 0)
    assert _marked(conn) == estimates
    summary = _load(tmp_path / "month.csv", marked=True)
    assert summary["updated"] == 0 and summary["unchanged"] == summary["read"]
