"""Bad values on the command line: one row's impossible time costs only that row, a
``--map`` to a column the file lacks stops the command, edits get ingest's value checks."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()
HEADER = "meter_id,ts,interval_s,import_kwh"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "far", ["9999-12-31T23:30:00Z", "9999-12-31T23:30:00-14:00", "0001-01-01T00:00:00+14:00"]
)
def test_a_far_time_is_quarantined_and_the_good_rows_stored(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path, far: str
) -> None:
    path = _write(
        tmp_path / "far.csv",
        [
            HEADER,
            "M1,2024-01-01T00:00:00Z,1800,0.25",
            f"M1,{far},1800,0.5",
            "M1,2024-01-01T00:30:00Z,1800,0.75",
        ],
    )
    code, out, err = _invoke("ingest", "readings", str(path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["accepted"], summary["quarantined"]) == (2, 1)
    stored = conn.execute("SELECT import_kwh FROM readings ORDER BY ts").fetchall()
    assert stored == [(0.25,), (0.75,)]
    assert conn.execute("SELECT reason, line FROM quarantine").fetchall() == [
        ("ts outside 1970-01-01T00:00:00Z..2200-01-01T00:00:00Z", 3)
    ]


def test_a_map_to_a_column_the_file_lacks_is_an_error(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "gg.csv",
        [HEADER + ",GG", "M1,2024-01-01T00:00:00Z,1800,0.25,0.1"],
    )
    code, _, err = _invoke("ingest", "readings", str(path), "--map", "export_kwh=gg")
    assert code == 2
    message = " ".join(err.split())  # the console may wrap a long line
    assert "gg.csv" in message and "no column 'gg'" in message
    assert "columns are meter_id, ts, interval_s, import_kwh, GG" in message
    assert "Traceback" not in err
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
    code, _, err = _invoke("ingest", "readings", str(path), "--map", "export_kwh=GG")
    assert code == 0, err
    assert conn.execute("SELECT export_kwh FROM readings").fetchall() == [(0.1,)]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--set", "1e309", "finite"),
        ("--set", "nan", "finite"),
        ("--set", "1e300", "beyond"),
        ("--set", "-1", "negative"),
        ("--from", "9999-12-31T23:30:00-14:00", "must lie in"),
        ("--to", "9999-12-31T23:30:00Z", "must lie in"),
        ("--to", "0001-01-01T00:00:00+14:00", "must lie in"),
    ],
)
def test_edit_values_and_times_are_checked(
    settings: Settings,
    conn: psycopg.Connection,
    tmp_path: Path,
    option: str,
    value: str,
    expected: str,
) -> None:
    path = _write(
        tmp_path / "r.csv",
        [HEADER, "M1,2024-01-01T00:00:00Z,1800,0.25", "M1,2024-01-01T00:30:00Z,1800,0.75"],
    )
    assert _invoke("ingest", "readings", str(path))[0] == 0
    args = {"--from": "2024-01-01T00:00:00Z", "--to": "2024-01-01T01:00:00Z", "--set": "1"}
    args[option] = value
    code, _, err = _invoke(
        "vee", "edit", "M1", *[x for kv in args.items() for x in kv], "--reason", "test"
    )
    assert code == 2 and expected in err and "Traceback" not in err, (code, err)
    stored = conn.execute("SELECT import_kwh, status FROM readings ORDER BY ts").fetchall()
    assert [v for v, _ in stored] == [0.25, 0.75]
