"""``metrify lake verify|repair``: the lake is compared with the store day by day, a day
it lacks (files lost, a crash between the store's commit and the lake write) is
reported, and repaired from the store; rows re-sent unchanged reach a lake that lacks
them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores.lake import Lake

runner = CliRunner()
DAY0 = dt.date(2024, 3, 1)
METERS = ("LV-1", "LV-2")
DAYS = 3


def _value(m: int, i: int) -> float:
    return round(0.1 + (i % 24) * 0.01 + m * 0.001, 3)


def _file(path: Path, change: float | None = None) -> Path:
    """Hourly readings of two meters over three days; ``change`` replaces the first
    meter's first value (a correction)."""
    lines = ["meter_id,ts,interval_s,import_kwh"]
    start = dt.datetime.combine(DAY0, dt.time(), dt.UTC)
    for m, meter in enumerate(METERS):
        for i in range(24 * DAYS):
            value = change if change is not None and (m, i) == (0, 0) else _value(m, i)
            ts = start + dt.timedelta(hours=i)
            lines.append(f"{meter},{ts:%Y-%m-%dT%H:%M:%SZ},3600,{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _ingest(path: Path, code: int = 0) -> None:
    result = runner.invoke(app, ["ingest", "readings", str(path), "--json"])
    assert result.exit_code == code, result.output


def _verify(*extra: str) -> tuple[int, list[dict[str, object]]]:
    result = runner.invoke(app, ["lake", "verify", "--json", *extra])
    return result.exit_code, [orjson.loads(line) for line in result.stdout.splitlines()]


def _lake_rows(settings: Settings) -> pl.DataFrame:
    return Lake(settings.lake).read("readings")


def _drop_day(settings: Settings, day: dt.date) -> None:
    lake = Lake(settings.lake)
    for path in lake.day_files("readings", day):
        Path(path).unlink()


def test_verify_reports_lost_lake_files_and_repair_restores_them(
    settings: Settings, tmp_path: Path
) -> None:
    _ingest(_file(tmp_path / "a.csv"))
    assert _verify() == (0, [])
    lost = DAY0 + dt.timedelta(days=1)
    _drop_day(settings, lost)
    code, days = _verify()
    assert code == 1
    assert [(d["kind"], d["day"], d["store_rows"], d["lake_rows"]) for d in days] == [
        ("readings", lost.isoformat(), 24 * len(METERS), 0)
    ]
    # one row gone from another day is a difference too (count and checksum): deleted
    # by a commit that bypasses the store, the way a Delta table loses a row
    other = DAY0
    table = Lake(settings.lake).table("readings")
    assert table is not None
    table.delete(f"date = '{other}' AND meter_id = 'LV-2' AND import_kwh = {_value(1, 1)}")
    code, days = _verify("--from", other.isoformat(), "--to", other.isoformat())
    assert code == 1 and [d["day"] for d in days] == [other.isoformat()]

    repaired = runner.invoke(app, ["lake", "repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "2 rewritten" in repaired.output
    assert _verify() == (0, [])
    lake = _lake_rows(settings)
    assert lake.height == len(METERS) * 24 * DAYS
    first = lake.filter((pl.col("meter_id") == "LV-2") & (pl.col("ts").dt.date() == lost))
    expected = sorted(_value(1, i) for i in range(24, 48))
    assert sorted(first["import_kwh"].to_list()) == pytest.approx(expected)


def test_a_changed_value_is_compared_against_every_stored_version(
    settings: Settings, tmp_path: Path
) -> None:
    """The lake keeps every version: a correction adds one, which the store keeps in its
    history; the two agree, and a lake that lost the old version differs."""
    _ingest(_file(tmp_path / "a.csv"))
    _ingest(_file(tmp_path / "b.csv", change=9.5))
    assert _verify() == (0, [])
    first = _lake_rows(settings).filter(
        (pl.col("meter_id") == "LV-1") & (pl.col("ts").dt.date() == DAY0)
    )
    assert first.height == 24 + 1  # the day's readings and the replaced version
    lake = Lake(settings.lake)
    files = lake.day_files("readings", DAY0)
    # drop the file of the original load: the old version is gone from the lake
    oldest = min(files, key=lambda p: pl.read_parquet(p)["ingested_at"].min())
    Path(oldest).unlink()
    code, days = _verify("--kind", "readings")
    assert code == 1 and [d["day"] for d in days] == [DAY0.isoformat()]
    assert runner.invoke(app, ["lake", "repair", "--kind", "readings"]).exit_code == 0
    assert _verify() == (0, [])


def test_a_crash_before_the_lake_write_is_caught_up(
    settings: Settings,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store commits, then the lake write fails (the process dies in between): the
    outbox keeps the days, verify reports them, and the next load catches them up."""

    def crash(self: Lake, dataset: str, frame: pl.DataFrame) -> int:
        raise OSError("simulated crash before the lake write")

    with monkeypatch.context() as patch:
        patch.setattr(Lake, "write", crash)
        _ingest(_file(tmp_path / "a.csv"), code=1)  # the load says the lake write failed
    stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert stored == (len(METERS) * 24 * DAYS,)
    code, days = _verify()
    assert code == 1
    assert [(d["day"], d["lake_rows"], d["pending"]) for d in days] == [
        ((DAY0 + dt.timedelta(days=k)).isoformat(), 0, True) for k in range(DAYS)
    ]
    # the next load (another meter, another day) first brings the pending days in
    later = tmp_path / "later.csv"
    later.write_text("meter_id,ts,interval_s,import_kwh\nLV-9,2024-04-01T00:00:00Z,3600,0.2\n")
    _ingest(later)
    assert _verify() == (0, [])
    assert conn.execute("SELECT count(*) FROM lake_outbox").fetchone() == (0,)


def test_repair_mends_what_a_crash_left_pending(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: Lake, dataset: str, frame: pl.DataFrame) -> int:
        raise OSError("simulated crash before the lake write")

    with monkeypatch.context() as patch:
        patch.setattr(Lake, "write", crash)
        _ingest(_file(tmp_path / "a.csv"), code=1)  # the load says the lake write failed
    assert _verify()[0] == 1
    repaired = runner.invoke(app, ["lake", "repair", "--kind", "readings"])
    assert repaired.exit_code == 0, repaired.output
    assert f"{DAYS} rewritten" in repaired.output
    assert _verify() == (0, [])
    assert _lake_rows(settings).height == len(METERS) * 24 * DAYS


def test_unchanged_resent_rows_reach_a_lake_that_lacks_them(
    settings: Settings, tmp_path: Path
) -> None:
    path = _file(tmp_path / "a.csv")
    _ingest(path)
    lost = DAY0 + dt.timedelta(days=2)
    _drop_day(settings, lost)
    commits = len(Lake(settings.lake).history("readings"))
    _ingest(path)  # every row is found unchanged in the store
    assert _verify() == (0, [])
    assert _lake_rows(settings).filter(pl.col("ts").dt.date() == lost).height == 24 * len(METERS)
    # the days compared together, and only the one the lake lacked written again
    assert len(Lake(settings.lake).history("readings")) == commits + 1
    said = runner.invoke(app, ["lake", "verify"])
    assert said.exit_code == 0 and f"{DAYS} day(s) checked, all equal" in said.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "meters"], "--kind meters"),
        (["--from", "2024-13-01"], "--from 2024-13-01"),
        (["--from", "2024-03-02", "--to", "2024-03-01"], "after --to"),
    ],
)
def test_bad_filters_exit_2(settings: Settings, args: list[str], message: str) -> None:
    for command in ("verify", "repair"):
        result = runner.invoke(app, ["lake", command, *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
