"""Meter events in the lake: a load writes them as the ``events`` table (day partitions,
beside readings), ``metrify lake verify`` compares them with the store day by day, a
re-sent event with other details replaces the lake's row (the store keeps no event
history), and a lost day is reported and repaired."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores.lake import Lake

runner = CliRunner()
UTC = dt.UTC
LOG = """meter_id,ts,event,code
M1,2025-03-30T00:30:00Z,power_failure,85
M1,2025-03-30T01:10:00Z,power_restore,
M2,2025-03-31T23:59:00Z,tamper,40
M2,2025-04-01T00:00:00Z,cover_open,
"""


def _ingest(path: Path) -> dict[str, object]:
    result = runner.invoke(app, ["ingest", "events", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _verify(*extra: str) -> tuple[int, list[dict[str, object]]]:
    result = runner.invoke(app, ["lake", "verify", "--json", *extra])
    assert "Traceback" not in result.output
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def test_events_reach_the_lake_and_verify_covers_them(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(LOG)
    _ingest(path)
    lake = Lake(settings.lake)
    held = lake.read("events").sort("ts")
    # the file's rows, by hand: three UTC days, no quality or status columns
    assert held.select("meter_id", "event", "code").rows() == [
        ("M1", "power_failure", "85"),
        ("M1", "power_restore", None),
        ("M2", "tamper", "40"),
        ("M2", "cover_open", None),
    ]
    assert held["date"].to_list() == [
        dt.date(2025, 3, 30),
        dt.date(2025, 3, 30),
        dt.date(2025, 3, 31),
        dt.date(2025, 4, 1),
    ]
    assert "quality" not in held.columns and "status" not in held.columns
    assert lake.days("events") == [dt.date(2025, 3, 30), dt.date(2025, 3, 31), dt.date(2025, 4, 1)]
    assert _verify() == (0, [])

    # the same file again: nothing new in the lake; a changed code replaces the row
    _ingest(path)
    path.write_text(LOG.replace("tamper,40", "tamper,41"))
    assert _ingest(path)["updated"] == 1
    held = lake.read("events")
    assert held.height == 4
    assert held.filter(pl.col("event") == "tamper")["code"].to_list() == ["41"]
    assert _verify("--kind", "events") == (0, [])

    # a lost day is reported with the store's count, and repaired from the store
    for file in lake.day_files("events", dt.date(2025, 3, 30)):
        Path(file).unlink()
    code, days = _verify()
    assert code == 1
    assert [(d["kind"], d["day"], d["store_rows"], d["lake_rows"]) for d in days] == [
        ("events", "2025-03-30", 2, 0)
    ]
    repaired = runner.invoke(app, ["lake", "repair", "--kind", "events"])
    assert repaired.exit_code == 0, repaired.output
    assert _verify() == (0, [])
    assert Lake(settings.lake).read("events").height == 4


def test_a_crash_before_the_events_lake_write_is_caught_up(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store commits the events, then the lake write fails: the outbox keeps their
    days, verify reports them pending, and the next load brings them into the lake."""

    def crash(self: Lake, kind: str, frame: pl.DataFrame) -> int:
        raise OSError("simulated crash before the lake write")

    path = tmp_path / "events.csv"
    path.write_text(LOG)
    with monkeypatch.context() as patch:
        patch.setattr(Lake, "write", crash)
        result = runner.invoke(app, ["ingest", "events", str(path), "--json"])
        assert result.exit_code == 1, result.output  # the load says the lake write failed
    code, days = _verify("--kind", "events")
    assert code == 1
    assert [(d["day"], d["store_rows"], d["lake_rows"], d["pending"]) for d in days] == [
        ("2025-03-30", 2, 0, True),
        ("2025-03-31", 1, 0, True),
        ("2025-04-01", 1, 0, True),
    ]
    later = tmp_path / "later.csv"
    later.write_text("meter_id,ts,event\nM3,2025-05-01T00:00:00Z,clock_set\n")
    _ingest(later)
    assert _verify() == (0, [])
    assert Lake(settings.lake).read("events").height == 5
