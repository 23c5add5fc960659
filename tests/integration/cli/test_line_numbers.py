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


def test_small_files_decoded_together_keep_their_own_rows_and_lines(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Small files of the same columns are decoded in one call (a household export is
    one small file per meter): each quarantined row still names its own file and line,
    each file's rows are stored, and a file of other columns between them is read on
    its own terms."""
    files = []
    expected: dict[tuple[str, int], str] = {}
    stored = 0
    for i in range(5):
        meter = f"F{i}"
        lines = ["meter_id,ts,interval_s,import_kwh"]
        for h in range(6):
            value = "bad" if h == i else f"0.{h + 1}"  # each file's bad row elsewhere
            lines.append(f"{meter},2024-01-01T{h:02d}:00:00Z,3600,{value}")
        if i == 2:  # a ragged line the reader quarantines itself
            lines.insert(3, f"{meter},2024-01-01T09:00:00Z")
        path = tmp_path / f"m{i}.csv"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
        for n, line in enumerate(lines, 1):
            if line.endswith(",bad"):
                expected[(f"file:{path.name}", n)] = "non-numeric import_kwh"
        stored += 5
    # a file with an extra column (other columns: decoded alone) in the middle
    odd = tmp_path / "m2b.csv"
    odd.write_text(
        "meter_id,ts,interval_s,import_kwh,export_kwh\n"
        "G1,2024-01-01T00:00:00Z,3600,0.5,0.1\nG1,2024-01-01T01:00:00Z,3600,oops,0.1\n"
    )
    expected[("file:m2b.csv", 3)] = "non-numeric import_kwh"
    files.insert(3, odd)
    result = runner.invoke(app, ["ingest", "readings", *map(str, files), "--json"])
    assert result.exit_code == 0, result.output
    rows = conn.execute("SELECT source, line, reason FROM quarantine").fetchall()
    judged = {(str(s), int(n)): str(r) for s, n, r in rows if r == "non-numeric import_kwh"}
    assert judged == expected
    ragged = [(s, n) for s, n, r in rows if r != "non-numeric import_kwh"]
    assert ragged == [("file:m2.csv", 4)]
    counts = dict(
        conn.execute(
            "SELECT meter_id, count(*) FROM readings WHERE import_kwh IS NOT NULL"
            " AND status <> 'estimated' GROUP BY meter_id"
        ).fetchall()
    )
    assert counts == {**{f"F{i}": 5 for i in range(5)}, "G1": 1}
    exports = conn.execute("SELECT count(*) FROM readings WHERE export_kwh IS NOT NULL")
    assert exports.fetchone() == (1,)  # its other row was quarantined
