"""A long load writes batch N in the background while batch N+1 is processed.

The overlapped pipeline must store exactly what the one-batch-at-a-time pipeline stores:
the same rows with the same quality flags and statuses, the same anomalies, the same
counts, and every input key exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import polars as pl
import psycopg
import pytest

from metrify.contracts.records import READING
from metrify.pipeline import stages as pipeline_module
from metrify.pipeline.session import ingest_frames, open_session
from metrify.settings import Settings, get_settings
from metrify.simulation import Fleet, FleetSpec

SPEC = FleetSpec(meters=30, days=35, interval_s=1800, seed=11, fault_rate=0.5, chunk_days=1)


def _frames() -> Iterator[pl.DataFrame]:
    yield from Fleet(SPEC).readings()


def _stored(conn: psycopg.Connection[tuple[object, ...]]) -> pl.DataFrame:
    rows = conn.execute(
        "SELECT meter_id, ts, import_kwh, quality, status FROM readings ORDER BY meter_id, ts"
    ).fetchall()
    return pl.DataFrame(
        rows,
        schema=["meter_id", "ts", "import_kwh", "quality", "status"],
        orient="row",
    ).with_columns(pl.col("ts").dt.convert_time_zone("UTC"))


def _anomalies(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT subject_id, kind, ts_start FROM anomalies ORDER BY subject_id, kind, ts_start"
    ).fetchall()


def _reset(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        "TRUNCATE readings, reading_history, meters, quarantine, quality_daily,"
        " quality_dirty, anomalies, anomaly_state, anomaly_profile"
    )


def test_overlapped_load_stores_what_a_sequential_load_stores(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "4000")  # ~13 batches of under three days
    monkeypatch.setenv("METRIFY_LAKE_ENABLED", "false")
    get_settings.cache_clear()
    small = get_settings()
    source_rows = pl.concat(list(_frames()))
    distinct_keys = source_rows.select("meter_id", "ts").unique().height

    with open_session(small) as session:
        overlapped = ingest_frames(session, READING, _frames(), source="sim").as_dict()
    stored_overlapped, anomalies_overlapped = _stored(conn), _anomalies(conn)

    _reset(conn)
    with open_session(small) as session:
        pipeline = session.pipeline(READING)  # no second connection: one batch at a time
        for frame in _frames():
            pipeline.submit(frame, source="sim")
        sequential = pipeline.close().as_dict()
    stored_sequential, anomalies_sequential = _stored(conn), _anomalies(conn)

    # every input key stored once (gap rows the VEE adds come on top)
    assert stored_overlapped.select("meter_id", "ts").n_unique() == stored_overlapped.height
    assert (
        stored_overlapped.join(
            source_rows.select("meter_id", "ts").unique(), on=["meter_id", "ts"], how="semi"
        ).height
        == distinct_keys
    )
    assert stored_overlapped.equals(stored_sequential)
    assert anomalies_overlapped == anomalies_sequential
    assert len(anomalies_overlapped) > 0  # the faults were judged, not skipped
    for count in ("read", "accepted", "inserted", "duplicates", "gaps", "estimated", "rejected"):
        assert overlapped[count] == sequential[count], count
    assert overlapped["statuses"] == sequential["statuses"]
    assert overlapped["inserted"] == stored_overlapped.height


def test_restart_midway_judges_as_one_run(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new pipeline (a restarted process) reloads VEE history and detector state from
    the store: what it then stores equals what one uninterrupted pipeline stores. The
    detector state is saved sparsely (changed slots only, never-learnt hours absent), so
    this checks that the saved state reads back as what was in memory."""
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "4000")
    monkeypatch.setenv("METRIFY_LAKE_ENABLED", "false")
    get_settings.cache_clear()
    small = get_settings()
    frames = list(_frames())
    # one frame is a day of 1,440 readings, so a batch is three frames: the restart falls
    # on a batch boundary of the uninterrupted run (detectors flag within their batch)
    half = 3 * (len(frames) // 6)

    with open_session(small) as session:
        ingest_frames(session, READING, frames, source="sim")
    stored_once, anomalies_once = _stored(conn), _anomalies(conn)

    _reset(conn)
    with open_session(small) as session:
        ingest_frames(session, READING, frames[:half], source="sim")
    with open_session(small) as session:  # a fresh process: caches empty
        ingest_frames(session, READING, frames[half:], source="sim")
    stored_twice, anomalies_twice = _stored(conn), _anomalies(conn)

    assert len(anomalies_once) > 0
    assert stored_twice.equals(stored_once)
    assert anomalies_twice == anomalies_once


def test_a_batch_lands_while_the_next_one_is_still_being_written(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A stream worker lands (and commits) batch N while N+1 is written: settling up to
    N must not wait for N+1's write, and N must be stored when it returns."""
    import threading

    first, second = list(
        Fleet(
            FleetSpec(meters=4, days=2, interval_s=1800, seed=3, fault_rate=0.0, chunk_days=1)
        ).readings()
    )
    held = first.sort("meter_id", "ts").head(1)
    url = settings.database_url
    assert url is not None
    with open_session(settings) as session:
        pipeline = session.pipeline(READING, overlap=True)
        pipeline.submit(first, source="sim")
        pipeline.flush()
        pipeline.settle()
        with psycopg.connect(url.get_secret_value()) as blocker:
            # another transaction holds one stored reading: only a write of it must wait
            blocker.execute(
                "SELECT 1 FROM readings WHERE meter_id = %s AND ts = %s FOR UPDATE",
                (held["meter_id"][0], held["ts"][0]),
            )
            pipeline.submit(second, source="sim")
            pipeline.flush()  # batch N: new readings, written in the background
            landed = pipeline.handed
            pipeline.submit(held.with_columns(pl.col("import_kwh") + 1.0), source="fix")
            pipeline.flush()  # batch N+1, a correction: its write waits for the row
            done = threading.Event()
            waiter = threading.Thread(
                target=lambda: (pipeline.settle(upto=landed), done.set()), daemon=True
            )
            waiter.start()
            returned = done.wait(20)
            stored_while_held = conn.execute("SELECT count(*) FROM readings").fetchone()
            blocker.rollback()
        waiter.join(20)
        pipeline.settle()
    assert returned, "landing batch N waited for batch N+1's write"
    assert stored_while_held == (first.height + second.height,)
    fixed = conn.execute(
        "SELECT import_kwh FROM readings WHERE meter_id = %s AND ts = %s",
        (held["meter_id"][0], held["ts"][0]),
    ).fetchone()
    assert fixed == (held["import_kwh"][0] + 1.0,)


def _state(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    profile = conn.execute(
        "SELECT subject_id, how, level, spread, weight FROM anomaly_profile"
        " ORDER BY subject_id, how"
    ).fetchall()
    scalars = conn.execute(
        "SELECT subject_id, last_ts, ewm_obs, ewm_exp FROM anomaly_state ORDER BY subject_id"
    ).fetchall()
    return (
        pl.DataFrame(profile, schema=["id", "how", "level", "spread", "weight"], orient="row"),
        pl.DataFrame(scalars, schema=["id", "last_ts", "obs", "exp"], orient="row"),
    )


def test_a_long_load_saves_detector_state_every_few_batches_and_at_the_end(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferred state saving changes when the state is written, never what: at the end
    the store holds what saving with every batch stores; before the end, nothing."""
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "4000")
    monkeypatch.setenv("METRIFY_LAKE_ENABLED", "false")
    get_settings.cache_clear()
    small = get_settings()
    frames = list(_frames())

    with open_session(small) as session:
        pipeline = session.pipeline(READING, overlap=True)  # state saved with each batch
        for frame in frames:
            pipeline.submit(frame, source="sim")
        pipeline.close()
    every_batch = _state(conn)
    anomalies = _anomalies(conn)

    _reset(conn)
    with open_session(small) as session:
        pipeline = session.pipeline(READING, overlap=True, state_every_s=3600)
        for frame in frames:
            pipeline.submit(frame, source="sim")
        pipeline.flush()  # every batch written: close() finds nothing left to flush
        pipeline.settle()
        assert pipeline.handed > 5
        assert _state(conn)[0].height == 0 and _state(conn)[1].height == 0
        assert conn.execute("SELECT count(*) FROM readings").fetchone() != (0,)
        pipeline.close()
    deferred = _state(conn)

    assert every_batch[0].height > 1000  # hour-of-week slots of 30 meters were learnt
    assert deferred[0].equals(every_batch[0])
    assert deferred[1].equals(every_batch[1])
    assert _anomalies(conn) == anomalies


def test_a_long_load_saves_detector_state_once_its_interval_has_passed(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state is saved with the first batch handed to the writer ``state_every_s``
    after the last save (by the pipeline's clock, here a hand-moved one), not before."""
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "4000")
    monkeypatch.setenv("METRIFY_LAKE_ENABLED", "false")
    get_settings.cache_clear()
    clock = [0.0]
    monkeypatch.setattr(
        pipeline_module,
        "time",
        SimpleNamespace(monotonic=lambda: clock[0], perf_counter=time.perf_counter),
    )
    frames = list(_frames())
    third = len(frames) // 3
    with open_session(get_settings()) as session:
        pipeline = session.pipeline(READING, overlap=True, state_every_s=60)

        def load(part: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
            for frame in part:
                pipeline.submit(frame, source="sim")
            pipeline.flush()
            pipeline.settle()
            return _state(conn)

        before = pipeline.handed
        assert load(frames[:third])[0].height == 0  # nothing saved yet
        assert pipeline.handed > before + 2
        clock[0] = 59.0
        assert load(frames[third : 2 * third])[0].height == 0
        clock[0] = 61.0
        saved = load(frames[2 * third : 2 * third + 3])  # one batch, saved with it
        assert saved[0].height > 1000 and saved[1].height == 30
        clock[0] = 100.0  # 39 s after that save
        assert load(frames[2 * third + 3 :])[0].equals(saved[0])
        pipeline.close()
    assert not _state(conn)[0].equals(saved[0])  # the rest was saved at close


def test_the_state_saved_at_close_never_lands_ahead_of_the_last_batch(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() upserts the deferred state while the writer stores the last batch, but
    commits it only once that batch is durable: if the batch fails, no state is stored
    (a re-run then judges those rows again instead of skipping them)."""
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "4000")
    monkeypatch.setenv("METRIFY_LAKE_ENABLED", "false")
    get_settings.cache_clear()
    frames = list(_frames())
    with open_session(get_settings()) as session:
        pipeline = session.pipeline(READING, overlap=True, state_every_s=3600)
        for frame in frames[:-3]:
            pipeline.submit(frame, source="sim")
        pipeline.flush()
        pipeline.settle()
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        assert stored is not None and stored[0] > 0
        assert pipeline._writer is not None

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(pipeline._writer, "write_series", broken)
        for frame in frames[-3:]:
            pipeline.submit(frame, source="sim")
        with pytest.raises(RuntimeError, match="disk full"):
            pipeline.close()
    assert conn.execute("SELECT count(*) FROM readings").fetchone() == stored
    profile, scalars = _state(conn)
    assert profile.height == 0 and scalars.height == 0


def test_daily_scores_are_refreshed_beside_the_writes_and_a_failed_refresh_loses_nothing(
    settings: Settings,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A load refreshes the daily scores on a connection of their own while batches go on
    being written. One refresh fails: it is logged, the load goes on, and its stale
    marks are taken by a later one, so every day's score counts what was stored."""
    monkeypatch.setenv("METRIFY_BATCH_SIZE", "4000")
    monkeypatch.setenv("METRIFY_LAKE_ENABLED", "false")
    monkeypatch.setenv("METRIFY_QUALITY_REFRESH_S", "0")  # due after every batch
    get_settings.cache_clear()
    frames = list(_frames())
    threads: list[str] = []
    with open_session(get_settings()) as session:
        pipeline = session.pipeline(READING, overlap=True, scores_apart=True)
        refresher = pipeline._refresher
        assert refresher is not None and pipeline._writer is not None
        assert refresher.conn is not pipeline._writer.conn
        real = refresher.refresh_quality_daily

        def flaky() -> int:
            threads.append(threading.current_thread().name)
            if len(threads) == 1:
                raise psycopg.OperationalError("server closed the connection")
            return real()

        monkeypatch.setattr(refresher, "refresh_quality_daily", flaky)
        for frame in frames[: len(frames) // 2]:
            pipeline.submit(frame, source="sim")
            pipeline.flush()
            pipeline.settle()
            pipeline._collect_refresh()
        assert len(threads) > 3 and all(name.startswith("scores") for name in threads)
        assert "refresh failed" in caplog.text
        scored = conn.execute("SELECT count(*) FROM quality_daily").fetchone()
        assert scored is not None and scored[0] > 0  # before close, in the background
        for frame in frames[len(frames) // 2 :]:
            pipeline.submit(frame, source="sim")
        pipeline.close()
    expected = conn.execute(
        "SELECT r.meter_id, (r.ts AT TIME ZONE coalesce(m.timezone, 'UTC'))::date AS day,"
        " count(*) FILTER (WHERE r.quality & 1 = 0)"
        " FROM readings r LEFT JOIN meters m USING (meter_id) GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    got = conn.execute("SELECT meter_id, day, present FROM quality_daily ORDER BY 1, 2").fetchall()
    assert len(expected) > 30 * 30 and got == expected


def test_a_history_reload_keeps_the_batch_still_being_written(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A late reading, older than what a meter's cached history covers, makes VEE read
    that meter's history from the database again, while the previous batch may still be
    on its way there. The reload must keep what this process wrote: without it, the next
    batch was judged as if the previous one had never come (VEE filled its hours with
    gap rows) and its re-sent readings were missed and broke the fast COPY."""
    import datetime as dt

    day = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)

    def rows(times: list[dt.datetime], kwh: float) -> pl.DataFrame:
        return pl.DataFrame(
            {"meter_id": "L1", "ts": times, "interval_s": 1800, "import_kwh": kwh},
            schema_overrides={"ts": pl.Datetime("us", "UTC"), "interval_s": pl.Int32()},
        )

    half = dt.timedelta(minutes=30)
    first = rows([day + i * half for i in range(2, 48)], 0.3)  # 01:00 .. 23:30
    late = rows([day + half], 0.3)  # 00:30, before anything cached for L1
    again = first.slice(20, 1)  # re-sent, unchanged
    next_day = rows([day + dt.timedelta(days=1) + i * half for i in range(48)], 0.3)
    url = settings.database_url
    assert url is not None
    with psycopg.connect(url.get_secret_value()) as blocker:
        # the first batch's write waits (registering its meter) until the timer lets go
        blocker.execute("LOCK TABLE meters IN SHARE MODE")
        release = threading.Timer(2.0, blocker.rollback)
        release.start()
        with open_session(settings) as session:
            pipeline = session.pipeline(READING, overlap=True)
            pipeline.submit(first, source="day")
            pipeline.flush()
            pipeline.submit(pl.concat([late, again, next_day]), source="more")
            pipeline.flush()
            summary = pipeline.close()
        release.join()
    stored = conn.execute("SELECT count(*), count(*) FILTER (WHERE quality & 1 <> 0) FROM readings")
    # every input key once; no gap row (the hours of the first batch are not missing)
    assert stored.fetchone() == (first.height + 1 + next_day.height, 0)
    assert summary.unchanged == 1 and summary.gaps == 0
