"""librdkafka's mock cluster, for the Kafka worker's tests and the alerts' Kafka sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from metrify.settings.kafka import KafkaSettings
from support.kafka import fresh_topics, mock_cluster


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """The mock cluster's brokers, one cluster per test module."""
    yield from mock_cluster()


@pytest.fixture
def kafka(bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    """Fresh topics and group per test; also exported as METRIFY_KAFKA_* for processes."""
    return fresh_topics(bootstrap, monkeypatch)
