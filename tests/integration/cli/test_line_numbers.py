"""Quarantined rows name the file's real line, whatever stands before them: blank lines,
lines that could not be split (ragged, a quoted value broken over two lines), and chunk
boundaries. The expected numbers are found by searching the file's own text."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings, get_settings

runner = CliRunner()

CSV_LINES = [
    "meter_id,ts,interval_s,import_kwh",
    "M1,2024-01-01T00:00:00Z,3600,0.5",
    "",
    "",
    "M1,2024-01-01T01:00:00Z,3600,0.5",
    "M1,2024-01-01T02:00:00Z,3600",  # ragged: the reader's own bad row
    "",
    'M1,"2024-01-01T03:00:00Z',  # a quoted value broken over two lines
    '",3600,0.5',
    "M1,2024-01-01T04:00:00Z,3600,lots",  # bad value: judged by decode
    "   ",  # whitespace only: a row of one field, ragged
    "",
    "M1,2024-01-01T05:00:00Z,3600,0.5",
    "M1,2024-01-01T06:00:00Z,3600,-oops-",  # bad value
]

JSONL_LINES = [
    '{"meter_id": "M2", "ts": "2024-01-01T00:00:00Z", "interval_s": 3600, "import_kwh": 1}',
    "",
    "{broken",
    "",
    '{"meter_id": "M2", "ts": "2024-01-01T01:00:00Z", "interval_s": 3600, "import_kwh": "x"}',
    '{"meter_id": "M2", "ts": "2024-01-01T02:00:00Z", "interval_s": 3600, "import_kwh": 1}',
]


def _expected(lines: list[str], markers: list[str]) -> dict[int, str]:
    """1-based line numbers of the lines holding each marker, counted in the text."""
    return {i: line for i, line in enumerate(lines, 1) for m in markers if m in line}


def _quarantined(conn: psycopg.Connection) -> dict[int, str]:
    rows = conn.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
    return {int(line): str(reason) for line, reason in rows}


@pytest.mark.parametrize("batch_size", [3, 100_000])
def test_csv_rejects_name_the_real_line(
    settings: Settings,
    conn: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    monkeypatch.setenv("METRIFY_BATCH_SIZE", str(batch_size))  # 3: many chunk boundaries
    get_settings.cache_clear()
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(CSV_LINES) + "\n")
    result = runner.invoke(app, ["ingest", "readings", str(path)])
    assert result.exit_code == 0, result.output
    found = _quarantined(conn)
    values = _expected(CSV_LINES, ["lots", "-oops-"])
    assert {n: r for n, r in found.items() if n in values} == {
        n: "non-numeric import_kwh" for n in values
    }
    # the lines the reader could not split: the ragged one, both halves of the broken
    # quote, the whitespace-only one
    split = _expected(CSV_LINES, ["02:00:00Z,3600", '"2024', '",3600', "   "])
    assert set(found) == set(values) | set(split)


def test_jsonl_rejects_name_the_real_line(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n".join(JSONL_LINES) + "\n")
    result = runner.invoke(app, ["ingest", "readings", str(path)])
    assert result.exit_code == 0, result.output
    found = _quarantined(conn)
    assert found == {
        **{n: "non-numeric import_kwh" for n in _expected(JSONL_LINES, ['"x"'])},
        **{n: found[n] for n in _expected(JSONL_LINES, ["{broken"])},
    }
    assert len(found) == 2
