"""Meter events on their own Kafka topic, through the same ``metrify worker`` path as
readings: the real confluent-kafka client against librdkafka's mock cluster, real
PostgreSQL, a local lake. Expected rows are written out here by hand."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import polars as pl
import psycopg
import pytest

from metrify.pipeline.worker import run_worker
from metrify.settings import Settings
from metrify.settings.kafka import KINDS, KafkaSettings
from metrify.sources.kafka import Sender
from metrify.stores.lake import Lake

pytestmark = pytest.mark.kafka
UTC = dt.UTC

EVENTS = pl.DataFrame(
    {
        "meter_id": ["EV-1", "EV-1", "EV-2", "EV-2"],
        "ts": [
            dt.datetime(2025, 6, 1, 10, 0, tzinfo=UTC),
            dt.datetime(2025, 6, 1, 10, 45, tzinfo=UTC),
            dt.datetime(2025, 6, 2, 3, 0, tzinfo=UTC),
            dt.datetime(2025, 6, 2, 3, 0, tzinfo=UTC),
        ],
        "event": ["power_failure", "power_restore", "tamper", "cover_open"],
        "code": ["85", None, "40", None],
        "details": [None, None, "seal broken", None],
    }
)
#: the same records as rows, for comparing with what was stored
WANT = sorted(EVENTS.rows())


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _count(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _run(settings: Settings, kafka: KafkaSettings, done: Callable[[], bool]) -> None:
    """The worker on a thread until ``done``, then stopped cleanly (exit 0)."""
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(run_worker(settings, kafka, stop_event=stop)), daemon=True
    )
    thread.start()
    try:
        _wait(done, 60, "the worker to store the messages")
    finally:
        stop.set()
        thread.join(30)
    assert codes == [0]


def test_events_topic_feeds_the_same_worker(
    settings: Settings, kafka: KafkaSettings, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    assert "events" in KINDS and kafka.topic("events").endswith(".events")
    sender = Sender(kafka)
    sender.send_frame("events", EVENTS.head(2), max_records=2)  # a JSON array
    sender.send_frame("events", EVENTS.slice(2), max_records=1)  # one record each
    reading = b'{"meter_id":"EV-1","ts":"2025-06-01T10:00:00Z","interval_s":900,"import_kwh":0.2}'
    sender.send(kafka.topic("readings"), b"EV-1", reading)
    # a head-end's name for an event (normalised) and one no name fits (quarantined)
    sender.send(
        kafka.topic("events"),
        b"EV-3",
        b'{"meter_id":"EV-3","ts":"2025-06-03T00:00:00Z","event":"Power Off"}',
    )
    sender.send(
        kafka.topic("events"),
        b"EV-3",
        b'{"meter_id":"EV-3","ts":"2025-06-03T00:05:00Z","event":"alien landing"}',
    )
    sender.send(kafka.topic("events"), b"EV-4", b"{not json")  # poison: dead letter
    sender.flush()

    def landed() -> bool:
        return (
            _count(conn, "SELECT count(*) FROM meter_events") >= 5
            and _count(conn, "SELECT count(*) FROM readings") >= 1
            and _count(conn, "SELECT count(*) FROM quarantine WHERE kind = 'events'") >= 2
        )

    _run(settings, kafka, landed)
    stored = conn.execute(
        "SELECT meter_id, ts, event, code, details FROM meter_events"
        " WHERE meter_id <> 'EV-3' ORDER BY 1, 2, 3"
    ).fetchall()
    assert sorted(stored) == WANT
    ((event, source),) = conn.execute(
        "SELECT event, source FROM meter_events WHERE meter_id = 'EV-3'"
    ).fetchall()
    assert event == "power_failure"  # "Power Off", normalised
    assert str(source).startswith(f"kafka:{kafka.topic('events')}:")
    reasons = sorted(
        str(r[0])
        for r in conn.execute("SELECT reason FROM quarantine WHERE kind = 'events'").fetchall()
    )
    assert len(reasons) == 2 and any(r.startswith("unknown event") for r in reasons)
    # the events are in the lake as well, by UTC day, and equal to the store's
    held = Lake(settings.lake).read("events").sort("meter_id", "ts", "event")
    assert sorted(held.select("meter_id", "ts", "event", "code", "details").rows()) == sorted(
        [*WANT, ("EV-3", dt.datetime(2025, 6, 3, tzinfo=UTC), "power_failure", None, None)]
    )
    assert sorted(set(held["date"].to_list())) == [
        dt.date(2025, 6, 1),
        dt.date(2025, 6, 2),
        dt.date(2025, 6, 3),
    ]

    # the same events delivered again (a producer's retry): nothing changes
    before = conn.execute("SELECT meter_id, ts, event, ingested_at FROM meter_events").fetchall()
    sender.send_frame("events", EVENTS, max_records=4)
    sender.flush()
    marker = b'{"meter_id":"EV-9","ts":"2025-06-04T00:00:00Z","event":"clock_set"}'
    sender.send(kafka.topic("events"), b"EV-9", marker)
    sender.flush()
    _run(
        settings,
        kafka,
        lambda: _count(conn, "SELECT count(*) FROM meter_events WHERE meter_id = 'EV-9'") == 1,
    )
    after = conn.execute(
        "SELECT meter_id, ts, event, ingested_at FROM meter_events WHERE meter_id <> 'EV-9'"
    ).fetchall()
    assert sorted(after) == sorted(before)
    assert Lake(settings.lake).read("events").height == len(WANT) + 2
