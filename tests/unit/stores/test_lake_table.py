"""The lake's Delta tables on real files: upsert by key + version, day replacement,
compaction, vacuum, time travel, and reads from DuckDB and Polars.

Expected values come from the frames the tests build, never from the lake's own output.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import write_deltalake

from metrify.contracts.records import READING
from metrify.pipeline import lake_upkeep
from metrify.pipeline.lakesync import checksum
from metrify.stores.lake import Lake, LakeConflict, LegacyLayoutError
from metrify.stores.lake import table as table_module
from support.lake import DAY, batch, content


def data_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_writing_the_same_batch_twice_leaves_one_copy(lake: Lake) -> None:
    first = batch("M1")
    lake.write("readings", first)
    lake.write("readings", first)
    back = lake.read("readings")
    assert back.height == 48
    assert content(back).equals(content(first))
    # a second version of the same readings (a later ingest) is kept beside the first
    lake.write("readings", batch("M1", second=60))
    assert lake.read("readings").height == 96


def test_a_batch_newer_than_the_table_is_appended_and_any_other_merged(lake: Lake) -> None:
    """A load's batches are each ingested after everything the table holds, so none of
    their versions can be there: they are appended (no join). A batch whose versions may
    already be there (the same batch again, a slower writer's older batch) is merged,
    so nothing doubles."""
    lake.write("readings", batch("M1", second=10))
    lake.write("readings", batch("M2", second=20))
    lake.write("readings", batch("M3", second=5))  # older than the table's newest
    ops = [c.operation for c in lake.history("readings")]
    assert ops[:3] == ["MERGE", "WRITE", "WRITE"]  # newest first
    lake.write("readings", batch("M2", second=20))  # the same versions again: merged
    back = lake.read("readings")
    assert back.height == 3 * 48
    expected = pl.concat([batch("M1", second=10), batch("M2", second=20), batch("M3", second=5)])
    assert content(back).equals(content(expected))


def test_an_append_raced_by_a_day_replacement_holding_its_rows_leaves_them_once(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up elsewhere replaces the day from the store, which already holds the
    batch, between the append's check and its commit: the append is refused like a
    merge (and retried as one), so its rows are not in the day twice."""
    older = batch("M1", second=1)
    lake.write("readings", older)
    new = batch("M2", second=10)
    check = table_module._files_if_older

    replaced: list[int] = []

    def raced(table: object, first: object) -> int | None:
        held = check(table, first)  # type: ignore[arg-type]
        if not replaced:  # once, after the first check
            Lake(lake.url).replace_day("readings", DAY, pl.concat([older, new]))
            replaced.append(1)
        return held

    monkeypatch.setattr(table_module, "_files_if_older", raced)
    lake.write("readings", new)
    back = lake.read("readings")
    assert back.height == 2 * 48
    assert content(back).equals(content(pl.concat([older, new])))


def test_a_version_rewritten_with_other_values_replaces_its_row(lake: Lake) -> None:
    lake.write("readings", batch("M1"))
    fixed = batch("M1").with_columns(
        import_kwh=pl.when(pl.col("ts") == pl.col("ts").min())
        .then(9.5)
        .otherwise(pl.col("import_kwh")),
        status=pl.when(pl.col("ts") == pl.col("ts").min())
        .then(pl.lit("suspect"))
        .otherwise(pl.col("status")),
    )
    lake.write("readings", fixed)
    back = content(lake.read("readings"))
    assert back.height == 48
    assert back.row(0, named=True)["import_kwh"] == 9.5
    assert back.row(0, named=True)["status"] == "suspect"
    assert back["import_kwh"][1:].to_list() == pytest.approx([0.5 + i / 1000 for i in range(1, 48)])


def test_days_are_partitions_and_a_day_is_replaced_in_one_commit(lake: Lake) -> None:
    next_day = DAY + dt.timedelta(days=1)
    lake.write("readings", pl.concat([batch("M1"), batch("M1", next_day)]))
    assert lake.days("readings") == [DAY, next_day]
    folders = sorted(p.name for p in Path(lake.uri("readings")).iterdir())
    assert folders == ["_delta_log", f"date={DAY}", f"date={next_day}"]
    before = lake.version("readings")
    assert before is not None
    lake.replace_day("readings", DAY, batch("M2"), before)
    assert lake.version("readings") == before + 1
    day = lake.read_day("readings", DAY)
    assert day is not None and day["meter_id"].unique().to_list() == ["M2"]
    untouched = lake.read_day("readings", next_day)
    assert untouched is not None and untouched.height == 48
    # an empty replacement removes the day
    lake.replace_day("readings", DAY, batch("M2").head(0))
    assert lake.days("readings") == [next_day]


def test_a_replacement_read_before_a_concurrent_write_is_refused(lake: Lake) -> None:
    lake.write("readings", batch("M1"))
    read_at = lake.version("readings")
    lake.write("readings", batch("M2"))  # another writer, after the store was read
    with pytest.raises(LakeConflict):
        lake.replace_day("readings", DAY, batch("M1"), read_at)
    day = lake.read_day("readings", DAY)
    assert day is not None and sorted(day["meter_id"].unique()) == ["M1", "M2"]


def test_compaction_keeps_content_and_reduces_files(lake: Lake) -> None:
    next_day = DAY + dt.timedelta(days=1)
    frames = [batch(f"M{i}", d, second=i) for i in range(6) for d in (DAY, next_day)]
    for frame in frames:
        lake.write("readings", frame)
    expected = checksum(READING, pl.concat(frames))
    assert lake.file_counts("readings") == {DAY: 6, next_day: 6}
    assert checksum(READING, lake.read("readings")) == expected

    result = lake_upkeep.compact(lake, "readings", [DAY])
    assert (result.files_before, result.files_after) == (6, 1)
    assert lake.file_counts("readings") == {DAY: 1, next_day: 6}
    result = lake_upkeep.compact(lake, "readings")
    assert (result.files_before, result.files_after) == (7, 2)
    assert [d.day for d in result.days] == [next_day]
    assert checksum(READING, lake.read("readings")) == expected
    assert lake.read("readings").height == 12 * 48
    again = lake_upkeep.compact(lake, "readings")
    assert again.days == [] and again.files_after == 2


def test_vacuum_removes_only_files_no_version_reads(lake: Lake) -> None:
    root = Path(lake.uri("readings"))
    for i in range(4):
        lake.write("readings", batch(f"M{i}", second=i))
    written = data_files(root)
    lake_upkeep.compact(lake, "readings")
    live = {Path(p) for p in lake.day_files("readings", DAY)}
    assert len(live) == 1 and live.isdisjoint(written)
    assert data_files(root) == written | live  # compaction deletes nothing

    with pytest.raises(lake_upkeep.RetentionTooShort, match="safe minimum"):
        lake_upkeep.vacuum(lake, "readings", 0)
    assert lake_upkeep.vacuum(lake, "readings") == []  # a week's retention keeps them
    listed = lake_upkeep.vacuum(lake, "readings", 0, dry_run=True, force=True)
    assert len(listed) == len(written) and data_files(root) == written | live
    removed = lake_upkeep.vacuum(lake, "readings", 0, force=True)
    assert len(removed) == len(written)
    assert data_files(root) == live
    assert lake.read("readings").height == 4 * 48


def test_time_travel_reads_earlier_versions(lake: Lake) -> None:
    lake.write("readings", batch("M1"))
    first = lake.version("readings")
    assert first is not None
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    lake.replace_day("readings", DAY, batch("M1", value=2.0), first)
    lake.write("readings", batch("M2", value=3.0, second=5))
    assert lake_upkeep.compact(lake, "readings").files_after == 1
    now = lake.read("readings")
    assert now.height == 96 and now["import_kwh"].min() == pytest.approx(2.0)
    for as_of in (first, between):
        old = lake.read("readings", version=as_of)
        assert content(old).equals(content(batch("M1")))
        day = lake.read_day("readings", DAY, as_of)
        assert day is not None and day["import_kwh"].max() == pytest.approx(0.547)
    assert lake.scan("readings", version=first).select(pl.len()).collect().item() == 48
    ops = [c.operation for c in lake.history("readings")]
    # newest first: M2's batch was newer than all the table held, so it was appended
    assert ops[:3] == ["OPTIMIZE", "WRITE", "WRITE"]


def test_duckdb_and_polars_read_what_was_written(lake: Lake) -> None:
    frames = [batch("M1"), batch("M2", value=1.0, second=1), batch("M1", DAY + dt.timedelta(1))]
    for frame in frames:
        lake.write("readings", frame)
    everything = pl.concat(frames)
    expected = everything.group_by("meter_id").agg(pl.col("import_kwh").sum()).sort("meter_id")

    con = duckdb.connect()
    con.register("readings", lake.arrow("readings"))
    rows = con.execute(
        "SELECT meter_id, sum(import_kwh), count(*) FROM readings"
        " WHERE date >= DATE '2013-01-01' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == expected["meter_id"].to_list()
    assert [r[1] for r in rows] == pytest.approx(expected["import_kwh"].to_list())
    assert [r[2] for r in rows] == [96, 48]

    got = (
        lake.scan("readings")
        .filter(pl.col("date") == DAY)
        .group_by("meter_id")
        .agg(pl.col("import_kwh").sum())
        .sort("meter_id")
        .collect()
    )
    day_expected = (
        everything.filter(pl.col("ts").dt.date() == DAY)
        .group_by("meter_id")
        .agg(pl.col("import_kwh").sum())
        .sort("meter_id")
    )
    assert got["meter_id"].to_list() == day_expected["meter_id"].to_list()
    assert got["import_kwh"].to_list() == pytest.approx(day_expected["import_kwh"].to_list())


def test_plain_files_are_the_current_version_only(lake: Lake) -> None:
    """DuckDB's own reader over plain_files sees what the Delta table holds: files that
    compaction or a day replacement superseded are still on disk, and must not count."""
    frames = [batch(f"M{i}", second=i) for i in range(3)]
    frames.append(batch("M0", DAY + dt.timedelta(1)))
    for frame in frames:
        lake.write("readings", frame)
    before = lake.version("readings")
    lake_upkeep.compact(lake, "readings")
    lake.replace_day("readings", DAY + dt.timedelta(1), batch("M9", DAY + dt.timedelta(1)), None)
    root = Path(lake.uri("readings"))
    files = lake.plain_files("readings")
    assert files is not None and len(files) == 2 < len(data_files(root))
    expected = pl.concat([*frames[:3], batch("M9", DAY + dt.timedelta(1))])
    con = duckdb.connect()
    rows = con.execute(
        "SELECT date, meter_id, count(*), sum(import_kwh) FROM read_parquet(?,"
        " hive_partitioning = true, hive_types = {'date': DATE}) GROUP BY 1, 2 ORDER BY 1, 2",
        [files],
    ).fetchall()
    want = (
        expected.group_by(pl.col("ts").dt.date().alias("date"), "meter_id")
        .agg(pl.len(), pl.col("import_kwh").sum())
        .sort("date", "meter_id")
    )
    assert [r[:3] for r in rows] == [tuple(r[:3]) for r in want.iter_rows()]
    assert [r[3] for r in rows] == pytest.approx(want["import_kwh"].to_list())
    assert before is not None and lake.version("readings") != before
    # no table yet, or a lake in an object store: read through Arrow instead
    assert lake.plain_files("grid") is None
    assert Lake("s3://bucket/lake").plain_files("readings") is None


def test_an_empty_lake_reads_as_empty(lake: Lake) -> None:
    assert lake.days("readings") == [] and lake.version("readings") is None
    assert lake.read("readings").height == 0
    assert lake.read_day("readings", DAY) is None
    assert lake.arrow("readings").to_table().num_rows == 0
    assert lake.scan("readings").collect().height == 0
    assert lake.write("readings", batch("M1").head(0)) == 0


def test_the_old_layout_is_refused_then_converted(lake: Lake) -> None:
    next_day = DAY + dt.timedelta(days=1)
    old = {DAY: [batch("M1"), batch("M2", second=1)], next_day: [batch("M1", next_day)]}
    for day, frames in old.items():
        folder = Path(lake.uri("readings")) / f"date={day}"
        folder.mkdir(parents=True)
        for i, frame in enumerate(frames):
            frame.write_parquet(folder / f"part-{i:032x}.parquet")
    with pytest.raises(LegacyLayoutError, match="metrify lake convert"):
        lake.write("readings", batch("M3"))
    moved = lake_upkeep.convert(lake, "readings")
    assert moved == 3 * 48
    assert lake_upkeep.legacy_days(lake, "readings") == {}
    expected = pl.concat([f for frames in old.values() for f in frames])
    assert content(lake.read("readings")).equals(content(expected))
    assert lake_upkeep.convert(lake, "readings") == 0  # nothing left: a re-run is a no-op


def test_vacuum_refuses_while_old_layout_files_remain(lake: Lake) -> None:
    lake.write("readings", batch("M1"))
    folder = Path(lake.uri("readings")) / f"date={DAY - dt.timedelta(days=1)}"
    folder.mkdir()
    batch("M2", DAY - dt.timedelta(days=1)).write_parquet(folder / f"part-{'0' * 32}.parquet")
    with pytest.raises(lake_upkeep.RetentionTooShort, match="metrify lake convert"):
        lake_upkeep.vacuum(lake, "readings", 0, force=True)
    assert (folder / f"part-{'0' * 32}.parquet").exists()
    lake_upkeep.convert(lake, "readings")
    lake_upkeep.vacuum(lake, "readings", 0, force=True)
    assert lake.read("readings").height == 96


def test_concurrent_writers_each_land_once(lake: Lake) -> None:
    """Two writers (a load and a server, two stream workers) committing to the same day
    at once: each commit that loses the race is retried, none is lost or doubled."""
    lake.write("readings", batch("M0"))  # the table exists before the race

    def writer(first: int) -> None:
        own = Lake(lake.url)  # its own process, as far as the table is concerned
        for i in range(first, first + 8):
            own.write("readings", batch(f"M{i}", second=i, n=6))

    threads = [threading.Thread(target=writer, args=(k,)) for k in (1, 101)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    back = lake.read("readings")
    assert back.height == 48 + 2 * 8 * 6
    assert back.select("meter_id", "ts", "ingested_at").is_unique().all()
    assert sorted(back["meter_id"].unique()) == sorted(
        ["M0", *[f"M{i}" for k in (1, 101) for i in range(k, k + 8)]]
    )


def test_a_table_written_before_new_contract_fields_takes_them(lake: Lake) -> None:
    """A lake written before ``generation_kwh`` existed: the next write adds the column,
    older rows read it as null and the new rows keep their values."""
    new = ["generation_kwh", "volume_m3", "export_register_kwh"]
    old = batch("M1").drop(new).with_columns(date=pl.col("ts").dt.date())
    write_deltalake(lake.uri("readings"), old.to_arrow(), partition_by=["date"])
    later = batch("M2").with_columns(generation_kwh=pl.lit(0.5))
    lake.write("readings", later)
    back = lake.read("readings")
    assert back.height == 96
    by_meter = back.group_by("meter_id").agg(pl.col("generation_kwh").sum(), n=pl.len())
    rows = dict(zip(by_meter["meter_id"], by_meter["generation_kwh"], strict=True))
    assert rows == {"M1": 0.0, "M2": 0.5 * 48}
    assert back.filter(pl.col("meter_id") == "M1")["generation_kwh"].null_count() == 48
