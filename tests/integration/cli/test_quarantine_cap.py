"""A file of bad rows cannot flood the quarantine: at most ``max_rejects`` of its bad rows
are kept, the rest are counted as rejected and a warning says how many were not kept."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings, get_settings

runner = CliRunner()
HEADER = "meter_id,ts,interval_s,import_kwh"
CAP = 5


@pytest.fixture
def capped(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("METRIFY_MAX_REJECTS", str(CAP))
    get_settings.cache_clear()
    return get_settings()


def _file(path: Path, good: int, bad: int) -> Path:
    """``good`` readings, then ``bad`` lines whose time cannot be read."""
    lines = [HEADER]
    lines += [f"M1,2024-01-01T{h:02d}:00:00Z,3600,0.5" for h in range(good)]
    lines += [f"M1,not a time {i},3600,0.5" for i in range(bad)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_keeps_at_most_the_cap_and_counts_the_rest(
    capped: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    over = 3
    path = _file(tmp_path / "bad.csv", good=2, bad=CAP + over)
    result = runner.invoke(app, ["ingest", "readings", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    # every line is accounted for: 2 stored, CAP + over rejected, CAP of them kept
    assert summary["read"] == 2 + CAP + over
    assert (summary["accepted"], summary["rejected"], summary["quarantined"]) == (
        2,
        CAP + over,
        CAP,
    )
    assert sum(summary["reasons"].values()) == CAP + over
    assert any(f"{over} more bad rows not kept" in w for w in summary["warnings"])
    # the first CAP bad lines (after the header and 2 good lines: lines 4..) are kept
    lines = [r[0] for r in conn.execute("SELECT line FROM quarantine ORDER BY line")]
    assert lines == list(range(4, 4 + CAP))
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == (2,)


def test_each_file_has_its_own_cap_and_the_warning_is_printed(
    capped: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    one = _file(tmp_path / "one.csv", good=0, bad=CAP + 4)
    two = _file(tmp_path / "two.csv", good=0, bad=CAP - 1)
    result = runner.invoke(app, ["ingest", "readings", str(one), str(two)])
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())  # the console may wrap a long line
    assert "quarantine cap reached for file:one.csv: 4 more bad rows not kept" in err
    assert "two.csv" not in err
    kept = conn.execute(
        "SELECT source, count(*) FROM quarantine GROUP BY source ORDER BY source"
    ).fetchall()
    assert kept == [("file:one.csv", CAP), ("file:two.csv", CAP - 1)]
