"""Kafka ingestion end to end: the real confluent-kafka client against librdkafka's mock
cluster, real PostgreSQL, the real worker (in a thread, or as a process to kill).

Expected rows come from the simulator's frames directly, never from the pipeline, and are
compared with PostgreSQL by key and by every value.
"""

from __future__ import annotations

import contextlib
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
from metrify.pipeline.worker import run_worker
from metrify.settings import Settings
from metrify.settings.kafka import KINDS, KafkaSettings
from metrify.simulation.fleet import Fleet, FleetSpec
from metrify.sources.decode import decode
from metrify.sources.kafka import (
    Sender,
    encode_records,
    fast_rows_frame,
    frame_messages,
    parse_message,
    produce_files,
    rows_frame,
    stream_fleet,
)
from metrify.sources.mapping import Mapping, build_mapping

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
#: fast group membership for tests: a killed worker's partitions move after 3 s.
CLIENT_OPTIONS = {
    "session.timeout.ms": "3000",
    "heartbeat.interval.ms": "500",
    "topic.metadata.refresh.interval.ms": "1000",
    "log_level": "3",
}
READING_COLUMNS = ", ".join(READING.fields)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """librdkafka's mock cluster: alive as long as its holder client is."""
    holder = Producer({"test.mock.num.brokers": 3, "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    holder.flush(5)
    del holder


@pytest.fixture
def kafka(bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    """Fresh topics and group per test; also exported as METRIFY_KAFKA_* for processes."""
    tag = uuid.uuid4().hex[:8]
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        group_id=f"g-{tag}",
        topic_readings=f"{tag}.readings",
        topic_grid=f"{tag}.grid",
        topic_weather=f"{tag}.weather",
        topic_deadletter=f"{tag}.deadletter",
        batch_max_ms=200,
        options=dict(CLIENT_OPTIONS),
    )
    for name in ("bootstrap_servers", "group_id", *[f"topic_{k}" for k in KINDS]):
        monkeypatch.setenv(f"METRIFY_KAFKA_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("METRIFY_KAFKA_TOPIC_DEADLETTER", settings.topic_deadletter)
    for key, value in CLIENT_OPTIONS.items():
        monkeypatch.setenv("METRIFY_KAFKA_" + key.upper().replace(".", "_"), value)
    probe = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for kind in (*KINDS, "deadletter"):  # a metadata request creates a mock topic
        probe.list_topics(topic=getattr(settings, f"topic_{kind}"), timeout=10)
    return settings


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


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def count(conn: psycopg.Connection[tuple[object, ...]], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def stored_readings(conn: psycopg.Connection[tuple[object, ...]]) -> pl.DataFrame:
    """Stored real readings (VEE's gap rows, flagged missing, left out)."""
    rows = conn.execute(f"SELECT {READING_COLUMNS} FROM readings WHERE quality & 1 = 0").fetchall()
    return pl.DataFrame(rows, schema=READING.schema, orient="row").sort("meter_id", "ts")


def fleet_frames(fleet: Fleet) -> tuple[pl.DataFrame, pl.DataFrame]:
    chunks = list(fleet.chunks())
    readings = pl.concat([r for r, _ in chunks]).sort("meter_id", "ts")
    grid = pl.concat([g for _, g in chunks]).sort("node_id", "ts")
    return readings, grid


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


# --------------------------------------------------------------------------- format


def test_wire_format_round_trip() -> None:
    """Frames -> messages keyed by id -> string columns -> the pipeline's decode: equal."""
    from metrify.sources.decode import decode
    from metrify.sources.mapping import Mapping

    readings, _ = fleet_frames(Fleet(FleetSpec(meters=5, days=1, fault_rate=0.0, seed=3)))
    messages = list(frame_messages(READING, readings, max_records=40))
    assert {key.decode() for key, _, _ in messages} == set(readings["meter_id"].to_list())
    assert sum(n for _, _, n in messages) == readings.height
    rows = [row for _, value, _ in messages for row in parse_message(value, max_bytes=1 << 20).rows]
    decoded = decode(READING, rows_frame(READING, rows), Mapping())
    assert decoded.rejects.height == 0
    assert decoded.records.sort("meter_id", "ts").equals(readings)
    single = encode_records([{"station_id": "S1", "ts": "2025-01-01T00:00:00Z", "x": 1}])
    assert orjson.loads(single) == {"station_id": "S1", "ts": "2025-01-01T00:00:00Z", "x": 1}


def exact_rows(values: list[bytes]) -> tuple[pl.DataFrame, list[str]]:
    """The message-by-message path: string columns of the records, and the reasons of
    what it quarantined."""
    parsed = [parse_message(v, max_bytes=1 << 20) for v in values]
    frame = rows_frame(READING, [row for p in parsed for row in p.rows])
    return frame, [b.reason for p in parsed for b in p.bad]


def assert_same_columns(fast: pl.DataFrame, exact: pl.DataFrame) -> None:
    """Every column equal; numbers may be spelled differently (1E-7 vs 1e-07) but must
    denote the same value."""
    numeric = [c for c in READING.fields if READING.schema[c].is_numeric()]
    as_float = [pl.col(c).cast(pl.Float64, strict=False) for c in numeric]
    assert fast.select(as_float).equals(exact.select(as_float))
    others = [c for c in READING.fields if c not in numeric]
    assert fast.select(others).equals(exact.select(others))


def test_fast_decoding_equals_the_exact_path() -> None:
    """Well-formed messages (objects, arrays, nulls, numbers of every shape, escapes) give
    exactly the columns the per-message parser gives."""
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=4, days=1, fault_rate=0.3, seed=5)))
    values = [value for _, value, _ in frame_messages(READING, readings, max_records=17)]
    values += [
        b'{"meter_id":"M-1","ts":"2025-01-01T00:00:00Z","interval_s":900,"import_kwh":1E-7}',
        b' [{"meter_id":"M\\u00e9","import_kwh":-0.0,"export_kwh":null,"voltage_v":true}] ',
        b'{"meter_id":"M2","register_kwh":123456789012345678901234567890,"ts":"x"}',
        b"[]",
    ]
    fast = fast_rows_frame(READING, values)
    assert fast is not None
    exact, quarantined = exact_rows(values)
    assert quarantined == []
    assert fast.height == exact.height == readings.height + 3
    assert_same_columns(fast, exact)


def test_fast_decoding_of_one_record_per_message_equals_the_exact_path() -> None:
    """A live fleet's batch (each message one compact object) takes the fast path's own
    shortcut; its columns are still exactly the per-message parser's."""
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=6, days=1, fault_rate=0.3, seed=9)))
    values = [value for _, value, _ in frame_messages(READING, readings, max_records=1)]
    values.append(b'{"meter_id":"M-1","ts":"2025-01-01T00:00:00Z","import_kwh":1E-7}')
    assert all(v.startswith(b"{") and v.endswith(b"}") for v in values)
    fast = fast_rows_frame(READING, values)
    assert fast is not None
    exact, quarantined = exact_rows(values)
    assert quarantined == [] and fast.height == exact.height == readings.height + 1
    assert_same_columns(fast, exact)
    # numbers arrive as numbers: decoding gives the exact path's records and rejects
    assert fast.schema["import_kwh"] == pl.Float64 and fast.schema["ts"] == pl.String
    from_fast = decode(READING, fast, Mapping(), check_ranges=False)
    from_exact = decode(READING, exact, Mapping(), check_ranges=False)
    assert from_fast.records.equals(from_exact.records)
    assert from_fast.rejects.select("reason", "line").equals(
        from_exact.rejects.select("reason", "line")
    )


def test_a_quoted_number_reads_the_batch_as_text() -> None:
    """One message quoting a number (or 900.0 for an integer) does not fit the typed
    read; the batch is read as text, as before, and decodes to the same values."""
    good = b'{"meter_id":"A","ts":"2025-01-01T00:00:00Z","interval_s":900,"import_kwh":0.5}'
    odd = b'{"meter_id":"B","ts":"2025-01-01T00:00:00Z","interval_s":900.0,"import_kwh":"0.25"}'
    fast = fast_rows_frame(READING, [good, odd])
    assert fast is not None and fast.schema["import_kwh"] == pl.String
    decoded = decode(READING, fast, Mapping(), check_ranges=False).records
    assert decoded["import_kwh"].to_list() == [0.5, 0.25]
    assert decoded["interval_s"].to_list() == [900, 900]


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b'"a string"',
        b"{}",
        b"[null]",
        b"[1, 2]",
        b'{"meter_id":"A"},{"meter_id":"B"}',
        b'{"meter_id":"A","colour":"red"}',
        b'{"meter_id":"A","meter_id":"B"}',
        b'{"meter_id":{"nested":1}}',
        b'{"meter_id" :"A"}',
        b'{"meter_id"\t:"A"}',
        b'{"meter_id":\n"A"}',
        b'{"meter_id":"A"}}',
    ],
)
def test_fast_decoding_leaves_anything_unusual_to_the_exact_path(value: bytes) -> None:
    """Poison, empty objects, extra, repeated or nested fields: the fast path declines the
    whole batch (None), so the exact path's reasons and warnings apply unchanged."""
    good = b'{"meter_id":"OK","ts":"2025-01-01T00:00:00Z","interval_s":1800,"import_kwh":1}'
    assert fast_rows_frame(READING, [good]) is not None
    assert fast_rows_frame(READING, [good, value]) is None


def test_settings_pass_through_and_masking() -> None:
    env = {
        "METRIFY_KAFKA_BOOTSTRAP_SERVERS": "b1:9092,b2:9092",
        "METRIFY_KAFKA_SASL_PASSWORD": "hunter2",
        "METRIFY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "METRIFY_KAFKA_SESSION_TIMEOUT_MS": "10000",
        "METRIFY_KAFKA_SSL_KEY_PASSWORD": "topsecret",
        "METRIFY_KAFKA_TOPIC_GRID": "site.grid",
        "METRIFY_KAFKA_LOG_LEVEL": "6",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = KafkaSettings()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    conf = settings.consumer_config()
    assert conf["bootstrap.servers"] == "b1:9092,b2:9092"
    assert conf["sasl.password"] == "hunter2"
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["session.timeout.ms"] == "10000"
    assert conf["ssl.key.password"] == "topsecret"
    assert conf["log_level"] == "6"
    assert conf["enable.auto.commit"] is False
    assert settings.topic("grid") == "site.grid"
    shown = repr(settings) + orjson.dumps(settings.masked()).decode()
    assert "hunter2" not in shown and "topsecret" not in shown


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
    while len(letters) < len(poison) and time.monotonic() < deadline:
        for msg in dlq.consume(10, 0.5):
            if msg.error() is None:
                headers = {k: bytes(v or b"") for k, v in msg.headers() or []}
                letters.append((msg.value() or b"", headers))
    dlq.close()
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
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """A second worker joins mid-stream, then the first leaves: exact rows, no history."""
    fleet = Fleet(FleetSpec(meters=150, days=4, fault_rate=0.0, seed=8))
    readings, grid = fleet_frames(fleet)
    producer = threading.Thread(
        target=stream_fleet, args=(fleet, Sender(kafka), 12_000.0, False), daemon=True
    )
    first = ThreadWorker(settings, kafka)
    producer.start()
    wait_for(lambda: count(conn, "readings") > 5_000, 60, "first rows")
    second = ThreadWorker(settings, kafka)
    seen = count(conn, "readings")
    wait_for(lambda: count(conn, "readings") > seen + 10_000, 60, "rows after the join")
    assert first.finish() == 0  # leaves the group mid-stream
    assert first.thread.is_alive() is False
    producer.join(60)
    wait_for(lambda: count(conn, "readings") >= readings.height, 90, "all readings")
    wait_for(lambda: all_committed(kafka), 30, "offsets committed")
    assert second.finish() == 0
    assert_exact(conn, readings, grid)


def test_database_outage(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """PostgreSQL unreachable mid-stream (connections cut, new ones refused): the worker
    backs off, reconnects, rewinds and loses nothing."""
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


# --------------------------------------------------------------------------- processes


#: worker processes this module started; any still running after a test are killed
_SPAWNED: list[subprocess.Popen[bytes]] = []


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
    log = (tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb")
    proc = subprocess.Popen(
        [str(PYTHON), "-m", "metrify.pipeline.worker"],
        env={**os.environ, "METRIFY_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    _SPAWNED.append(proc)
    return proc


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
        wait_for(running(worker, lambda: count(conn, "readings") > seen), 60, "writes")  # noqa: B023
        time.sleep(rng.uniform(0.0, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        kills += 1
    assert count(conn, "readings") < readings.height, "crashes must land mid-stream"
    producer.join(60)
    worker = spawn_worker(tmp_path)
    done = running(worker, lambda: count(conn, "readings") >= readings.height)
    wait_for(done, 120, "all readings")
    wait_for(running(worker, lambda: all_committed(kafka)), 30, "offsets committed")
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
    wait_for(done, 60, "readings and grid")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert all_committed(kafka)  # committed before leaving: a restart re-reads nothing
    assert_exact(conn, readings, grid)


def test_simulate_streams_to_kafka_at_the_asked_rate(
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """``metrify simulate --to kafka``: reference data stored, every reading, grid and
    weather record on its topic, paced by --rate; a worker then stores them exactly."""
    from metrify.cli.main import app

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
    import typer

    from metrify.cli.stream import register

    monkeypatch.delenv("METRIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    app = typer.Typer()
    register(app)
    for args in (["worker"], ["produce", "readings", "x.csv"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert "METRIFY_KAFKA_BOOTSTRAP_SERVERS" in result.output
        assert "Traceback" not in result.output


# --------------------------------------------------------------------------- helpers


class PgProxy:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new
    ones: from the worker's side the database is unreachable."""

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
        self._blocked.set()
        with self._lock:
            for sock in list(self._open):
                with_suppress(sock.shutdown, socket.SHUT_RDWR)
                with_suppress(sock.close)
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
            if self._blocked.is_set():
                client.close()
                continue
            upstream = socket.socket(self._target[0], socket.SOCK_STREAM)
            upstream.connect(self._target[1])
            with self._lock:
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
            for sock in (src, dst):
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
