"""``metrify lake compact|vacuum|history|days|convert`` over loads into a real store:
compaction and vacuum leave the lake equal to the store, time travel shows what a load
added, and a lake of the old layout is refused with a pointer, then converted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import polars as pl
import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings
from metrify.stores.lake import Lake

runner = CliRunner()
DAY0 = dt.date(2024, 3, 1)
DAYS = 3


def _load(tmp_path: Path, meter: str) -> None:
    """One file of hourly readings of ``meter`` over three days, ingested."""
    lines = ["meter_id,ts,interval_s,import_kwh"]
    start = dt.datetime.combine(DAY0, dt.time(), dt.UTC)
    for i in range(24 * DAYS):
        ts = start + dt.timedelta(hours=i)
        lines.append(f"{meter},{ts:%Y-%m-%dT%H:%M:%SZ},3600,{0.1 + i / 1000:.3f}")
    path = tmp_path / f"{meter}.csv"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["ingest", "readings", str(path), "--json"])
    assert result.exit_code == 0, result.output


def _json(*args: str, code: int = 0) -> list[dict[str, object]]:
    result = runner.invoke(app, ["lake", *args, "--json"])
    assert result.exit_code == code, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def _verified() -> bool:
    return runner.invoke(app, ["lake", "verify"]).exit_code == 0


def test_compact_then_vacuum_keep_the_lake_equal_to_the_store(
    settings: Settings, tmp_path: Path, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    meters = ["LV-1", "LV-2", "LV-3"]
    for meter in meters:
        _load(tmp_path, meter)
    root = Path(settings.lake) / "readings"
    written = {p for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}
    assert len(written) == len(meters) * DAYS  # one file per load per day

    (readings,) = _json("compact", "--kind", "readings")
    assert readings["files_before"] == len(meters) * DAYS
    assert readings["files_after"] == DAYS
    assert readings["days_compacted"] == DAYS
    assert _verified()
    shown = runner.invoke(app, ["lake", "compact", "--kind", "readings"])
    assert shown.exit_code == 0 and f"files {DAYS} -> {DAYS}" in shown.output

    refused = runner.invoke(app, ["lake", "vacuum", "--retain-hours", "1"])
    assert refused.exit_code == 2
    assert "safe minimum" in refused.output and "Traceback" not in refused.output
    (kept,) = _json("vacuum", "--kind", "readings")  # the default week keeps them all
    assert kept["files"] == 0
    (listed,) = _json("vacuum", "--kind", "readings", "--retain-hours", "0", "--force", "--dry-run")
    assert {Path(str(root), str(p)) for p in listed["paths"]} == written  # type: ignore[union-attr]
    assert all(p.exists() for p in written)
    (done,) = _json("vacuum", "--kind", "readings", "--retain-hours", "0", "--force")
    assert done["files"] == len(written)
    assert not any(p.exists() for p in written)
    assert _verified()
    acts = conn.execute(
        "SELECT action, target, details->'deleted' FROM audit_log"
        " WHERE action LIKE 'lake.%' ORDER BY id"
    ).fetchall()
    assert acts == [
        ("lake.vacuum", "readings", {"readings": 0}),  # the default week: nothing
        ("lake.vacuum", "readings", {"readings": len(written)}),
    ]  # a dry run records nothing
    assert Lake(settings.lake).read("readings").height == len(meters) * 24 * DAYS


def test_history_and_days_as_of_an_earlier_version(settings: Settings, tmp_path: Path) -> None:
    _load(tmp_path, "LV-1")
    _load(tmp_path, "LV-2")
    history = _json("history", "--kind", "readings")
    operations = [h["operation"] for h in history]
    # newest first; each load's batch was newer than all the table held: appended
    assert operations == ["WRITE", "WRITE", "CREATE TABLE"]
    assert [h["version"] for h in history] == [2, 1, 0]
    after_first = history[1]

    now = _json("days", "--kind", "readings")
    assert [(d["day"], d["rows"]) for d in now] == [
        ((DAY0 + dt.timedelta(days=k)).isoformat(), 48) for k in range(DAYS)
    ]
    for as_of in (str(after_first["version"]), str(after_first["timestamp"])):
        then = _json("days", "--kind", "readings", "--as-of", as_of)
        assert [(d["version"], d["rows"]) for d in then] == [(1, 24)] * DAYS
    # the checksum a day shows is the one verify compares: equal days, equal sums
    lake = Lake(settings.lake)
    first_day = lake.read_day("readings", DAY0, 1)
    assert first_day is not None and first_day["meter_id"].unique().to_list() == ["LV-1"]

    bad = runner.invoke(app, ["lake", "days", "--as-of", "yesterday"])
    assert bad.exit_code == 2 and "--as-of yesterday" in bad.output


def test_an_old_layout_is_refused_then_converted(settings: Settings, tmp_path: Path) -> None:
    _load(tmp_path, "LV-1")
    lake = Lake(settings.lake)
    rows = lake.read("readings").drop("date")
    # the lake as an earlier release left it: plain Parquet under date= folders
    root = Path(settings.lake) / "readings"
    for path in sorted(root.iterdir()):
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
    days = rows.with_columns(day=pl.col("ts").dt.date())
    for (day,), part in days.partition_by("day", as_dict=True, include_key=False).items():
        folder = root / f"date={day}"
        folder.mkdir(parents=True)
        part.write_parquet(folder / f"part-{'ab' * 16}.parquet")

    refused = runner.invoke(app, ["lake", "verify"])
    assert refused.exit_code == 2
    assert "metrify lake convert" in refused.output and "Traceback" not in refused.output
    converted = runner.invoke(app, ["lake", "convert"])
    assert converted.exit_code == 0, converted.output
    assert f"readings: {DAYS} day(s), {24 * DAYS} rows moved" in converted.output
    assert _verified()
    assert not list(root.glob(f"date=*/part-{'ab' * 16}.parquet"))
