"""A day replaced from the store while another writer commits to that day: the
replacement is refused by Delta and the day compared again, so the other writer's rows
are never dropped by a replacement read before them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from typer.testing import CliRunner

from metrify.cli import app
from metrify.contracts.records import READING
from metrify.pipeline import lakesync
from metrify.settings import Settings
from metrify.stores.lake import Lake
from metrify.stores.reads import lake_days
from support.lake import batch

DAY = dt.date(2024, 3, 1)


def test_a_replacement_beaten_by_a_concurrent_write_starts_over(
    settings: Settings,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "meter_id,ts,interval_s,import_kwh\n"
        + "".join(f"LV-1,2024-03-01T{h:02d}:00:00Z,3600,0.{h + 10}\n" for h in range(24))
    )
    assert CliRunner().invoke(app, ["ingest", "readings", str(path)]).exit_code == 0
    lake = Lake(settings.lake)
    lake.replace_day("readings", DAY, pl.DataFrame(schema=lake.read("readings").schema))
    assert lake.read_day("readings", DAY) is None  # the lake lost the day

    # The first time the store is read, another writer commits to the same day (after
    # the table version was taken): the replacement made from that read must not win.
    reads: list[int] = []
    stored = lake_days.versions

    def versions(conn: Any, contract: Any, day: dt.date) -> pl.DataFrame:
        reads.append(1)
        if len(reads) == 1:
            Lake(settings.lake).write("readings", batch("LV-9", DAY, n=4))
        return stored(conn, contract, day)

    monkeypatch.setattr(lake_days, "versions", versions)
    state = lakesync.sync_day(conn, lake, READING, DAY)
    assert len(reads) == 2  # refused once, compared again
    assert not state.equal and state.store_rows == 24 and state.lake_rows == 4
    day = lake.read_day("readings", DAY)
    # the second comparison saw the other writer's rows (not in this store) and replaced
    # the day with exactly the store's versions
    assert day is not None and day.height == 24
    assert day["meter_id"].unique().to_list() == ["LV-1"]
    ops = [c.operation for c in lake.history("readings", 3)]
    # the replacement after the other writer's batch (appended: the table held no file)
    assert ops == ["WRITE", "WRITE", "WRITE"]
