"""``metrify mqtt`` against real Mosquitto brokers: the machine's on 127.0.0.1:1883 (one of
the test's own when none listens there) and, for a restart, one of the test's own (same
binary) with persistence in a temporary folder.

Readings arrive as contract JSON and as OBIS-coded values, the meter id from the topic;
a message that is not JSON is quarantined. A batch stored but never acknowledged (a
crash between the write and the PUBACK) comes again and changes nothing; a worker killed
with SIGKILL and a broker restarted lose nothing and store nothing twice.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from metrify.contracts.summary import Summary
from metrify.pipeline import mqtt as worker
from metrify.settings import Settings
from metrify.sources.mqtt import Subscriber
from support.paths import REPO
from support.waiting import until as wait_until

T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish with QoS 1 and wait until the broker has each one."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def _reading(meter: str, i: int, kwh: float) -> dict[str, Any]:
    ts = T0 + dt.timedelta(minutes=15 * i)
    return {"meter_id": meter, "ts": ts.isoformat(), "interval_s": 900, "import_kwh": kwh}


def _count(conn: psycopg.Connection, prefix: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM readings WHERE meter_id LIKE %s", (prefix + "%",)
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def prefix() -> str:
    """A topic prefix and meter id prefix of this test alone (the broker is shared)."""
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass
class Run:
    """A worker running in a thread: stop it, wait until subscribed, watch its summary."""

    thread: threading.Thread
    stop: threading.Event
    ready: threading.Event
    seen: list[Summary]
    out: dict[str, Summary]

    def read(self) -> int:
        return self.seen[-1].read if self.seen else 0

    def finish(self) -> Summary:
        self.stop.set()
        self.thread.join(30)
        return self.out["summary"]


def _run_in_thread(settings: Settings, options: worker.MqttOptions) -> Run:
    run = Run(threading.Thread(), threading.Event(), threading.Event(), [], {})

    def target() -> None:
        run.out["summary"] = worker.run_mqtt(
            settings, options, run.stop, ready=run.ready, on_batch=run.seen.append
        )

    run.thread = threading.Thread(target=target, daemon=True)
    run.thread.start()
    assert run.ready.wait(20), "the worker did not subscribe"
    return run


def test_readings_and_obis_codes_from_the_broker(
    settings: Settings, conn: psycopg.Connection, prefix: str, machine: int
) -> None:
    options = worker.MqttOptions(
        broker=f"mqtt://127.0.0.1:{machine}",
        topics=(f"{prefix}/+/readings",),
        client_id=f"{prefix}-w",
        batch_max_ms=200,
    )
    run = _run_in_thread(settings, options)
    try:
        obis = {
            "ts": T0.isoformat(),
            "interval_s": 900,
            "1-0:1.29.0": 0.25,
            "1-0:1.8.0": 1000.25,
            "1-0:2.8.0": 5.5,
            "1-0:1.7.0": 1.2,
        }
        _publish(
            machine,
            [
                (
                    f"{prefix}/{prefix}A/readings",
                    orjson.dumps([_reading(f"{prefix}A", i, 0.1 * (i + 1)) for i in range(4)]),
                ),
                (f"{prefix}/{prefix}B/readings", orjson.dumps(obis)),
                (f"{prefix}/{prefix}B/readings", b"{not json"),
            ],
        )
        wait_until(lambda: bool(run.seen) and run.seen[-1].quarantined == 1 and run.read() == 6)
    finally:
        summary = run.finish()
    rows = conn.execute(
        "SELECT import_kwh, register_kwh, export_register_kwh, active_power_kw, source"
        " FROM readings WHERE meter_id = %s",
        (f"{prefix}B",),
    ).fetchall()
    assert rows == [(0.25, 1000.25, 5.5, 1.2, f"mqtt:{prefix}/{prefix}B/readings")]
    imports = conn.execute(
        "SELECT import_kwh FROM readings WHERE meter_id = %s ORDER BY ts", (f"{prefix}A",)
    ).fetchall()
    assert [round(r[0], 6) for r in imports] == [0.1, 0.2, 0.3, 0.4]
    poison = conn.execute(
        "SELECT reason FROM quarantine WHERE source = %s", (f"mqtt:{prefix}/{prefix}B/readings",)
    ).fetchall()
    assert len(poison) == 1 and "JSON" in str(poison[0][0])
    assert summary.read == 6 and summary.inserted == 5  # read: the poison message too


def test_a_batch_never_acknowledged_comes_again_and_changes_nothing(
    settings: Settings,
    conn: psycopg.Connection,
    prefix: str,
    machine: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first run stores its batch and "crashes" before acknowledging it (no PUBACK);
    the same session's next run receives it again, and the store finds nothing new."""
    options = worker.MqttOptions(
        broker=f"mqtt://127.0.0.1:{machine}",
        topics=(f"{prefix}/+/readings",),
        client_id=f"{prefix}-w",
        batch_max_ms=200,
    )
    monkeypatch.setattr(Subscriber, "ack", lambda self, messages: None)
    run = _run_in_thread(settings, options)
    payload = orjson.dumps([_reading(f"{prefix}A", i, 0.5) for i in range(8)])
    _publish(machine, [(f"{prefix}/{prefix}A/readings", payload)])
    wait_until(lambda: run.read() == 8)
    assert run.finish().inserted == 8
    monkeypatch.undo()
    # the broker re-sends the unacknowledged message to the resumed session
    run = _run_in_thread(settings, options)
    wait_until(lambda: run.read() == 8)
    summary = run.finish()
    assert summary.unchanged == 8 and summary.inserted == 0 and summary.updated == 0
    assert _count(conn, prefix) == 8
    assert _history(conn, prefix) == 0
    # acknowledged this time: a third run of the session receives nothing
    run = _run_in_thread(settings, options)
    time.sleep(1.0)
    assert run.finish().read == 0


def _history(conn: psycopg.Connection, prefix: str) -> int | None:
    row = conn.execute(
        "SELECT count(*) FROM reading_history WHERE meter_id LIKE %s", (prefix + "%",)
    ).fetchone()
    return int(row[0]) if row else None


# --------------------------------------------------------------------------- own broker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A Mosquitto of the test's own, persisting its sessions in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
            # started as root, Mosquitto drops to its own user, which cannot write the
            # test's folder: it would lose the sessions over a restart
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._listening, timeout=10)

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: Mosquitto saves its sessions on the way out
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[int]:
    """The port of the machine's Mosquitto (1883), or of one of the test's own when none
    listens there (a CI host without the service running)."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 1883)) == 0:
            yield 1883
            return
    own = Broker(tmp_path)
    own.start()
    try:
        yield own.port
    finally:
        own.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    own = Broker(tmp_path)
    own.start()
    try:
        yield own
    finally:
        own.stop()


def _worker_process(settings: Settings, port: int, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    code = "import sys; from metrify.cli import app; sys.argv[0] = 'metrify'; app()"
    return subprocess.Popen(
        [
            sys.executable, "-c", code, "mqtt",
            "--broker", f"mqtt://127.0.0.1:{port}",
            "--topic", f"{prefix}/+/readings",
            "--client-id", f"{prefix}-w", "--batch-ms", "200",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_subscribed(conn: psycopg.Connection, port: int, prefix: str) -> None:
    """Publish a probe reading (another meter) until the worker has stored it: then its
    persistent session exists and holds whatever is published for it from now on."""
    probe = f"probe{prefix}"
    message = [(f"{prefix}/{probe}/readings", orjson.dumps(_reading(probe, 0, 0.1)))]
    deadline = time.monotonic() + 60
    while _count(conn, probe) == 0:
        assert time.monotonic() < deadline, "the worker never stored the probe"
        _publish(port, message)
        time.sleep(0.5)


@pytest.mark.slow
def test_sigkill_and_a_broker_restart_lose_nothing(
    settings: Settings, conn: psycopg.Connection, broker: Broker, prefix: str
) -> None:
    """Day one reaches a worker, which is then killed with SIGKILL; day two is published
    while no worker runs; the broker restarts; a new worker with the same session gets
    day two (and whatever of day one it never acknowledged). Every reading is stored once."""
    days = [
        [
            (
                f"{prefix}/{prefix}{m}/readings",
                orjson.dumps(
                    [_reading(f"{prefix}{m}", d * 96 + i, 0.01 * (i % 7 + 1)) for i in range(96)]
                ),
            )
            for m in "ABC"
        ]
        for d in range(2)
    ]
    first = _worker_process(settings, broker.port, prefix)
    try:
        _wait_subscribed(conn, broker.port, prefix)
        _publish(broker.port, days[0])
        wait_until(lambda: _count(conn, prefix) == 3 * 96, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    _publish(broker.port, days[1])  # queued for the worker's session
    broker.stop()
    broker.start()
    second = _worker_process(settings, broker.port, prefix)
    try:
        wait_until(lambda: _count(conn, prefix) == 2 * 3 * 96, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, second.stderr.read() if second.stderr else ""
    assert _count(conn, prefix) == 2 * 3 * 96
    assert _history(conn, prefix) == 0  # nothing was stored twice as a "correction"
