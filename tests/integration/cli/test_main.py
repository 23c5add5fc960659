"""The metrify command end to end, in-process, against the real test database."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from support.realdata import LONDON_MAP

runner = CliRunner()


def write_csv(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ingest_json_summary_and_quarantine(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "block.csv.gz",
        [
            "LCLid,tstp,energy(kWh/hh)",
            "MAC1,2013-01-01 00:00:00, 0.219 ",
            "MAC1,2013-01-01 00:30:00, 0.241 ",
            "MAC1,2013-01-01 01:00:00,Null",
            "MAC1,2013-01-01 01:30:00,0.1,extra",
            "MAC2,2013-01-01 00:00:00,0.5",
        ],
        gz=True,
    )
    code, out, _ = invoke("ingest", "readings", str(path), *LONDON_MAP, "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["read"], summary["accepted"], summary["rejected"], summary["quarantined"]) == (
        5,
        3,
        2,
        2,
    )
    assert summary["reasons"] == {
        "missing import_kwh": 1,
        "ragged row: 4 fields, expected 3": 1,
    }
    rows = conn.execute(
        "SELECT meter_id, import_kwh FROM readings ORDER BY meter_id, ts"
    ).fetchall()
    assert rows == [("MAC1", 0.219), ("MAC1", 0.241), ("MAC2", 0.5)]
    assert conn.execute(
        "SELECT count(*) FROM quarantine WHERE source = 'file:block.csv.gz'"
    ).fetchone() == (2,)


def test_reingest_is_idempotent_through_cli(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        ["LCLid,tstp,energy(kWh/hh)", "M,2013-01-01 00:00:00,1", "M,2013-01-01 00:30:00,2"],
    )
    invoke("ingest", "readings", str(path), *LONDON_MAP, "--json")
    code, out, _ = invoke("ingest", "readings", str(path), *LONDON_MAP, "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 2
    write_csv(
        path, ["LCLid,tstp,energy(kWh/hh)", "M,2013-01-01 00:00:00,1", "M,2013-01-01 00:30:00,3"]
    )
    code, out, _ = invoke("ingest", "readings", str(path), *LONDON_MAP, "--json")
    assert json.loads(out)["updated"] == 1
    assert conn.execute("SELECT count(*), min(import_kwh) FROM reading_history").fetchone() == (
        1,
        2.0,
    )
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (2,)


def test_bad_file_reported_others_loaded_exit_1(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    good = write_csv(
        tmp_path / "good.csv", ["LCLid,tstp,energy(kWh/hh)", "M,2013-01-01 00:00:00,1"]
    )
    corrupt = tmp_path / "broken.csv.gz"
    corrupt.write_bytes(b"this is not gzip at all")
    missing = tmp_path / "absent.csv"
    code, out, err = invoke(
        "ingest", "readings", str(corrupt), str(missing), str(good), *LONDON_MAP, "--json"
    )
    assert code == 1
    summary = json.loads(out)
    assert summary["accepted"] == 1 and len(summary["errors"]) == 2
    assert any("broken.csv.gz" in e for e in summary["errors"])
    assert any("absent.csv" in e for e in summary["errors"])
    assert "Traceback" not in err
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)


def test_missing_mapping_gives_hint(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "raw.csv", ["LCLid,tstp,energy", "M,2013-01-01 00:00:00,1"])
    code, out, _ = invoke("ingest", "readings", str(path), "--interval", "1800", "--json")
    assert code == 1
    (error,) = json.loads(out)["errors"]
    assert "raw.csv" in error and "--map meter_id=COLUMN" in error


def test_bad_options_are_one_line_errors(settings: Settings, tmp_path: Path) -> None:
    code, _, err = invoke("ingest", "readings", str(tmp_path / "x.csv"), "--map", "colour=red")
    assert code == 2 and "not a field of readings" in err and "Traceback" not in err
    code, _, err = invoke("ingest", "bananas", str(tmp_path / "x.csv"))
    assert code == 2 and "unknown kind" in err
    code, _, err = invoke("ingest", "readings", str(tmp_path / "x.csv"), "--tz", "Nowhere/Land")
    assert code == 2 and "unknown time zone" in err


def test_config_masks_password(settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from metrify.settings import get_settings

    monkeypatch.setenv("METRIFY_DATABASE_URL", "postgresql://u:hunter2@db:5432/x")
    get_settings.cache_clear()
    code, out, _ = invoke("config", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["database_url"] == "postgresql://u:***@db:5432/x" and "hunter2" not in out
    assert shown["lake"] == settings.lake


def test_db_url_prints_url_in_use(settings: Settings) -> None:
    code, out, _ = invoke("db", "url")
    assert code == 0
    assert settings.database_url is not None
    assert out.strip() == settings.database_url.get_secret_value()


def test_ingest_meters_reference_file(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "meters.csv",
        [
            "id,region,tariff,has_pv,install_date",
            "MAC1,london,ToU,yes,2012-05-01",
            "MAC2,london,Std,no,",
            "bad id,london,Std,no,",
        ],
    )
    code, out, _ = invoke("ingest", "meters", str(path), "--map", "meter_id=id", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["inserted"] == 2 and summary["reasons"] == {"invalid meter_id": 1}
    rows = conn.execute(
        "SELECT meter_id, tariff, has_pv, install_date::text, status FROM meters ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("MAC1", "ToU", True, "2012-05-01", "active"),
        ("MAC2", "Std", False, None, "active"),
    ]


def test_a_meter_with_an_unknown_time_zone_is_quarantined(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A zone nobody knows would break every local-day computation of the meter's
    readings; the row is quarantined with its reason and the others load."""
    path = write_csv(
        tmp_path / "meters.csv",
        [
            "id,timezone",
            "Z1,Europe/London",
            "Z2,Mars/Olympus_Mons",
            "Z3,",
        ],
    )
    code, out, _ = invoke("ingest", "meters", str(path), "--map", "meter_id=id", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["inserted"] == 2 and summary["reasons"] == {"unknown timezone": 1}
    rows = conn.execute("SELECT meter_id, timezone FROM meters ORDER BY 1").fetchall()
    assert rows == [("Z1", "Europe/London"), ("Z3", None)]
    raw = conn.execute("SELECT raw FROM quarantine WHERE reason = 'unknown timezone'").fetchone()
    assert raw is not None and "Mars/Olympus_Mons" in str(raw[0])


def test_quarantine_command_lists_reasons_and_raw(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "q.csv",
        [
            "LCLid,tstp,energy(kWh/hh)",
            "M,2013-01-01 00:00:00,abc",
            "M,2013-01-01 00:30:00,",
            "M,2013-01-01 01:00:00,1",
        ],
    )
    invoke("ingest", "readings", str(path), *LONDON_MAP, "--json")
    code, out, _ = invoke("quarantine", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["reason"] for r in rows) == ["missing import_kwh", "non-numeric import_kwh"]
    assert {r["source"] for r in rows} == {"file:q.csv"}
    assert any('"abc"' in r["raw"] for r in rows)
    code, out, _ = invoke("quarantine", "--reason", "missing", "--json")
    assert [json.loads(line)["reason"] for line in out.splitlines()] == ["missing import_kwh"]


class Records(logging.Handler):
    """Keeps what one logger emits (the CLI resets the root logger's handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_demo_loads_the_fleet_and_summarises_anomalies(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first command: every simulated reading stored, grid and reference data
    too, anomalies summarised in one line rather than an alert line each."""
    alerts = Records()
    logger = logging.getLogger("metrify.anomaly.alerts")
    monkeypatch.setattr(logger, "handlers", [alerts])
    code, out, err = invoke("demo", "--meters", "40", "--days", "15")
    assert code == 0, err
    readings = 40 * 15 * 96
    assert conn.execute("SELECT count(*) FROM readings WHERE quality & 1 = 0").fetchone() == (
        readings,
    )
    assert conn.execute("SELECT count(*) FROM meters").fetchone() == (40,)
    assert f"readings in store: {readings:,} from 40 meters" in " ".join(out.split())
    alerting = conn.execute(
        "SELECT count(*) FROM anomalies WHERE severity IN ('medium', 'high', 'critical')"
    ).fetchone()
    assert alerting is not None and alerting[0] > 0  # alerts would have been logged
    assert [r.getMessage()[:80] for r in alerts.records if r.levelno >= logging.WARNING] == []
    assert "anomalies:" in out
