"""librdkafka's mock cluster for the tests: a cluster in-process, fresh topics and a fresh
group per test, and a simulated fleet's frames to send through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import polars as pl
import pytest
from confluent_kafka import Producer

from metrify.settings.kafka import KINDS, KafkaSettings
from metrify.simulation import Fleet

#: fast group membership for tests: a killed worker's partitions move after 3 s.
CLIENT_OPTIONS = {
    "session.timeout.ms": "3000",
    "heartbeat.interval.ms": "500",
    "topic.metadata.refresh.interval.ms": "1000",
    "log_level": "3",
}


def mock_cluster() -> Iterator[str]:
    """librdkafka's mock cluster: alive as long as its holder client is."""
    holder = Producer({"test.mock.num.brokers": 3, "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    holder.flush(5)
    del holder


def fresh_topics(bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    """Fresh topics and group per test; also exported as METRIFY_KAFKA_* for processes."""
    tag = uuid.uuid4().hex[:8]
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        group_id=f"g-{tag}",
        topic_readings=f"{tag}.readings",
        topic_grid=f"{tag}.grid",
        topic_weather=f"{tag}.weather",
        topic_events=f"{tag}.events",
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


def fleet_frames(fleet: Fleet) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A fleet's readings and grid measurements, each as one frame in key order."""
    chunks = list(fleet.chunks())
    readings = pl.concat([r for r, _ in chunks]).sort("meter_id", "ts")
    grid = pl.concat([g for _, g in chunks]).sort("node_id", "ts")
    return readings, grid
