"""The worker's loop in detail, against librdkafka's mock cluster and real PostgreSQL:
its back-off over consecutive failures, its batch count, a poisoned partition beside a
clean one in one batch, and the signal handlers it installs and gives back.

(The mutation run found each of these unpinned: see bench/results/mutation.md.)
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from types import FrameType
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from metrify.contracts.records import READING
from metrify.pipeline.stages import Pipeline
from metrify.pipeline.worker import Worker, run_worker
from metrify.settings import Settings
from metrify.settings.kafka import KafkaSettings
from metrify.simulation import Fleet, FleetSpec
from metrify.sources.kafka import Sender, frame_messages
from support.kafka import fleet_frames

from .test_worker import ThreadWorker, all_committed, count, stored_readings, wait_for

pytestmark = pytest.mark.kafka

LOGGER = "metrify.pipeline.worker"


def _messages(caplog: pytest.LogCaptureFixture, pattern: str) -> list[re.Match[str]]:
    """The worker's log lines matching ``pattern`` (formatting each record: a record
    whose arguments do not fit its format fails here)."""
    found = []
    for record in caplog.records:
        if record.name == LOGGER:
            match = re.search(pattern, record.getMessage())
            if match:
                found.append(match)
    return found


def test_backoff_grows_over_consecutive_failures_and_restarts_after_a_success(
    settings: Settings,
    kafka: KafkaSettings,
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two failures in a row wait 0.5 s then 1 s (the back-off doubles with each failure
    in a row); after a batch succeeds, the next failure waits 0.5 s again. Every batch
    stored is counted once: the debug lines number them 1, 2, 3... and the last line
    gives their total."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=4, days=1, fault_rate=0.0, seed=31)))
    last = readings["meter_id"].max()
    first = readings.filter(readings["meter_id"] != last)
    second = readings.filter(readings["meter_id"] == last)
    fail = {"left": 2}  # flushes of readings still to fail
    original_flush = Pipeline.flush

    def failing_flush(self: Pipeline) -> None:
        if self.contract is READING and fail["left"] > 0:
            fail["left"] -= 1
            raise psycopg.OperationalError("server closed the connection (injected)")
        original_flush(self)

    monkeypatch.setattr(Pipeline, "flush", failing_flush)
    sender = Sender(kafka)
    sender.send_frame("readings", first, max_records=48)
    sender.flush()
    worker = ThreadWorker(settings, kafka)
    try:
        wait_for(lambda: count(conn, "readings") >= first.height, 60, "the first readings")
        wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
        fail["left"] = 1  # one failure after a success
        sender.send_frame("readings", second, max_records=48)
        sender.flush()
        wait_for(lambda: count(conn, "readings") >= readings.height, 60, "the other readings")
        wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
    finally:
        fail["left"] = 0
        code = worker.finish()
    assert code == 0
    waits = [m.group(1) for m in _messages(caplog, r"database unavailable .*retrying in (\S+) s")]
    assert waits == ["0.5", "1.0", "0.5"]
    assert stored_readings(conn).equals(readings.sort("meter_id", "ts"))
    numbers = [int(m.group(1)) for m in _messages(caplog, r"^batch (\d+): \d+ messages")]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 2  # the two waves at least
    (total,) = _messages(caplog, r"worker stopped after (\d+) batches, (\d+) records")
    assert int(total.group(1)) == len(numbers)
    assert int(total.group(2)) == readings.height  # each reading counted once


def test_a_poisoned_partition_beside_a_clean_one_in_one_batch(
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """One batch holds a clean partition and one with an invalid JSON message: the
    batch is decoded partition by partition (the clean one on the fast path), the good
    records are stored, the poison is quarantined, and nothing fails."""
    readings, _ = fleet_frames(Fleet(FleetSpec(meters=2, days=1, fault_rate=0.0, seed=37)))
    meters = sorted(readings["meter_id"].unique().to_list())
    topic = kafka.topic_readings
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 3})
    for partition, meter in enumerate(meters):
        own = readings.filter(readings["meter_id"] == meter)
        for key, value, _ in frame_messages(READING, own, max_records=24):
            producer.produce(topic, value, key, partition=partition)
    poison = b'{"meter_id": "' + meters[1].encode() + b'", "ts": '
    producer.produce(topic, poison, meters[1].encode(), partition=1)
    assert producer.flush(10) == 0
    worker = ThreadWorker(settings, kafka)
    try:
        wait_for(lambda: count(conn, "readings") >= readings.height, 60, "the readings")
        wait_for(lambda: count(conn, "quarantine") >= 1, 30, "the poison quarantined")
        wait_for(lambda: all_committed(kafka, ("readings",)), 30, "offsets committed")
    finally:
        code = worker.finish()
    assert code == 0
    assert stored_readings(conn).equals(readings.sort("meter_id", "ts"))
    reasons = [str(r[0]) for r in conn.execute("SELECT reason FROM quarantine").fetchall()]
    assert len(reasons) == 1 and "invalid JSON" in reasons[0]


def test_signals_stop_the_worker_and_their_handlers_are_given_back(
    settings: Settings, kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run on the main thread, the worker takes SIGTERM and SIGINT: SIGTERM stops it
    (exit 0), and on return both signals have their earlier handlers again."""
    assert threading.current_thread() is threading.main_thread()
    calls: list[int] = []

    def earlier(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    before: dict[signal.Signals, Any] = {
        sig: signal.signal(sig, earlier) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    stop = threading.Event()
    running = threading.Event()
    original_run = Worker.run

    def watched_run(self: Worker) -> int:
        running.set()
        return original_run(self)

    def terminate() -> None:
        if running.wait(30):
            os.kill(os.getpid(), signal.SIGTERM)
        # a worker that did not take the signal is stopped anyway (and the test fails)
        if not stop.wait(10):
            stop.set()

    monkeypatch.setattr(Worker, "run", watched_run)
    timer = threading.Thread(target=terminate, daemon=True)
    try:
        timer.start()
        code = run_worker(settings, kafka, stop_event=stop)
        after = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    finally:
        stop.set()
        timer.join(15)
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert code == 0
    assert calls == []  # the worker's handler took SIGTERM, not the earlier one
    assert after == {signal.SIGTERM: earlier, signal.SIGINT: earlier}
