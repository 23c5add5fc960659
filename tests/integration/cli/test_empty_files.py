"""A file that gives no rows (empty, a header alone, blank lines) is named in a warning:
a user who loaded it expected data, and a summary of zeros alone says nothing of why."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

runner = CliRunner()
HEADER = "meter_id,ts,interval_s,import_kwh"


def test_files_without_rows_are_named_and_the_others_load(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text(HEADER + "\n")
    blanks = tmp_path / "blanks.csv"
    blanks.write_text(HEADER + "\n\n\n")
    good = tmp_path / "good.csv"
    good.write_text(
        HEADER + "\nM1,2024-01-01T00:00:00Z,3600,0.5\nM1,2024-01-01T01:00:00Z,3600,0.25\n"
    )
    result = runner.invoke(
        app, ["ingest", "readings", *map(str, (empty, header, good, blanks)), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    named = sorted(w.split(":")[0] for w in summary["warnings"] if "no rows" in w)
    assert named == ["blanks.csv", "empty.csv", "header.csv"]
    assert (summary["files"], summary["read"], summary["accepted"]) == (4, 2, 2)
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (2,)


def test_a_file_of_bad_rows_only_is_not_called_empty(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nM1,not a time,3600,0.5\n")
    result = runner.invoke(app, ["ingest", "readings", str(bad), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rejected"] == 1
    assert not [w for w in summary["warnings"] if "no rows" in w]
