"""Kafka ingestion end to end: the real confluent-kafka client against librdkafka's mock
cluster, real PostgreSQL, the real worker (in a thread, or as a process to kill).

Expected rows come from the simulator's frames directly, never from the pipeline, and are
compared with PostgreSQL by key and by every value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import REGISTRY
from pydantic import SecretStr
from typer.testing import CliRunner

from metrify.contracts.records import GRID, READING, WEATHER
from metrify.pipeline.stages import Pipeline
from metrify.pipeline.worker import run_worker
from metrify.settings import Settings
from metrify.settings.kafka import KINDS, KafkaSettings
from metrify.simulation import Fleet, FleetSpec, stream_fleet
from metrify.sources.kafka import (
    Sender,
    encode_records,
    frame_messages,
    produce_files,
)
from metrify.sources.mapping import build_mapping
from support.kafka import fleet_frames
from support.paths import REPO

pytestmark = pytest.mark.kafka

PYTHON = REPO / ".venv" / "bin" / "python"
READING_COLUMNS = ", ".join(READING.fields)


def dead_letters(kafka: KafkaSettings, count: int) -> list[tuple[bytes, dict[str, bytes]]]:
    """The first ``count`` messages of the dead-letter topic (value, headers), waiting
    up to 30 s for them."""
    dlq = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"dlq-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    dlq.subscribe([kafka.topic_deadletter])
    letters: list[tuple[bytes, dict[str, bytes]]] = []
    deadline = time.monotonic() + 30
    while len(letters) < count and time.monotonic() < deadline:
        for msg in dlq.consume(10, 0.5):
            if msg.error() is None:
                headers = {k: bytes(v or b"") for k, v in msg.headers() or []}
                letters.append((msg.value() or b"", headers))
    dlq.close()
    return letters


class ThreadWorker:
    """run_worker on a thread, stopped through its event."""

    def __init__(self, settings: Settings, kafka: KafkaSettings) -> None:
        self.stop = threading.Event()
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(settings, kafka), daemon=True)
        self.thread.start()

    def _run(self, settings: Settings, kafka: KafkaSettings) -> None:
        self.code = run_worker(settings, kafka, stop_event=self.stop)

    def finish(self, timeout: float = 30) -> int | None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        return self.code


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    worker: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``check``; on time-out say what was awaited and, for a worker process, the
    end of its log (a stalled worker in CI is otherwise a silent mystery)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            log = _LOGS.get(worker.pid) if worker is not None else None
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


def count(conn: psycopg.Connection[tuple[object, ...]], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def stored_readings(conn: psycopg.Connection[tuple[object, ...]]) -> pl.DataFrame:
    """Stored real readings (VEE's gap rows, flagged missing, left out)."""
    rows = conn.execute(f"SELECT {READING_COLUMNS} FROM readings WHERE quality & 1 = 0").fetchall()
    return pl.DataFrame(rows, schema=READING.schema, orient="row").sort("meter_id", "ts")


def all_committed(kafka: KafkaSettings, kinds: tuple[str, ...] = ("readings", "grid")) -> bool:
    """True when the group's committed offset is the end of every partition."""
    probe = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": kafka.group_id, "log_level": 3}
    )
    try:
        for kind in kinds:
            topic = kafka.topic(kind)
            parts = probe.list_topics(topic, timeout=10).topics[topic].partitions
            tps = [TopicPartition(topic, p) for p in parts]
            for tp in probe.committed(tps, timeout=10):
                high = probe.get_watermark_offsets(tp, timeout=10)[1]
                if high > 0 and tp.offset != high:
                    return False
        return True
    finally:
        probe.close()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def assert_exact(
    conn: psycopg.Connection[tuple[object, ...]], readings: pl.DataFrame, grid: pl.DataFrame
) -> None:
    """PostgreSQL holds exactly these records (keys and values), and no history."""
    stored = stored_readings(conn)
    assert stored.height == readings.height == count(conn, "readings")  # and no gap rows
    assert stored.equals(readings)
    rows = conn.execute(f"SELECT {', '.join(GRID.fields)} FROM grid_measurements").fetchall()
    stored_grid = pl.DataFrame(rows, schema=GRID.schema, orient="row").sort("node_id", "ts")
    assert stored_grid.equals(grid)
    assert count(conn, "reading_history") == 0
    assert count(conn, "grid_measurement_history") == 0
    assert count(conn, "quarantine") == 0


# --------------------------------------------------------------------------- worker


def test_round_trip_batches_and_single_records(
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    fleet = Fleet(FleetSpec(meters=40, days=2, fault_rate=0.0, seed=21))
    readings, grid = fleet_frames(fleet)
    weather = fleet.weather()
    sender = Sender(kafka)
    partition_of: dict[str, set[int]] = {}  # meter -> partitions its messages went to

    def delivered(msg: Any, records: int, context: object) -> None:
        if msg.topic() == kafka.topic_readings:
            partition_of.setdefault(msg.key().decode(), set()).add(msg.partition())

    sender.on_delivered = delivered
    half = readings.height // 2
    sender.send_frame("readings", readings.head(half), max_records=48)  # JSON arrays
    sender.send_frame("readings", readings.slice(half), max_records=1)  # one record each
    sender.send_frame("grid", grid)
    sender.send_frame("weather", weather, max_records=1)
    sender.flush()
    assert sender.delivered_records == readings.height + grid.height + weather.height

    worker = ThreadWorker(settings, kafka)
    wait_for(lambda: count(conn, "readings") >= readings.height, 60, "readings")
    wait_for(lambda: count(conn, "weather_observations") >= weather.height, 30, "weather")
    wait_for(lambda: all_committed(kafka, KINDS), 30, "offsets committed")
    assert worker.finish() == 0

    assert_exact(conn, readings, grid)
    rows = conn.execute(f"SELECT {', '.join(WEATHER.fields)} FROM weather_observations").fetchall()
    stored = pl.DataFrame(rows, schema=WEATHER.schema, orient="row").sort("station_id", "ts")
    assert stored.equals(weather.sort("station_id", "ts"))
    # Each reading names the partition it came through, though a batch's partitions
    # are decoded together: keys keep to one partition, and several were used.
    stored_sources = conn.execute("SELECT DISTINCT meter_id, source FROM readings").fetchall()
    assert len(stored_sources) == readings["meter_id"].n_unique()
    for meter, source in stored_sources:
        (partition,) = partition_of[str(meter)]
        assert source == f"kafka:{kafka.topic_readings}:{partition}"
    assert len({p for parts in partition_of.values() for p in parts}) > 1
    # records per status reach the metrics (what a dashboard reads)
    assert metric("metrify_records_total", kind="readings", status="valid") > 0


def test_poison_messages_dead_letter_and_quarantine(
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    kafka = kafka.model_copy(update={"max_message_bytes": 100_000})
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=3, days=1, fault_rate=0.0, seed=5)))
    good = [orjson.loads(v) for _, v, _ in frame_messages(READING, readings, max_records=1)]
    topic = kafka.topic_readings
    poison = {
        b'{"meter_id": "MTR000001", "ts": ': "invalid JSON",
        b"42": "not a JSON object or array of objects",
        b'\xff\xfe{"meter_id": "x"}': "invalid UTF-8",
        b'[{"meter_id":"M","note":"' + b"a" * 200_000 + b'"}]': "message larger than 100000",
    }
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 3})
    key = b"MTR000001"  # one key: poison sits between good records of one partition
    producer.produce(topic, encode_records(good[:100]), key)
    for value in poison:
        producer.produce(topic, value, key)
    wrong_type = {**good[100], "import_kwh": "lots"}
    producer.produce(topic, encode_records([wrong_type, *good[101:150]]), key)
    producer.produce(topic, orjson.dumps([good[150], 7]), key)
    producer.produce(topic, encode_records(good[151:]), key)
    producer.flush(10)

    worker = ThreadWorker(settings, kafka)
    wait_for(lambda: count(conn, "readings") >= readings.height - 1, 60, "good readings")
    wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
    assert worker.finish() == 0

    expected = readings.join(
        pl.DataFrame([wrong_type]).select(
            "meter_id",
            pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC"),
        ),
        on=["meter_id", "ts"],
        how="anti",
    )
    assert stored_readings(conn).equals(expected)
    # the quarantined reading leaves a hole, which VEE fills with a gap row flagged missing
    gap = conn.execute(
        "SELECT meter_id, ts, quality & 1 FROM readings WHERE quality & 1 <> 0"
    ).fetchall()
    assert [(m, t.isoformat()) for m, t, _ in gap] == [  # type: ignore[attr-defined]
        (wrong_type["meter_id"], wrong_type["ts"].replace("Z", "+00:00"))
    ]

    reasons = dict(conn.execute("SELECT reason, raw FROM quarantine").fetchall())
    assert len(reasons) == len(poison) + 2
    for value, why in poison.items():
        matched = [r for r in reasons if str(r).startswith(why)]
        assert matched, f"no quarantine row for {why}"
        if len(value) < 1000:
            assert reasons[matched[0]] == value.decode("utf-8", errors="replace")
    assert "non-numeric import_kwh" in reasons
    assert reasons["not a JSON object"] == "7"

    letters = dead_letters(kafka, len(poison))
    assert sorted(v for v, _ in letters) == sorted(poison)
    for value, headers in letters:
        assert headers["error"].decode().startswith(poison[value])
        assert headers["topic"] == topic.encode()
        assert headers["kind"] == b"readings"
        assert int(headers["offset"]) >= 1 and int(headers["partition"]) >= 0


def test_produce_files_with_mapping(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    """Files go out with ingest's readers and --map; undecodable rows to the DLT."""
    path = tmp_path / "export.csv"
    path.write_text(
        "MeterRef;Start;kWh\n"
        "A-1;2025-03-01 00:00;0.212\n"
        "A-1;2025-03-01 00:30;0.18\n"
        "A-2;2025-03-01 00:00;1.07\n"
        "A-2;not a time;0.5\n"
    )
    mapping = build_mapping(
        READING,
        maps=["meter_id=MeterRef", "ts=Start", "import_kwh=kWh"],
        sets=[],
        scales=[],
        interval_s=1800,
        tz="Europe/London",
        ts_end=False,
    )
    summary = produce_files(Sender(kafka), "readings", [path], mapping)
    assert (summary.sent, summary.rejected) == (3, 1)
    assert summary.reasons == {"unparseable ts": 1}

    worker = ThreadWorker(settings, kafka)
    wait_for(lambda: count(conn, "readings") >= 3, 60, "readings")
    wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
    assert worker.finish() == 0
    rows = conn.execute(
        "SELECT meter_id, ts::text, interval_s, import_kwh FROM readings ORDER BY 1, 2"
    ).fetchall()
    assert rows == [
        ("A-1", "2025-03-01 00:00:00+00", 1800, 0.212),
        ("A-1", "2025-03-01 00:30:00+00", 1800, 0.18),
        ("A-2", "2025-03-01 00:00:00+00", 1800, 1.07),
    ]


def test_rebalance_two_workers(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    """A second worker joins mid-stream, then the first leaves: exact rows, no history.

    Each worker is a process of its own, as in a deployment: two consumers on threads
    of one process once hung a CI run in the first one's ``close()`` (the test's join
    never returned); a process that hangs is killed and the test fails instead."""
    fleet = Fleet(FleetSpec(meters=150, days=4, fault_rate=0.0, seed=8))
    readings, grid = fleet_frames(fleet)
    # slow enough (57,600 readings in 23 s) for two processes to start and rebalance
    # while it lasts
    producer = threading.Thread(
        target=stream_fleet, args=(fleet, Sender(kafka), 2_500.0, False), daemon=True
    )
    first = spawn_worker(tmp_path)
    producer.start()
    wait_for(running(first, lambda: count(conn, "readings") > 5_000), 60, "first rows", first)
    second = spawn_worker(tmp_path)
    wait_for(running(second, lambda: "assigned" in _log(second)), 60, "the join", second)
    seen = count(conn, "readings")
    after_join = running(second, lambda: count(conn, "readings") > seen + 2_000)
    wait_for(after_join, 60, "rows after the join", second)
    assert count(conn, "readings") < readings.height, "the first must leave mid-stream"
    first.send_signal(signal.SIGTERM)  # leaves the group mid-stream
    assert first.wait(30) == 0
    producer.join(60)
    done = running(second, lambda: count(conn, "readings") >= readings.height)
    wait_for(done, 90, "all readings", second)
    wait_for(running(second, lambda: all_committed(kafka)), 30, "offsets committed", second)
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    assert "revoked" in _log(first)  # it did hand partitions over to the second
    assert_exact(conn, readings, grid)


def test_database_outage(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """PostgreSQL unreachable mid-stream (connections cut, new ones refused): the worker
    backs off, reconnects, rewinds and loses nothing."""
    began = _one_value(conn, "SELECT clock_timestamp()")
    proxy = PgProxy(conn)
    url = settings.database_url
    assert url is not None
    through_proxy = settings.model_copy(update={"database_url": SecretStr(proxy.url(conn))})
    fleet = Fleet(FleetSpec(meters=100, days=4, fault_rate=0.0, seed=13))
    readings, grid = fleet_frames(fleet)
    retries = metric("metrify_worker_retries_total")
    producer = threading.Thread(
        target=stream_fleet, args=(fleet, Sender(kafka), 8_000.0, False), daemon=True
    )
    worker = ThreadWorker(through_proxy, kafka)
    producer.start()
    wait_for(lambda: count(conn, "readings") > 3_000, 60, "first rows")
    proxy.block()
    time.sleep(4)
    during = count(conn, "readings")
    time.sleep(1)
    assert count(conn, "readings") == during  # really unreachable
    proxy.unblock()
    producer.join(60)
    wait_for(lambda: count(conn, "readings") >= readings.height, 90, "all readings")
    wait_for(lambda: all_committed(kafka), 30, "offsets committed")
    assert worker.finish() == 0
    proxy.close()
    assert metric("metrify_worker_retries_total") > retries
    assert_exact(conn, readings, grid)
    # the worker closed its sessions and the proxy ended every connection: none of the
    # sessions this test opened through it stays behind (one did, idle, for the rest of
    # the test session, and later tests counting sessions saw it)
    through = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        " AND backend_start >= %s"
    )
    wait_for(lambda: _one(conn, through, began) == 0, 10, "the proxied sessions to end")


def _one_value(conn: psycopg.Connection[tuple[object, ...]], query: str, *params: object) -> object:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str, *params: object) -> int:
    value = _one_value(conn, query, *params)
    assert isinstance(value, int)
    return value


def committed_offsets(kafka: KafkaSettings, kind: str) -> dict[int, int]:
    """The group's committed offset of each partition of ``kind``'s topic (negative:
    nothing committed)."""
    probe = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": kafka.group_id, "log_level": 3}
    )
    try:
        topic = kafka.topic(kind)
        parts = probe.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in parts]
        return {tp.partition: tp.offset for tp in probe.committed(tps, timeout=10)}
    finally:
        probe.close()


def test_write_failing_after_hand_over_commits_nothing_and_redelivers(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store write of the first batch fails after the batch was handed to the
    background writer, while the worker waits for it to become durable. Until then no
    offset may be committed (a commit then would skip the batch for good); after the
    failure the batch is read again and stored exactly once."""
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=6, days=1, fault_rate=0.0, seed=17)))
    sender = Sender(kafka)
    sender.send_frame("readings", readings, max_records=48)
    sender.flush()
    assert sender.delivered_records == readings.height

    in_write = threading.Event()  # the first write has the batch and is running
    settling = threading.Event()  # the worker waits for that batch to be durable
    release = threading.Event()  # the test has looked: let the write fail
    written: list[int] = []  # rows each readings write was given
    original_write = Pipeline._write_series
    original_settle = Pipeline.settle

    def failing_write(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        if self.contract is READING:
            written.append(args[1].height)
            if len(written) == 1:
                in_write.set()
                assert release.wait(60), "the test never released the write"
                raise psycopg.OperationalError("connection lost while writing (injected)")
        return original_write(self, *args, **kwargs)

    def watched_settle(self: Pipeline, upto: int | None = None) -> Any:
        if self.contract is READING:
            settling.set()
        return original_settle(self, upto)

    monkeypatch.setattr(Pipeline, "_write_series", failing_write)
    monkeypatch.setattr(Pipeline, "settle", watched_settle)
    worker = ThreadWorker(settings, kafka)
    try:
        assert in_write.wait(60), "no batch reached the writer"
        # the worker moves on to land the batch: it now waits for the write to finish
        assert settling.wait(60), "the worker never waited for the batch to be durable"
        assert count(conn, "readings") == 0
        assert all(offset < 0 for offset in committed_offsets(kafka, "readings").values())
        release.set()
        wait_for(lambda: count(conn, "readings") >= readings.height, 60, "the batch again")
        wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
    finally:
        release.set()  # a failed check must not leave the worker blocked or running
        code = worker.finish()
    assert code == 0
    # the failed write had readings, and the messages came again to a later write
    assert written[0] > 0 and len(written) >= 2
    stored = stored_readings(conn)
    assert stored.height == readings.height == count(conn, "readings")
    assert stored.equals(readings)
    assert count(conn, "reading_history") == 0


# --------------------------------------------------------------------------- processes


#: worker processes this module started; any still running after a test are killed
_SPAWNED: list[subprocess.Popen[bytes]] = []
#: each spawned worker's log file, by process id
_LOGS: dict[int, Path] = {}


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    """A test that fails between spawning and stopping a worker must not leave it
    running (one did, for half an hour after a failed CI run)."""
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def spawn_worker(tmp_path: Path) -> subprocess.Popen[bytes]:
    path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
    proc = subprocess.Popen(
        [str(PYTHON), "-m", "metrify.pipeline.worker"],
        env={**os.environ, "METRIFY_LOG_LEVEL": "INFO"},
        stdout=subprocess.DEVNULL,
        stderr=path.open("wb"),
    )
    _SPAWNED.append(proc)
    _LOGS[proc.pid] = path
    return proc


def _log(proc: subprocess.Popen[bytes]) -> str:
    """What a spawned worker has logged so far."""
    return _LOGS[proc.pid].read_text(errors="replace")


def running(proc: subprocess.Popen[bytes], check: Callable[[], bool]) -> Callable[[], bool]:
    """``check``, failing at once if the worker process died."""

    def probe() -> bool:
        assert proc.poll() is None, f"worker exited with {proc.returncode}"
        return check()

    return probe


def test_sigkill_crashes_lose_and_duplicate_nothing(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    """240k readings streamed while the worker is SIGKILLed at random points, then
    restarted: exactly the expected rows, no history (re-delivery changed nothing)."""
    fleet = Fleet(FleetSpec(meters=500, days=5, fault_rate=0.0, seed=99))
    readings, grid = fleet_frames(fleet)
    assert readings.height >= 200_000
    producer = threading.Thread(
        target=stream_fleet, args=(fleet, Sender(kafka), 8_000.0, False), daemon=True
    )
    producer.start()
    rng = random.Random(4)
    kills = 0
    for _ in range(3):
        worker = spawn_worker(tmp_path)
        seen = count(conn, "readings")
        wait_for(running(worker, lambda: count(conn, "readings") > seen), 60, "writes", worker)  # noqa: B023
        time.sleep(rng.uniform(0.0, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        kills += 1
    assert count(conn, "readings") < readings.height, "crashes must land mid-stream"
    producer.join(60)
    worker = spawn_worker(tmp_path)
    done = running(worker, lambda: count(conn, "readings") >= readings.height)
    wait_for(done, 120, "all readings", worker)
    wait_for(running(worker, lambda: all_committed(kafka)), 30, "offsets committed", worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert kills == 3
    assert_exact(conn, readings, grid)


def test_sigterm_commits_and_exits_zero(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    readings, grid = fleet_frames(Fleet(FleetSpec(meters=30, days=2, fault_rate=0.0, seed=2)))
    sender = Sender(kafka)
    sender.send_frame("readings", readings)
    sender.send_frame("grid", grid)
    sender.flush()
    worker = spawn_worker(tmp_path)
    done = running(
        worker,
        lambda: (
            count(conn, "readings") >= readings.height
            and count(conn, "grid_measurements") >= grid.height
        ),
    )
    # generous: a loaded CI machine once took over 60 s here (the log now says why)
    wait_for(done, 120, "readings and grid", worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert all_committed(kafka)  # committed before leaving: a restart re-reads nothing
    assert_exact(conn, readings, grid)


def test_simulate_streams_to_kafka_at_the_asked_rate(
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """``metrify simulate --to kafka``: reference data stored, every reading, grid and
    weather record on its topic, paced by --rate; a worker then stores them exactly."""
    from metrify.cli import app

    spec = FleetSpec(meters=12, days=1, fault_rate=0.0, seed=31)
    readings, grid = fleet_frames(Fleet(spec))
    rate = 4_000.0
    args = ["simulate", "--meters", "12", "--days", "1", "--fault-rate", "0", "--seed", "31"]
    result = CliRunner().invoke(app, [*args, "--to", "kafka", "--rate", str(rate), "--json"])
    assert result.exit_code == 0, result.output
    sent = orjson.loads(result.output.strip().splitlines()[-1])["sent"]
    assert sent["readings"] == readings.height and sent["grid"] == grid.height
    # paced: no faster than the rate (the first slice goes at once)
    assert sent["seconds"] >= (readings.height - rate * 0.05) / rate
    assert count(conn, "meters") == spec.meters  # reference data went through the pipeline
    worker = ThreadWorker(settings, kafka)
    wait_for(lambda: count(conn, "readings") >= readings.height, 60, "readings")
    wait_for(lambda: all_committed(kafka), 30, "offsets committed")
    assert worker.finish() == 0
    assert_exact(conn, readings, grid)
    bad = CliRunner().invoke(app, [*args, "--to", "kafka", "--rate", "0"])
    assert bad.exit_code != 0 and "--rate" in bad.output and "Traceback" not in bad.output


def test_commands_need_kafka_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from metrify.cli import app

    monkeypatch.delenv("METRIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    for args in (["worker"], ["produce", "readings", "x.csv"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert "METRIFY_KAFKA_BOOTSTRAP_SERVERS" in result.output
        assert "Traceback" not in result.output


# --------------------------------------------------------------------------- helpers


class PgProxy:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new
    ones: from the worker's side the database is unreachable.

    Every socket is ended with ``shutdown`` before ``close``. A plain ``close`` of a
    socket that the other direction's thread is blocked reading does not end the TCP
    connection on Linux (the blocked ``recv`` keeps the socket alive), so a connection
    whose client went away stayed open to PostgreSQL as an idle owner session, with the
    worker's last query, for the rest of the test session (and later tests counting
    sessions saw it)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        host, port = conn.info.host, conn.info.port
        self._target: tuple[int, object] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
            if host.startswith("/")
            else (socket.AF_INET, (host, port))
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._blocked = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, conn: psycopg.Connection[tuple[object, ...]]) -> str:
        info = conn.info
        password = f":{info.password}" if info.password else ""
        return f"postgresql://{info.user}{password}@127.0.0.1:{self.port}/{info.dbname}"

    def block(self) -> None:
        with self._lock:
            self._blocked.set()
            for sock in list(self._open):
                _end(sock)
            self._open.clear()

    def unblock(self) -> None:
        self._blocked.clear()

    def close(self) -> None:
        self.block()
        with_suppress(self._listener.close)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(self._target[0], socket.SOCK_STREAM)
            # blocked is checked and the pair registered under the lock: a connection
            # accepted while block() runs is either refused or cut by it, never missed
            with self._lock:
                if self._blocked.is_set():
                    _end(client)
                    upstream.close()
                    continue
                upstream.connect(self._target[1])
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # one side ended: end both, which also wakes the other direction's thread
            with self._lock:
                self._open.difference_update((src, dst))
            for sock in (src, dst):
                _end(sock)


def _end(sock: socket.socket) -> None:
    """Shut a socket down (the peer sees the end at once, whoever else reads it), then
    close it."""
    with_suppress(sock.shutdown, socket.SHUT_RDWR)
    with_suppress(sock.close)


def with_suppress(func: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):
        func(*args)


def test_module_runs_as_script() -> None:
    """``python -m metrify.pipeline.worker`` without Kafka: one line, exit 2 (no traceback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRIFY_KAFKA_")}
    result = subprocess.run(
        [sys.executable, "-m", "metrify.pipeline.worker"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"METRIFY_KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert b"Traceback" not in result.stderr


def test_produce_a_nem12_file_with_each_rejects_own_line(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    """A NEM12 file goes out as ingest reads it: its days as readings at NEM instants
    (UTC+10), and what cannot be stored to the dead-letter topic with the line it came
    from (rows of a NEM12 file are no lines of their own, so the reader's line numbers
    must travel with them)."""
    trailer = ",,,20250302000000,20250302000000"
    day1 = [f"{i / 100:.2f}" for i in range(48)]
    day2 = [f"{1 + i / 100:.2f}" for i in range(48)]
    path = tmp_path / "nem12.csv"
    path.write_text(
        "100,NEM12,202503020000,MDP,RETAILER\n"  # line 1
        "200,4100000001,E1,1,E1,N1,M1,kWh,30,\n"  # line 2
        f"300,20250301,{','.join(day1)},A{trailer}\n"  # line 3
        "\n"  # line 4
        "300,20250302,1,2,A\n"  # line 5: cut short
        f"300,20250302,{','.join(day2)},V{trailer}\n"  # line 6
        "400,1,47,A,,\n"  # line 7
        "400,48,48,N,,\n"  # line 8: the day's last half-hour has no data
        "900\n"
    )
    mapping = build_mapping(READING)
    sender = Sender(kafka)
    summary = produce_files(sender, "readings", [path], mapping)
    assert (summary.sent, summary.rejected) == (95, 2)

    lines = {
        headers["error"].decode(): headers["line"].decode() for _, headers in dead_letters(kafka, 2)
    }
    assert lines["missing import_kwh"] == "6"  # the null half-hour: its day's 300 record
    (cut,) = [why for why in lines if why.startswith("NEM12 300 record")]
    assert lines[cut] == "5"

    worker = ThreadWorker(settings, kafka)
    wait_for(lambda: count(conn, "readings") >= 95, 60, "readings")
    wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
    assert worker.finish() == 0
    rows = conn.execute(
        "SELECT ts, import_kwh FROM readings WHERE quality & 1 = 0 ORDER BY ts"
    ).fetchall()
    start = dt.datetime(2025, 2, 28, 14, tzinfo=dt.UTC)  # 1 March 00:00 at UTC+10
    half = dt.timedelta(minutes=30)
    expected = [(start + i * half, float(v)) for i, v in enumerate(day1)]
    expected += [(start + (48 + i) * half, float(v)) for i, v in enumerate(day2[:47])]
    assert rows == expected
