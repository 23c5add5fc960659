"""Loads of long, one-meter-per-file inputs: longer batches, parts of weeks, few lake commits.

Files that each hold one meter's months (a household export) are judged by the
detectors week by week; a batch that spans many weeks may grow to four times
``batch_size`` so each weekly pass covers more meters, and is then judged and written in
parts of a few weeks each, so the database writes one part while the next is judged.
The lake work of a load's batches is gathered
into one commit while the last batch is being written, and the last batch's follows.
Neither may change what is stored: the rows, flags, statuses and anomalies must be those
of plain ``batch_size`` batches, and the lake must hold every stored row.
"""

from __future__ import annotations

import dataclasses
import math

import deltalake
import polars as pl
import psycopg
import pytest

from metrify.contracts.records import READING
from metrify.pipeline import stages
from metrify.pipeline.session import LOAD_LAKE_ROWS
from metrify.settings import Settings, get_settings
from metrify.simulation import Fleet, FleetSpec
from metrify.stores import postgres
from support.pipeline import load_frames

METERS, DAYS = 8, 42
SPEC = FleetSpec(meters=METERS, days=DAYS, interval_s=1800, seed=5, fault_rate=0.5, chunk_days=7)
PER_METER = DAYS * 48  # about: the faults drop and repeat some rows
#: the batch size: more than one meter's file, less than two
BATCH = PER_METER * 6 // 5


def _by_meter() -> list[pl.DataFrame]:
    """The fleet as one frame per meter spanning all its days (a household's file)."""
    rows = pl.concat(list(Fleet(SPEC).readings()))
    return [part.sort("ts") for _, part in rows.group_by("meter_id", maintain_order=True)]


def _stored(conn: psycopg.Connection[tuple[object, ...]]) -> pl.DataFrame:
    rows = conn.execute(
        "SELECT meter_id, ts, import_kwh, quality, status FROM readings ORDER BY meter_id, ts"
    ).fetchall()
    return pl.DataFrame(
        rows, schema=["meter_id", "ts", "import_kwh", "quality", "status"], orient="row"
    ).with_columns(pl.col("ts").dt.convert_time_zone("UTC"))


def _anomalies(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT subject_id, kind, ts_start, ts_end FROM anomalies"
        " ORDER BY subject_id, kind, ts_start"
    ).fetchall()


def _reset(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        "TRUNCATE readings, reading_history, meters, quarantine, quality_daily,"
        " quality_dirty, anomalies, anomaly_state, anomaly_profile, lake_outbox"
    )


@pytest.fixture
def small(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("METRIFY_BATCH_SIZE", str(BATCH))
    get_settings.cache_clear()
    return get_settings()


def _load(
    settings: Settings, frames: list[pl.DataFrame], lake_rows: int = LOAD_LAKE_ROWS
) -> tuple[dict[str, object], int, int]:
    """Load ``frames`` as a file load does; (summary, batches judged, writes)."""
    pipeline, summary = load_frames(settings, READING, frames, lake_rows)
    return summary, pipeline.batches, pipeline.handed


def test_long_batches_store_what_plain_batches_store(
    small: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = _by_meter()
    assert len(frames) == METERS
    assert all(0.9 * PER_METER < f.height < 1.1 * PER_METER for f in frames)

    stretched, stretched_batches, stretched_writes = _load(small, frames)
    rows_stretched, anomalies_stretched = _stored(conn), _anomalies(conn)

    _reset(conn)
    monkeypatch.setattr(stages, "STRETCH", 1)
    monkeypatch.setattr(stages, "_week_slices", lambda assessed, rows: [assessed])  # whole
    plain, plain_batches, plain_writes = _load(small, frames)
    rows_plain, anomalies_plain = _stored(conn), _anomalies(conn)

    # six weeks per file: a batch is two meters' files (the first past BATCH rows), or
    # five when it may grow to four times that (four stay under 4 x BATCH, five pass it)
    assert plain_batches == plain_writes == math.ceil(METERS / 2)
    assert stretched_batches == math.ceil(METERS / 5)
    # each long batch was judged and written in parts of whole weeks
    assert stretched_writes > stretched_batches
    assert rows_plain.height >= sum(f.unique(["meter_id", "ts"]).height for f in frames)
    assert rows_stretched.equals(rows_plain)
    assert anomalies_plain  # the faults were found, so the comparison means something
    assert anomalies_stretched == anomalies_plain
    for count in ("read", "accepted", "gaps", "estimated", "rejected", "inserted"):
        assert stretched[count] == plain[count], count


def test_a_batch_of_a_few_days_keeps_batch_size(small: Settings) -> None:
    # the fleet by days (every meter in each frame): each batch spans under 14 days
    frames = list(Fleet(dataclasses.replace(SPEC, chunk_days=1)).readings())
    heights = [f.height for f in frames]
    _, batches, writes = _load(small, frames)
    # a batch ends with the first frame that brings it to BATCH rows
    expected, buffered = 0, 0
    for height in heights:
        buffered += height
        if buffered >= BATCH:
            expected, buffered = expected + 1, 0
    expected += buffered > 0
    assert BATCH // (METERS * 48) < 14  # each batch spans under two weeks
    assert batches == expected
    assert writes == batches  # each written whole


def test_a_load_writes_the_lake_in_two_commits_with_every_stored_row(
    small: Settings, conn: psycopg.Connection
) -> None:
    frames = _by_meter()
    summary, batches, _ = _load(small, frames)
    assert batches > 1
    lake = deltalake.DeltaTable(f"{small.lake}/readings")
    writes = [h for h in lake.history() if h.get("operation") != "CREATE TABLE"]
    # the batches durable before the last in one commit (made while the last one was
    # being written), then the last batch's
    assert len(writes) == 2
    in_lake = (
        pl.from_arrow(lake.to_pyarrow_table(columns=["meter_id", "ts", "import_kwh", "quality"]))
        .with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
        .sort("meter_id", "ts")
    )
    stored = _stored(conn).select("meter_id", "ts", "import_kwh", "quality")
    assert isinstance(in_lake, pl.DataFrame)
    assert in_lake.equals(stored)
    # the load is over: nothing is left for a catch-up
    assert conn.execute("SELECT count(*) FROM lake_outbox").fetchone() == (0,)
    assert summary["lake_files"] >= DAYS  # at least a file per day


def test_lake_commits_made_part_by_part_hold_every_row_once(
    small: Settings, conn: psycopg.Connection
) -> None:
    # a load far larger than its lake gathering (as the London year is than
    # LOAD_LAKE_ROWS): the lake is written in many commits while the parts after them
    # are judged and written, and still holds each stored row once, a file per day for
    # each batch that touched it at most
    frames = _by_meter()
    _, batches, writes = _load(small, frames, lake_rows=BATCH // 2)
    assert writes > batches > 1
    lake = deltalake.DeltaTable(f"{small.lake}/readings")
    commits = [h for h in lake.history() if h.get("operation") != "CREATE TABLE"]
    assert len(commits) > 2
    in_lake = (
        pl.from_arrow(lake.to_pyarrow_table(columns=["meter_id", "ts", "import_kwh", "quality"]))
        .with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
        .sort("meter_id", "ts")
    )
    assert isinstance(in_lake, pl.DataFrame)
    assert in_lake.equals(_stored(conn).select("meter_id", "ts", "import_kwh", "quality"))
    files = pl.DataFrame({"path": lake.file_uris()}).select(
        day=pl.col("path").str.extract(r"date=([0-9-]+)")
    )
    per_day = files.group_by("day").len()["len"]
    assert per_day.len() >= DAYS
    assert per_day.max() <= batches
    assert conn.execute("SELECT count(*) FROM lake_outbox").fetchone() == (0,)


def test_a_month_after_the_first_goes_to_its_partition_in_one_write_in_key_order(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole load is one batch judged in parts of one or two weeks; the second month
    # (February) spans two parts, and each later month goes in one COPY, in key order,
    # so its primary key's index is appended to. The first weeks go as they are judged.
    monkeypatch.setenv("METRIFY_BATCH_SIZE", str(METERS * PER_METER * 3 // 4))
    get_settings.cache_clear()
    big = get_settings()
    copies: list[tuple[str, pl.DataFrame]] = []
    real_copy = postgres.copy_binary

    def spy(cur: psycopg.Cursor, table: str, frame: pl.DataFrame) -> None:
        if table.startswith("readings_p"):
            copies.append((table, frame.select("meter_id", "ts")))
        real_copy(cur, table, frame)

    monkeypatch.setattr(postgres, "copy_binary", spy)
    frames = _by_meter()
    _, batches, writes = _load(big, frames)
    rows_parts, anomalies_parts = _stored(conn), _anomalies(conn)
    assert batches == 1 and writes > 2

    start = SPEC.start
    january = f"readings_p{start.year:04d}_{start.month:02d}"
    february = f"readings_p{start.year:04d}_{start.month + 1:02d}"
    tables = [table for table, _ in copies]
    assert tables.count(january) > 1  # the first weeks, written as judged
    assert tables.count(february) == 1
    (copied,) = [frame for table, frame in copies if table == february]
    assert copied.equals(copied.sort("meter_id", "ts"))
    assert copied.height == rows_parts.filter(pl.col("ts").dt.month() == start.month + 1).height

    # and what is stored is what a load written whole stores
    _reset(conn)
    copies.clear()
    monkeypatch.setattr(stages, "_week_slices", lambda assessed, rows: [assessed])
    _load(big, frames)
    assert _stored(conn).equals(rows_parts)
    assert anomalies_parts
    assert _anomalies(conn) == anomalies_parts


def test_a_long_history_of_few_meters_is_judged_and_written_in_parts_of_weeks(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eight meters' six weeks are far fewer rows than a part holds (batch_size is the
    # default), but as many weekly passes as a long history: with parts of at most two
    # weeks and a lake commit per fortnight of days, the load is judged, written and
    # sent to the lake in parts, and stores what a batch judged whole stores.
    monkeypatch.setattr(stages, "PART_WEEKS", 2)
    monkeypatch.setattr(stages, "LAKE_DAYS", 14)
    frames = _by_meter()
    assert sum(f.height for f in frames) < settings.batch_size // stages.SLICES
    _, batches, writes = _load(settings, frames)
    rows_parts, anomalies_parts = _stored(conn), _anomalies(conn)
    assert batches == 1
    assert writes >= math.ceil(DAYS / 14)  # six weeks in parts of two at most
    lake = deltalake.DeltaTable(f"{settings.lake}/readings")
    commits = [h for h in lake.history() if h.get("operation") != "CREATE TABLE"]
    assert len(commits) >= 3  # a commit per fortnight, not all at the end
    in_lake = (
        pl.from_arrow(lake.to_pyarrow_table(columns=["meter_id", "ts", "import_kwh", "quality"]))
        .with_columns(pl.col("ts").dt.convert_time_zone("UTC"))
        .sort("meter_id", "ts")
    )
    assert isinstance(in_lake, pl.DataFrame)
    assert in_lake.equals(rows_parts.select("meter_id", "ts", "import_kwh", "quality"))

    _reset(conn)
    monkeypatch.setattr(stages, "_week_slices", lambda assessed, rows: [assessed])
    monkeypatch.setattr(stages, "LAKE_DAYS", 10_000)
    _, _, whole_writes = _load(settings, frames)
    assert whole_writes == 1
    assert _stored(conn).equals(rows_parts)
    assert anomalies_parts  # the faults were found, so the comparison means something
    assert _anomalies(conn) == anomalies_parts
