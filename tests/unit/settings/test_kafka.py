"""The Kafka settings: METRIFY_KAFKA_* reach librdkafka's configuration, secrets masked."""

from __future__ import annotations

import os

import orjson
import pytest

from metrify.settings.kafka import KafkaSettings

pytestmark = pytest.mark.kafka


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
